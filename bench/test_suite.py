"""Benchmark, run by hand (not by CI): the whole test suite's wall and CPU time, against another checkout.

    python bench/test_suite.py [--repeat 2] [--before CHECKOUT] [--keep FOLDER]

Runs the README's command, `python -m pytest -n auto -q -p no:cacheprovider`, in this checkout and,
with --before, in CHECKOUT (`git worktree add ../before main`; its own gradcheck goes first on
PYTHONPATH, with this venv), taking turns, --repeat times each. The machine is shared and its
load moves every figure, CPU time included (a busy machine makes each process slower), so the
runs alternate and each row says the load. Per run:
- wall time;
- CPU: pytest and every process under it that ended (user + system, RUSAGE_CHILDREN). A daemon the
  tests start (tests/isolation/test_daemon.py) leaves the process tree, and is not in it;
- tests: the sum of each test's CPU (GRADCHECK_CPU_REPORT, tests/conftest.py), which also counts the
  worker processes still running under a test;
- busy: the CPU-seconds every process of the machine used meanwhile (/proc/stat), other users'
  included, and that as a share of the CPUs over the wall time: near 100 % the suite waits for CPU,
  below it for processes, timeouts or its last file;
- the load average at the start and the end, and pytest's last line.
Then the files that cost the most CPU in the last run of each checkout. --keep FOLDER keeps each
run's per-test CPU report there (`label-N.tsv`).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ["-m", "pytest", "-n", "auto", "-q", "-p", "no:cacheprovider"]


def busy_ticks() -> int:
    """Jiffies every CPU spent on anything but idle and I/O wait, since boot (Linux)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return user + nice + system + irq + softirq + steal


def run(checkout: Path, report: Path) -> dict:
    environment = {**os.environ, "GRADCHECK_CPU_REPORT": str(report)}
    if checkout != ROOT:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), environment.get("PYTHONPATH")]))
    load = os.getloadavg()[0]
    before, ticks = resource.getrusage(resource.RUSAGE_CHILDREN), busy_ticks()
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, *COMMAND], cwd=checkout, env=environment, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    after, busy = resource.getrusage(resource.RUSAGE_CHILDREN), (busy_ticks() - ticks) / os.sysconf("SC_CLK_TCK")
    per_file: Counter = Counter()
    for line in report.read_text().splitlines() if report.exists() else []:
        file, seconds, _ = line.split("\t", 2)
        per_file[file] += float(seconds)
    lines = completed.stdout.strip().splitlines()
    return {
        "wall": wall,
        "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "tests": sum(per_file.values()),
        "busy": busy,
        "share": busy / (wall * (os.cpu_count() or 1)),
        "load": (load, os.getloadavg()[0]),
        "result": lines[-1] if lines else completed.stderr.strip()[-200:],
        "files": per_file,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per checkout, taking turns")
    parser.add_argument("--before", metavar="CHECKOUT", help="also run the suite of another checkout")
    parser.add_argument("--keep", metavar="FOLDER", help="keep each run's per-test CPU report in FOLDER")
    args = parser.parse_args()
    versions = [("now", ROOT)] + ([("before", Path(args.before).resolve())] if args.before else [])
    keep = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gradcheck-suite-"))
    keep.mkdir(parents=True, exist_ok=True)
    print(f"# {os.cpu_count()} CPUs · `python {' '.join(COMMAND)}` · the runs take turns")
    print()
    print(
        "| code | run | load average, start → end | wall | CPU | tests' CPU | machine busy | share of the CPUs | result |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    last: dict[str, dict] = {}
    for number in range(1, args.repeat + 1):
        for name, checkout in versions:
            figures = run(checkout, keep / f"{name}-{number}.tsv")
            last[name] = figures
            start, end = figures["load"]
            print(
                f"| {name} | {number} | {start:.2f} → {end:.2f} | {figures['wall']:.1f} s | {figures['cpu']:.1f} s "
                f"| {figures['tests']:.1f} s | {figures['busy']:.1f} s | {100 * figures['share']:.0f} % "
                f"| {figures['result']} |",
                flush=True,
            )
    for name, figures in last.items():
        print()
        print(f"# {name}, its last run: the files that cost the most CPU (GRADCHECK_CPU_REPORT)")
        for file, seconds in figures["files"].most_common(12):
            print(f"#   {seconds:6.1f} s  {file}")


if __name__ == "__main__":
    main()
