"""Benchmark, run by hand (not by CI): the whole command on layers of a realistic size.

    python bench/realistic.py [--repeat 1] [--before CHECKOUT]

Prints one table, measured side by side in one run (a fresh process each, best of --repeat):
- the floor, `python -c "import tensorflow, keras, keras_hub"`: what any run pays before checking;
- a pre-norm residual MLP block (`PreNormResidualMLP` below, 526,080 parameters) on input 8x128x256,
  with and without --no-numeric;
- keras_hub `TransformerEncoder(intermediate_dim=1024, num_heads=8)` on 8x128x256, with and without
  --no-numeric;
- `PlantedBiasMLP` below: 513,768 parameters whose first bias (1,000 numbers) passes through a
  tf.custom_gradient that makes its gradient 1e-3 too large (relative), and whether the command
  reports that as `gradient-mismatch` on that bias and on nothing else.

Each gradcheck row gives its wall time, the time over the floor, its peak memory (RSS) and the
verdict it printed (exit status and error codes). The machine may be shared: the load average is
printed at the start and the end, and the figures should be read with it.

The layers are defined at module level so the command can load them as
`bench/realistic.py:PreNormResidualMLP`; loading this file as a target does not run the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gradcheck.backends.tensorflow.runtime import tensorflow

# The layers below subclass Keras's, so TensorFlow is imported with the module; gradcheck's quiet
# import keeps its C++ log lines (which TF_CPP_MIN_LOG_LEVEL alone does not stop) off the table.
tf, keras = tensorflow()

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().relative_to(ROOT).as_posix()
OFF_BY = 1e-3  # the planted relative error of the bias gradient
SHAPE = "8,128,256"  # batch, sequence, features


class PreNormResidualMLP(keras.layers.Layer):
    """x + W2·gelu(W1·LayerNorm(x) + b1) + b2, width 256 -> 1024 -> 256: 526,080 parameters."""

    def __init__(self, hidden: int = 1024, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.norm = keras.layers.LayerNormalization()
        self.up = keras.layers.Dense(hidden, activation="gelu")
        self.down = None

    def build(self, input_shape):
        # Every sublayer built here, so load_model can restore their weights (a sublayer made in
        # build() and left unbuilt until the first call fails the reload check).
        self.down = keras.layers.Dense(input_shape[-1])
        self.norm.build(input_shape)
        self.up.build(input_shape)
        self.down.build((*input_shape[:-1], self.hidden))

    def call(self, inputs):
        return inputs + self.down(self.up(self.norm(inputs)))


@tf.custom_gradient
def _bias_off_by(bias):
    """The identity, with a gradient OFF_BY too large: the planted error."""
    return tf.identity(bias), lambda upstream: upstream * (1.0 + OFF_BY)


class PlantedBiasMLP(keras.layers.Layer):
    """x + gelu(LayerNorm(x)·W1 + b1)·W2 + b2 (256 -> 1000 -> 256, 513,768 parameters) where b1's
    gradient is 1e-3 too large. A custom gradient refuses a variable (NOTES.md 7), so b1 goes in
    as a tensor, as a user's straight-through trick would."""

    def build(self, input_shape):
        width = input_shape[-1]
        self.norm = keras.layers.LayerNormalization()
        self.norm.build(input_shape)
        self.w1 = self.add_weight(shape=(width, 1000), name="w1")
        self.b1 = self.add_weight(shape=(1000,), initializer="random_normal", name="b1")
        self.w2 = self.add_weight(shape=(1000, width), name="w2")
        self.b2 = self.add_weight(shape=(width,), initializer="zeros", name="b2")

    def call(self, inputs):
        hidden = tf.matmul(self.norm(inputs), self.w1) + _bias_off_by(tf.convert_to_tensor(self.b1))
        return inputs + tf.matmul(keras.activations.gelu(hidden), self.w2) + self.b2


