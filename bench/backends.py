"""Benchmark, run by hand (not by CI): gradcheck on JAX and PyTorch, and several backends compared.

    python bench/backends.py [--repeat 3] [--before CHECKOUT]

Rows, each a fresh process (best of --repeat by wall time; CPU is user + system of the whole
process tree, the figure to compare on a shared machine; RSS the largest process's peak):
- the import floor of each backend: `python -c "import FRAMEWORK, keras"` under its KERAS_BACKEND;
- the classic sample layer (sample_layers/classic.py:DenseWithActivation, 16x5) checked with
  `--backend tensorflow`, `jax` and `torch`, one command each; JAX's compiled programs start from an
  empty cache folder (cold) and then from the one that run filled (warm);
- `--backend all` on it, with -j 1 and -j 3 (the three backends' workers side by side), against the
  three single-backend commands run one after the other;
- with --before, the TensorFlow row again with the gradcheck package of another checkout (a copy of
  the code before the backends, e.g. `git archive main | tar -x -C /tmp/before`), alternating.
The load average is printed at the start and the end: read the wall figures with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLASSIC = ["sample_layers/classic.py:DenseWithActivation", "--init", "units=4", "--input-shape", "16,5", "--json"]
FRAMEWORK = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def timed(command: list[str], environment: dict, repeat: int) -> tuple[float, float, float, int]:
    """(best wall s, that run's CPU s, its peak RSS MB, its exit status)."""
    best = None
    for _ in range(repeat):
        with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
            started = time.perf_counter()
            done = subprocess.run(
                ["/usr/bin/time", "-f", "%U %S %M", "-o", out.name, *command],
                cwd=ROOT,
                env=environment,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - started
            user, system, peak = out.read().split()[-3:]
        row = (wall, float(user) + float(system), int(peak) / 1024, done.returncode)
        if best is None or wall < best[0]:
            best = row
    assert best is not None
    return best


def environment(backend: str | None = None, checkout: str | None = None, cache: str | None = None) -> dict:
    values = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if backend:
        values["KERAS_BACKEND"] = backend
    if checkout:
        values["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, values.get("PYTHONPATH")]))
    if cache:
        values["JAX_COMPILATION_CACHE_DIR"] = cache
    return values


def show(label: str, row: tuple[float, float, float, int]) -> None:
    wall, cpu, peak, status = row
    print(f"{label:<58} {wall:7.2f} s {cpu:7.2f} s {peak:8.0f} MB   exit {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", metavar="CHECKOUT", help="a copy of the code before the backends")
    arguments = parser.parse_args()
    repeat = arguments.repeat
    gradcheck = [sys.executable, "-m", "gradcheck"]
    print(f"load average at the start: {os.getloadavg()}")
    print(f"{'row':<58} {'wall':>9} {'CPU':>9} {'peak RSS':>11}")
    for backend, module in FRAMEWORK.items():
        show(
            f"import floor: import {module}, keras",
            timed([sys.executable, "-c", f"import {module}, keras"], environment(backend), repeat),
        )
    cache = tempfile.mkdtemp(prefix="gradcheck-bench-jax-")
    try:
        for backend in FRAMEWORK:
            if backend == "jax":
                shutil.rmtree(cache)
                os.makedirs(cache)
                show(
                    "classic layer --backend jax (cold JAX cache)",
                    timed([*gradcheck, *CLASSIC, "--backend", "jax"], environment(cache=cache), 1),
                )
            show(
                f"classic layer --backend {backend}",
                timed([*gradcheck, *CLASSIC, "--backend", backend], environment(cache=cache), repeat),
            )
            if backend == "tensorflow" and arguments.before:
                show(
                    "classic layer, TensorFlow, the code before",
                    timed([*gradcheck, *CLASSIC], environment(checkout=arguments.before), repeat),
                )
        one_by_one = [
            timed([*gradcheck, *CLASSIC, "--backend", b], environment(cache=cache), repeat) for b in FRAMEWORK
        ]
        total = tuple(sum(row[i] for row in one_by_one) for i in range(2)) + (max(r[2] for r in one_by_one), 0)
        show("the three single-backend commands, one after the other", total)  # type: ignore[arg-type]
        for jobs in ("1", "3"):
            show(
                f"classic layer --backend all -j {jobs}",
                timed([*gradcheck, *CLASSIC, "--backend", "all", "-j", jobs], environment(cache=cache), repeat),
            )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
