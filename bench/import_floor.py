"""Benchmark, run by hand (not by CI): TensorFlow's import, the floor of every gradcheck run, under
different Python environments side by side, e.g. two venvs that differ only in ml_dtypes.

    python bench/import_floor.py PYTHON [PYTHON ...] [--repeat 5]

Each PYTHON is an interpreter (a venv's bin/python). In each round every interpreter runs
`import tensorflow, keras` once in a fresh process, in turn, so a machine whose speed drifts
slows them alike. Prints per interpreter its ml_dtypes and numpy versions, the best and median
wall and CPU time (the process's own, from wait4), and the ratio of its median CPU time to the
first interpreter's; then the same for `import ml_dtypes` alone.

Why ml_dtypes: TensorFlow imports it, and ml_dtypes 0.7.0 registers its numpy ufunc loops in
0.6-0.8 CPU-seconds where 0.6.0 takes 0.01 s (numpy's PyUFunc_AddLoop scans the loops already
registered for each one it adds). The test extra of pyproject.toml asks for ml_dtypes<0.7.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

VERSIONS = "import importlib.metadata as m; print(m.version('ml_dtypes'), m.version('numpy'))"


def timed(python: str, code: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `python -c code` in a fresh process, TensorFlow's logs off."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [python, "-c", code], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{python} -c {code!r} exited {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(pythons: list[str], code: str, repeat: int) -> None:
    runs: dict[str, list[tuple[float, float]]] = {python: [] for python in pythons}
    for _ in range(repeat):
        for python in pythons:
            runs[python].append(timed(python, code))
    first = statistics.median(cpu for _, cpu in runs[pythons[0]])
    print(f"\n`{code}`, {repeat} rounds")
    print(f"{'python':<44} {'ml_dtypes numpy':<17} {'wall best/median':>17} {'CPU best/median':>16} {'CPU ratio':>9}")
    for python in pythons:
        versions = subprocess.run([python, "-c", VERSIONS], capture_output=True, text=True, check=True).stdout.strip()
        walls = [wall for wall, _ in runs[python]]
        cpus = [cpu for _, cpu in runs[python]]
        print(
            f"{python:<44} {versions:<17} {min(walls):7.2f}/{statistics.median(walls):.2f} s"
            f" {min(cpus):7.2f}/{statistics.median(cpus):.2f} s {statistics.median(cpus) / first:8.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pythons", nargs="+", metavar="PYTHON", help="interpreters to compare, the first the baseline")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    arguments = parser.parse_args()
    measure(arguments.pythons, "import tensorflow, keras", arguments.repeat)
    measure(arguments.pythons, "import ml_dtypes", arguments.repeat)


if __name__ == "__main__":
    main()
