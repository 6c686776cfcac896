"""Benchmark, run by hand (not by CI): what a fresh worker process per target costs.

    python bench/fresh_worker.py [--repeat 3] [--before CHECKOUT]

Every target is checked in a process of its own, forked from the fork server (issue 30), so nothing
one target's module does to the interpreter reaches the next; before, a worker checked one target
after another. A fresh process pays TensorFlow's first-use costs again (the eager context, each
kind of kernel, function instantiation: about 0.1 s of a small layer's check), so while a target
is checked the next one's worker is forked ahead (when --jobs leaves a CPU free) and warms up on a
Keras layer of its own. Results are in docs/performance.md.

Rows, a fresh command each (`python -m gradcheck`, best of --repeat, the versions taking turns so
the machine's load hits them alike), on a temporary pyproject.toml of the three layers of
sample_layers/classic.py (input 16x5, the default checks):
- one target;
- ten targets with -j 1 and with -j 2;
- and, derived, what each target beyond the first costs with -j 1.
Each gives wall time and CPU time (the command and every process under it: the fork server, its
workers, the spares). --before runs every row also with the gradcheck package of another checkout
(`git worktree add ../before main`, or a copy of its `gradcheck/` folder), which goes first on
PYTHONPATH. The load average is printed at the start and the end: read the figures with it.
"""

from __future__ import annotations

import argparse
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


def project(folder: Path, count: int) -> Path:
    folder.mkdir()
    (folder / "pyproject.toml").write_text(
        "".join(
            f'[[tool.gradcheck.targets]]\ntarget = "{CLASSIC}:{LAYERS[i % 3]}"\ninput-shape = ["16,5"]\n'
            f"init = {{units = {4 + i}}}\nseed = {i}\n\n"
            for i in range(count)
        )
    )
    return folder


def measure(argv: list[str], cwd: Path, checkout: str | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process under it it waited for)."""
    environment = dict(os.environ)
    if checkout is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, environment.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(argv, cwd=cwd, env=environment, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{argv} failed ({completed.returncode}):\n{completed.stderr}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per row and version; the best is shown")
    parser.add_argument("--before", metavar="CHECKOUT", help="also run each row with another checkout's gradcheck")
    args = parser.parse_args()
    versions = [("now", None)] + ([("before", str(Path(args.before).resolve()))] if args.before else [])
    command = [sys.executable, "-m", "gradcheck", "--quiet"]
    print(f"# {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.2f} at the start · best of {args.repeat}")
    print()
    with tempfile.TemporaryDirectory() as folder:
        one, ten = project(Path(folder) / "one", 1), project(Path(folder) / "ten", 10)
        rows = [("1 target", one, []), ("10 targets, -j 1", ten, ["-j", "1"]), ("10 targets, -j 2", ten, ["-j", "2"])]
        runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.repeat):
            for label, cwd, extra in rows:
                for name, checkout in versions:
                    runs.setdefault((label, name), []).append(measure([*command, *extra], cwd, checkout))
    best = {key: (min(w for w, _ in values), min(c for _, c in values)) for key, values in runs.items()}
    print("| run | code | wall time | CPU time |")
    print("|---|---|---:|---:|")
    for label, _, _ in rows:
        for name, _ in versions:
            wall, cpu = best[label, name]
            print(f"| {label} | {name} | {wall:.2f} s | {cpu:.2f} s |")
    for name, _ in versions:
        (wall_one, cpu_one), (wall_ten, cpu_ten) = best["1 target", name], best["10 targets, -j 1", name]
        print(f"| each target beyond the first, -j 1 | {name} | {(wall_ten - wall_one) / 9:.3f} s | {(cpu_ten - cpu_one) / 9:.3f} s |")
    if args.before:
        print()
        for label, _, _ in rows:
            (wall_now, cpu_now), (wall_before, cpu_before) = best[label, "now"], best[label, "before"]
            print(
                f"# {label}: wall {100 * (wall_now / wall_before - 1):+.0f} %, CPU {100 * (cpu_now / cpu_before - 1):+.0f} %"
            )
    print()
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
