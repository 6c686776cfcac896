"""Benchmark, run by hand (not by CI): what the save/reload round trip adds to a run.

    python bench/reload.py [--repeat 3]

Prints, measured side by side in one run on the classic sample layer
(`sample_layers/classic.py:DenseWithActivation --init units=10 --input-shape 100,5`):
1. the whole CLI as a subprocess, with the round trip (the default) and with --no-reload, best of
   --repeat each, alternated so a change in the machine's load hits both alike;
2. the whole `check()` in-process, reload on and off alternately, best of --repeat;
3. the round trip alone (`reload.check_reload`) in-process: its first call (what a CLI run pays,
   Keras's saving code included) and the best of --repeat later calls.

The machine is shared: times are the best of --repeat runs, and the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGET = ["sample_layers/classic.py:DenseWithActivation", "--init", "units=10", "--input-shape", "100,5"]


def cli_seconds(extra: list[str]) -> float:
    command = [sys.executable, "-c", "from gradcheck.cli import main; main()", *TARGET, *extra]
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=environment, check=True, capture_output=True)
    return time.perf_counter() - start


def check_seconds(repeat: int) -> tuple[float, float]:
    """The whole check() in-process, reload on and off alternately (after one warm-up of each)."""
    import dataclasses

    from gradcheck.options import make_options
    from gradcheck.pipeline import build_report

    os.chdir(ROOT)
    options = make_options(input_shape="100,5", init={"units": 10})
    variants = {True: options, False: dataclasses.replace(options, reload=False)}
    times = {True: [], False: []}
    for round_ in range(repeat + 1):
        for reload, chosen in variants.items():
            start = time.perf_counter()
            build_report(TARGET[0], chosen, fresh_session=True)
            if round_:  # the first round warms both up
                times[reload].append(time.perf_counter() - start)
    return min(times[True]), min(times[False])


def reload_alone_seconds(repeat: int) -> tuple[float, float]:
    from gradcheck.backends.tensorflow.tracing import VariableLog
    from gradcheck.checks.inventory import check_inventory
    from gradcheck.checks.reload import check_reload
    from gradcheck.layer.loading import load
    from gradcheck.layer.probe import make_probe
    from gradcheck.options import make_options

    os.chdir(ROOT)
    options = make_options(input_shape="100,5", init={"units": 10})
    log = VariableLog()
    with log.recording():
        loaded = load(TARGET[0], options.init)
    probe = make_probe(loaded, options, log)
    tensors, _ = check_inventory(probe)
    start = time.perf_counter()
    check_reload(probe, tensors)  # the first call, as in a CLI run: Keras's saving code loads now
    first = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        status, findings = check_reload(probe, tensors)
        times.append(time.perf_counter() - start)
    assert status == "ok" and not findings, (status, findings)
    return first, min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with_reload, without = [], []
    for _ in range(args.repeat):
        with_reload.append(cli_seconds([]))
        without.append(cli_seconds(["--no-reload"]))
    best_with, best_without = min(with_reload), min(without)
    print(f"gradcheck CLI, reload on (default): {best_with:.2f} s")
    print(f"gradcheck CLI, --no-reload:         {best_without:.2f} s")
    print(f"added by the round trip (CLI):      {best_with - best_without:+.2f} s")
    on, off = check_seconds(args.repeat)
    print(f"check() in-process, reload on / off: {on:.2f} s / {off:.2f} s ({on - off:+.2f} s)")
    first, warm = reload_alone_seconds(args.repeat)
    print(f"the round trip alone (in-process):  {first:.3f} s first call, {warm:.3f} s after")


if __name__ == "__main__":
    main()
