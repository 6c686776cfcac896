"""Benchmark, run by hand (not by CI): what running the checks in a worker process costs.

    python bench/worker_cost.py [--repeat 3]

Prints, measured side by side in one run (a fresh process each, best of --repeat):
1. one target: the `gradcheck` command (supervisor + one worker) against the former design, the
   same pipeline run in the command's own process (`api.run` then the text renderer, which is what
   the command did before the supervisor: parse, run, render);
2. ten targets of a pyproject.toml: `gradcheck -j 1` (one worker, reused) and `-j 2` against the
   former design (all ten in one process), and the cost of each target beyond the first.

The machine is shared: times are the best of --repeat runs, and the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
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
from gradcheck.api import make_options, run
from gradcheck import render_text
jobs = json.loads(sys.argv[1])
results = [run(target, make_options(**keywords), fresh_session=True) for target, keywords in jobs]
render_text.render(results, sys.stdout)
"""


def command() -> list[str]:
    script = Path(sys.executable).parent / "gradcheck"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from gradcheck.cli import main; sys.exit(main())"]


def best(argv: list[str], cwd: Path, repeat: int) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        completed = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if completed.returncode not in (0, 1):
            raise SystemExit(f"{argv[:3]} failed ({completed.returncode}):\n{completed.stderr}")
    return min(times)


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
        before_one = best([sys.executable, "-c", IN_PROCESS, json.dumps(one)], ROOT, repeat)
        now_one = best([*command(), one[0][0], "--input-shape", "16,5", "--init", "units=4"], ROOT, repeat)
        before_ten = best([sys.executable, "-c", IN_PROCESS, json.dumps(ten)], project, repeat)
        now_ten = best([*command(), "-j", "1"], project, repeat)
        now_ten_two = best([*command(), "-j", "2"], project, repeat)

    print()
    print("| run | former design (one process) | `gradcheck` (supervisor + worker) | difference |")
    print("|---|---:|---:|---:|")
    print(f"| 1 target | {before_one:.2f} s | {now_one:.2f} s | {now_one - before_one:+.2f} s |")
    print(f"| 10 targets, `-j 1` | {before_ten:.2f} s | {now_ten:.2f} s | {100 * (now_ten / before_ten - 1):+.0f} % |")
    print(f"| 10 targets, `-j 2` | {before_ten:.2f} s | {now_ten_two:.2f} s | {100 * (now_ten_two / before_ten - 1):+.0f} % |")
    print(f"| each target beyond the first | {(before_ten - before_one) / 9:.2f} s | {(now_ten - now_one) / 9:.2f} s | |")


if __name__ == "__main__":
    main()
