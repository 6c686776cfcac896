"""Benchmark, run by hand (not by CI): the joint finite-difference screen (gradcheck/screening.py),
before against after, on layers of a realistic size.

    python bench/screening.py --before /path/to/checkout/without/screen [--after .]

Runs the whole command (a fresh process each) with PYTHONPATH set to each checkout in turn, side
by side in one run, on:
- `ResidualMLP` below: a pre-norm residual MLP block, 526,080 parameters, input 8x128x256;
- keras_hub `TransformerEncoder(intermediate_dim=1024, num_heads=8)` on 8x128x256;
- `PlantedBias` below: 513,256 parameters whose bias `b1` (1,000 numbers) gets a gradient 1e-3
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

import keras
import tensorflow as tf

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
SHAPE = "8,128,256"
OFF_BY = 1e-3


class ResidualMLP(keras.layers.Layer):
    """x + Dense(256)(Dense(1024, gelu)(LayerNorm(x))): 526,080 parameters at width 256."""

    def build(self, input_shape):
        self.norm = keras.layers.LayerNormalization()
        self.up = keras.layers.Dense(1024, activation="gelu")
        self.down = keras.layers.Dense(input_shape[-1])

    def call(self, inputs):
        return inputs + self.down(self.up(self.norm(inputs)))


@tf.custom_gradient
def _too_large(bias):
    return tf.identity(bias), lambda upstream: upstream * (1.0 + OFF_BY)


class PlantedBias(keras.layers.Layer):
    """x + gelu(LayerNorm(x)·W1 + b1)·W2 + b2 (256 -> 1000 -> 256), b1's gradient 1e-3 too large."""

    def build(self, input_shape):
        width = input_shape[-1]
        self.norm = keras.layers.LayerNormalization()
        self.norm.build(input_shape)
        self.w1 = self.add_weight(shape=(width, 1000), name="w1")
        self.b1 = self.add_weight(shape=(1000,), initializer="random_normal", name="b1")
        self.w2 = self.add_weight(shape=(1000, width), name="w2")
        self.b2 = self.add_weight(shape=(width,), initializer="zeros", name="b2")

    def call(self, inputs):
        hidden = tf.matmul(self.norm(inputs), self.w1) + _too_large(tf.convert_to_tensor(self.b1))
        return inputs + tf.matmul(keras.activations.gelu(hidden), self.w2) + self.b2


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
        ("pre-norm residual MLP block (526k)", [f"{HERE}:ResidualMLP"]),
        ("keras_hub TransformerEncoder(1024, 8)", encoder),
        ("the same, --no-numeric (what is not finite differences)", [*encoder, "--no-numeric"]),
        (f"planted {OFF_BY:g} error in `b1` (1,000 of 513k)", [f"{HERE}:PlantedBias"]),
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
