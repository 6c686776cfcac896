"""Benchmark, run by hand (not by CI): what running the checks in a worker process costs.

    python bench/worker_cost.py [--repeat 3]

Prints, measured side by side in one run (a fresh process each, best of --repeat):
1. one target: the `gradcheck` command (supervisor + one worker) against the former design, the
   same pipeline run in the command's own process (`api.build_report` then the text renderer, which is what
   the command did before the supervisor: parse, run, render);
2. ten targets of a pyproject.toml: `gradcheck -j 1` (one worker, reused) and `-j 2` against the
   former design (all ten in one process), and the cost of each target beyond the first.

The machine is shared: the commands take turns within each repeat, times are the best of --repeat
runs, CPU time (the process and its waited-for children: the worker included) is printed beside
wall time as the figure load disturbs least, and the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLASSIC = ROOT / "sample_layers" / "classic.py"
LAYERS = ["SimpleDense", "DenseWithBias", "DenseWithActivation"]

# The former command: every target in this one process, then the text report.
IN_PROCESS = """
import json, sys
from gradcheck.options import make_options
from gradcheck.pipeline import build_report
from gradcheck import render_text
jobs = json.loads(sys.argv[1])
results = [build_report(target, make_options(**keywords), fresh_session=True) for target, keywords in jobs]
sys.stdout.write(render_text.render(results))
"""


def command() -> list[str]:
    script = Path(sys.executable).parent / "gradcheck"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from gradcheck.cli import main; sys.exit(main())"]


def measure(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and every child it waited for: the worker too)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{argv[:3]} failed ({completed.returncode}):\n{completed.stderr}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def best_of(commands: dict, repeat: int) -> dict:
    """Best wall and CPU time of each command; the commands take turns, so load hits them alike."""
    results = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (argv, cwd) in commands.items():
            results[name].append(measure(argv, cwd))
    return {name: (min(w for w, _ in runs), min(c for _, c in runs)) for name, runs in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    print(f"load average at start: {os.getloadavg()[0]:.2f}; best of {repeat}")

    one = [(f"{CLASSIC}:SimpleDense", {"input_shape": "16,5", "init": {"units": 4}})]
    ten = [(f"{CLASSIC}:{LAYERS[i % 3]}", {"input_shape": "16,5", "init": {"units": 4 + i}, "seed": i}) for i in range(10)]
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "pyproject.toml").write_text("".join(
            f'[[tool.gradcheck.targets]]\ntarget = "{target}"\ninput-shape = ["16,5"]\n'
            f'init = {{units = {keywords["init"]["units"]}}}\nseed = {keywords["seed"]}\n\n'
            for target, keywords in ten
        ))
        t = best_of({
            "before 1": ([sys.executable, "-c", IN_PROCESS, json.dumps(one)], ROOT),
            "now 1": ([*command(), one[0][0], "--input-shape", "16,5", "--init", "units=4"], ROOT),
            "before 10": ([sys.executable, "-c", IN_PROCESS, json.dumps(ten)], project),
            "now 10": ([*command(), "-j", "1"], project),
            "now 10 j2": ([*command(), "-j", "2"], project),
        }, repeat)

    def row(label, before, now):
        (wall_before, cpu_before), (wall_now, cpu_now) = t[before], t[now]
        print(f"| {label} | {wall_before:.2f} s ({cpu_before:.2f} s) | {wall_now:.2f} s ({cpu_now:.2f} s) "
              f"| {wall_now - wall_before:+.2f} s ({cpu_now - cpu_before:+.2f} s) |")

    print()
    print("| run | former design: wall (CPU) | `gradcheck`, supervisor + worker: wall (CPU) | difference: wall (CPU) |")
    print("|---|---:|---:|---:|")
    row("1 target", "before 1", "now 1")
    row("10 targets, `-j 1`", "before 10", "now 10")
    row("10 targets, `-j 2`", "before 10", "now 10 j2")
    extra_before = [(t["before 10"][i] - t["before 1"][i]) / 9 for i in (0, 1)]
    extra_now = [(t["now 10"][i] - t["now 1"][i]) / 9 for i in (0, 1)]
    print(f"| each target beyond the first (`-j 1`) | {extra_before[0]:.2f} s ({extra_before[1]:.2f} s) "
          f"| {extra_now[0]:.2f} s ({extra_now[1]:.2f} s) | |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