def run_timed(
    command: list[str], repeat: int, checkout: str | None = None, cwd: Path = ROOT
) -> tuple[float, float, float, str]:
    """Best wall time (s), that run's CPU time (user + system, s, the worker process included),
    its peak RSS (MB, of the largest process) and its stdout. CPU time is the figure to compare
    on a shared machine: it hardly moves with the load, while wall time does."""
    best: tuple[float, float, float, str] | None = None
    timer = shutil.which("time") or "/usr/bin/time"
    for _ in range(repeat):
        with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
            wrapped = [timer, "-f", "%U %S %M", "-o", out.name, *command] if os.path.exists(timer) else command
            start = time.perf_counter()
            environment = dict(os.environ)
            if checkout is not None:
                environment["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, environment.get("PYTHONPATH")]))
            completed = subprocess.run(wrapped, cwd=cwd, capture_output=True, text=True, check=False, env=environment)
            elapsed = time.perf_counter() - start
            text = out.read().split()
            peak = int(text[-1]) / 1024 if text and text[-1].isdigit() else float("nan")
            cpu = float(text[-3]) + float(text[-2]) if len(text) >= 3 else float("nan")
        if best is None or elapsed < best[0]:
            best = (elapsed, cpu, peak, completed.stdout)
    assert best is not None
    return best


def verdict(stdout: str) -> tuple[str, int, list[tuple[str, str]]]:
    """exit-like summary of a --json document: 'ok'/'errors', parameter count, (code, tensor) errors."""
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError:
        return "could not run", 0, []
    parameters = 0
    for row in document["variables"]:
        if row["kind"] == "trainable":
            count = 1
            for size in row["shape"]:
                count *= size
            parameters += count
    errors = [(f["code"], f["tensor"]) for f in document["findings"] if f["severity"] == "error"]
    return ("ok" if document["ok"] else "errors"), parameters, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the best is shown")
    parser.add_argument(
        "--before",
        metavar="CHECKOUT",
        help="also run each row with the gradcheck package of another checkout (a git worktree), "
        "alternating with this one, and print both",
    )
    args = parser.parse_args()

    gradcheck = str(Path(sys.executable).with_name("gradcheck"))
    encoder = ["keras_hub.layers:TransformerEncoder", "--init", "intermediate_dim=1024", "--init", "num_heads=8"]
    rows = [
        ("pre-norm residual MLP block", [f"{HERE}:PreNormResidualMLP"]),
        ("same, --no-numeric", [f"{HERE}:PreNormResidualMLP", "--no-numeric"]),
        ("keras_hub TransformerEncoder(intermediate_dim=1024, num_heads=8)", encoder),
        ("same, --no-numeric", [*encoder, "--no-numeric"]),
        (f"planted {OFF_BY:g} relative error in the gradient of `b1` (1,000 numbers)", [f"{HERE}:PlantedBiasMLP"]),
    ]
    # The command as a module of a given checkout: PYTHONPATH puts that checkout's package first.
    versions = [("now", None)] + ([("before", str(Path(args.before).resolve()))] if args.before else [])
    print(f"# {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.2f} at the start · input {SHAPE}")
    print()
    floor_time, floor_cpu, floor_peak, _ = run_timed(
        [sys.executable, "-c", "import tensorflow, keras, keras_hub"], args.repeat
    )
    print(
        "| command | code | parameters | wall time | over the floor | CPU time | CPU over the floor | peak memory (RSS) | verdict |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    print(
        f'| `python -c "import tensorflow, keras, keras_hub"` (floor) | | | {floor_time:.2f} s | | '
        f"{floor_cpu:.2f} s | | {floor_peak:.0f} MB | |"
    )
    for label, target in rows:
        for name, checkout in versions:
            command = [gradcheck, *target, "--input-shape", SHAPE, "--json"]
            elapsed, cpu, peak, stdout = run_timed(command, args.repeat, checkout)
            status, parameters, errors = verdict(stdout)
            shown = status + (
                "" if not errors else ": " + ", ".join(f"{code} on `{tensor}`" for code, tensor in errors)
            )
            if "PlantedBiasMLP" in target[0]:
                caught = errors == [("gradient-mismatch", "b1")]
                shown += " — caught" if caught else " — NOT caught as gradient-mismatch on `b1` alone"
            print(
                f"| {label} | {name} | {parameters:,} | {elapsed:.2f} s | {elapsed - floor_time:+.2f} s | "
                f"{cpu:.2f} s | {cpu - floor_cpu:+.2f} s | {peak:.0f} MB | {shown} |",
                flush=True,
            )
    print()
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
