"""Benchmark, run by hand (not by CI): the joint finite-difference screen (gradcheck/screening.py),
before against after, on layers of a realistic size.

    python bench/screening.py --before /path/to/checkout/without/screen [--after .]

Runs the whole command (a fresh process each) with PYTHONPATH set to each checkout in turn, side
by side in one run, on:
- bench/realistic.py's `PreNormResidualMLP`: a pre-norm residual MLP block, 526,080 parameters, input 8x128x256;
- keras_hub `TransformerEncoder(intermediate_dim=1024, num_heads=8)` on 8x128x256;
- bench/realistic.py's `PlantedBiasMLP`: 513,768 parameters whose bias `b1` (1,000 numbers) gets a gradient 1e-3
  too large (relative) through a tf.custom_gradient: it must come out as `gradient-mismatch` on
  `b1` and nothing else;
and the floor `python -c "import tensorflow, keras, keras_hub"`; the encoder once more with
--no-numeric shows what of its time is not the finite-difference check.

The machine is shared: besides wall time it prints the CPU time (user + system) the child used,
from resource.getrusage(RUSAGE_CHILDREN), which other processes' load barely moves. Ratios
after/before are given for both, and for the time over the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The layers are bench/realistic.py's, so both benchmarks measure the same computations.
LAYERS = ROOT / "bench" / "realistic.py"
SHAPE = "8,128,256"
OFF_BY = 1e-3  # the planted relative error, as in bench/realistic.py


def timed(command: list[str], pythonpath: str | None) -> tuple[float, float, str]:
    """(wall seconds, child CPU seconds, stdout) of one run."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def errors_of(stdout: str) -> str:
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError:
        return "could not run"
    errors = [f"{f['code']} on `{f['tensor']}`" for f in document["findings"] if f["severity"] == "error"]
    return ", ".join(errors) or "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="checkout whose gradcheck runs first (no screen)")
    parser.add_argument("--after", default=str(ROOT), help="checkout with the screen (default: this one)")
    args = parser.parse_args()
    encoder = ["keras_hub.layers:TransformerEncoder", "--init", "intermediate_dim=1024", "--init", "num_heads=8"]
    rows = [
        ("pre-norm residual MLP block (526k)", [f"{LAYERS}:PreNormResidualMLP"]),
        ("keras_hub TransformerEncoder(1024, 8)", encoder),
        ("the same, --no-numeric (what is not finite differences)", [*encoder, "--no-numeric"]),
        (f"planted {OFF_BY:g} error in `b1` (1,000 of 513k)", [f"{LAYERS}:PlantedBiasMLP"]),
    ]
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start, input {SHAPE}")
    floor_wall, floor_cpu, _ = timed([sys.executable, "-c", "import tensorflow, keras, keras_hub"], None)
    print(f"floor: wall {floor_wall:.2f} s, cpu {floor_cpu:.2f} s")
    print("| layer | before wall / cpu | after wall / cpu | over floor, cpu: before -> after (ratio) | verdict before | after |")
    print("|---|---:|---:|---:|---|---|")
    for label, target in rows:
        command = [str(Path(sys.executable).with_name("gradcheck")), *target, "--input-shape", SHAPE, "--json"]
        b_wall, b_cpu, b_out = timed(command, args.before)
        a_wall, a_cpu, a_out = timed(command, args.after)
        over_b, over_a = b_cpu - floor_cpu, a_cpu - floor_cpu
        print(f"| {label} | {b_wall:.1f} / {b_cpu:.1f} s | {a_wall:.1f} / {a_cpu:.1f} s | "
              f"{over_b:.1f} -> {over_a:.1f} s ({over_a / max(over_b, 1e-9):.2f}); wall ratio {a_wall / b_wall:.2f} | "
              f"{errors_of(b_out)} | {errors_of(a_out)} |", flush=True)
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
