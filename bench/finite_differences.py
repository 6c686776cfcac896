"""Benchmark, run by hand (not by CI): gradcheck's finite-difference check against tf.test.compute_gradient.

    python bench/finite_differences.py [--repeat 3] [--max-compute-gradient 100000]

Prints, measured side by side in one run:
1. Keras Dense layers of about 500, 6,000, 80,000 and 1,000,000 numbers (weights + input): the
   wall time of a whole `gradcheck.check()` (and of its finite-difference step alone) and its verdict, on the plain layer and on the same
   layer with a custom gradient wrong by a relative 1e-3 on its kernel, against
   `tf.test.compute_gradient` on the same computation (x @ kernel + bias, projected on the same kind
   of random r) as a function of (kernel, bias, input) in float64 — compiled with tf.function, to be
   fair to it. compute_gradient gives Jacobians, not a verdict: it "catches" the planted error when
   its worst relative difference exceeds 1e-5 (gradcheck's float64 rtol). It runs only up to
   --max-compute-gradient numbers; beyond that its time is extrapolated (linear: 2 passes per number).
2. The whole CLI (a subprocess each, best of --repeat) on the classic layer at 100,5 and on a
   1M-parameter Dense, against the floor `python -c "import tensorflow"`, with peak memory (RSS).
3. `gradcheck --help` wall time.

The machine is shared: times are the best of --repeat runs, and the load average is printed.
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OFF_BY = 1e-3
CAUGHT = 1e-5  # compute_gradient's relative difference that counts as catching the error
# (units, batch, features): kernel features*units + bias units + input batch*features numbers.
SIZES = [(20, 8, 20), (60, 16, 80), (250, 32, 300), (1000, 32, 1000)]


def planted_layer_class():
    """A Dense layer whose kernel passes through an identity with a gradient 1e-3 too large."""
    from gradcheck.backends.tensorflow.runtime import tensorflow

    tf, keras = tensorflow()

    @tf.custom_gradient
    def identity_off(w):
        return tf.identity(w), lambda upstream: upstream * (1.0 + OFF_BY)

    class PlantedDense(keras.layers.Dense):
        def call(self, inputs):
            return tf.matmul(inputs, identity_off(tf.convert_to_tensor(self.kernel))) + self.bias

    return PlantedDense, identity_off


def numbers(units, batch, features) -> int:
    return features * units + units + batch * features


def best_of(repeat, run):
    results = [run() for _ in range(repeat)]
    return min(results, key=lambda r: r[0])


def timed_step(module_name: str, function_name: str) -> list:
    """Wrap a check step so its own share of a check() is measured: returns the list each call's
    seconds are appended to (api.build_report imports the step at call time, so the wrapper is used)."""
    import importlib

    module = importlib.import_module(module_name)
    spent: list = []
    original = getattr(module, function_name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    setattr(module, function_name, timed)
    return spent


def gradcheck_side(units, batch, features, repeat):
    import gradcheck

    planted, _ = planted_layer_class()
    spent = timed_step("gradcheck.numeric.first_order", "check_numeric")

    def run(target):
        start = time.perf_counter()
        report = gradcheck.check(target, init={"units": units}, input_shape=(batch, features))
        return time.perf_counter() - start, spent[-1], report

    _, _, clean = best_of(repeat, lambda: run("keras.layers:Dense"))
    planted_time, numeric_time, found = best_of(repeat, lambda: run(planted))
    mismatched = sorted(f.tensor for f in found.findings if f.code == "gradient-mismatch")
    false_alarms = [f.tensor for f in clean.findings if f.code == "gradient-mismatch"]
    return planted_time, numeric_time, mismatched, false_alarms


def compute_gradient_side(units, batch, features):
    from gradcheck.backends.tensorflow.runtime import tensorflow

    tf, _ = tensorflow()
    _, identity_off = planted_layer_class()
    rng = np.random.default_rng(0)
    kernel = tf.constant(rng.uniform(-0.1, 0.1, (features, units)))
    bias = tf.constant(np.zeros(units))
    x = tf.constant(rng.uniform(-1, 1, (batch, features)))
    r = tf.constant(rng.standard_normal((batch, units)))

    @tf.function
    def loss(kernel, bias, x):
        return tf.reduce_sum((tf.matmul(x, identity_off(kernel)) + bias) * r) / batch

    loss(kernel, bias, x)  # trace once, outside the timing
    start = time.perf_counter()
    theoretical, numerical = tf.test.compute_gradient(loss, [kernel, bias, x])
    elapsed = time.perf_counter() - start
    worst = max(
        float(np.max(np.abs(t - n)) / max(float(np.max(np.abs(t))), 1e-300))
        for t, n in zip(theoretical, numerical)
    )
    return elapsed, worst


def run_timed(command, repeat):
    """Best wall time (s) and the peak RSS (MB) of that run, via /usr/bin/time or getrusage."""
    best = None
    for _ in range(repeat):
        with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
            timer = shutil.which("time") or "/usr/bin/time"
            wrapped = [timer, "-f", "%e %M", "-o", out.name, *command] if os.path.exists(timer) else command
            start = time.perf_counter()
            subprocess.run(wrapped, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            elapsed = time.perf_counter() - start
            text = out.read().split()
            peak = int(text[-1]) / 1024 if len(text) >= 2 else float("nan")
        if best is None or elapsed < best[0]:
            best = (elapsed, peak)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-compute-gradient", type=int, default=100_000,
                        help="largest layer (numbers) tf.test.compute_gradient is run on")
    args = parser.parse_args()

    from gradcheck.backends.tensorflow.runtime import tensorflow, versions

    tensorflow()
    print(f"# {versions()} · {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.2f} at start")
    print()
    print("| numbers | gradcheck check() (its finite differences) | verdict (clean / planted 1e-3) | "
          "tf.test.compute_gradient | its worst rel. diff (planted) | caught by it | "
          "ratio vs whole check() | ratio vs finite differences |")
    print("|---:|---:|---|---:|---:|---|---:|---:|")
    per_number = None
    for units, batch, features in SIZES:
        count = numbers(units, batch, features)
        planted_time, numeric_time, mismatched, false_alarms = gradcheck_side(units, batch, features, args.repeat)
        ours = ("FALSE ALARM " + ",".join(false_alarms) if false_alarms else "ok") + " / " + (
            "mismatch on " + ",".join(mismatched) if mismatched else "MISSED")
        if count <= args.max_compute_gradient:
            theirs, worst = compute_gradient_side(units, batch, features)
            per_number = theirs / count
            caught = "yes" if worst > CAUGHT else "no"
            theirs_text, worst_text = f"{theirs:.2f} s", f"{worst:.1e}"
        else:
            theirs = per_number * count if per_number else float("nan")
            caught, theirs_text, worst_text = "not run", f"~{theirs:.0f} s (extrapolated)", ""
        print(f"| {count:,} | {planted_time:.2f} s ({numeric_time:.2f} s) | {ours} | {theirs_text} | {worst_text} | "
              f"{caught} | {theirs / planted_time:,.0f}x | {theirs / numeric_time:,.0f}x |", flush=True)

    print()
    gradcheck_bin = str(Path(sys.executable).with_name("gradcheck"))
    floor_time, floor_peak = run_timed([sys.executable, "-c", "import tensorflow"], args.repeat)
    runs = [
        ("classic DenseWithActivation, units=10, input 100,5",
         [gradcheck_bin, "sample_layers/classic.py:DenseWithActivation", "--init", "units=10", "--input-shape", "100,5"]),
        ("keras Dense, units=1000, input 32,1000 (1,001,000 parameters)",
         [gradcheck_bin, "keras.layers:Dense", "--init", "units=1000", "--input-shape", "32,1000"]),
        ("same, --no-numeric",
         [gradcheck_bin, "keras.layers:Dense", "--init", "units=1000", "--input-shape", "32,1000", "--no-numeric"]),
    ]
    print("| command | wall time | over the import floor | peak memory | over the floor |")
    print("|---|---:|---:|---:|---:|")
    print(f"| `python -c \"import tensorflow\"` (floor) | {floor_time:.2f} s | | {floor_peak:.0f} MB | |")
    for label, command in runs:
        elapsed, peak = run_timed(command, args.repeat)
        print(f"| gradcheck {label} | {elapsed:.2f} s | +{elapsed - floor_time:.2f} s | {peak:.0f} MB | "
              f"+{peak - floor_peak:.0f} MB |", flush=True)
    help_time, help_peak = run_timed([gradcheck_bin, "--help"], args.repeat)
    print(f"| `gradcheck --help` | {help_time:.2f} s | | {help_peak:.0f} MB | |")
    print()
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
