"""Benchmark, run by hand (not by CI): the cost of --order 2 against the first-order check.

    python bench/second_order.py [--repeat 3] [--skip-largest]

Prints, measured in one run:
1. Keras Dense layers of the sizes of bench/finite_differences.py: the wall time of the
   first-order finite-difference step (numeric.check_numeric) and of the second-order step
   (second_order.check_second_order) of the same `gradcheck.check(..., order=2)`, their ratio, and
   the whole check() with order 1 and with order 2.
2. A realistic block: a pre-norm residual MLP, x + W2·gelu(W1·LayerNorm(x) + b1) + b2, width 256,
   hidden 1024 (526k parameters), on an input of 8x128x256, the same way.
3. A planted error of a relative 1e-3 in a second derivative (a tanh whose derivative's own
   gradient is 1e-3 too large; its first derivative is exact), on a Dense-sized layer: is it caught?

The machine is shared: times are the best of --repeat runs, and the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from finite_differences import SIZES, numbers, timed_step

OFF_BY = 1e-3


def mlp_block_class():
    from gradcheck.backends.tensorflow.runtime import tensorflow

    _tf, keras = tensorflow()

    class PreNormMLP(keras.layers.Layer):
        """x + W2·gelu(W1·LayerNorm(x) + b1) + b2: the feed-forward half of a transformer block."""

        def __init__(self, width=256, hidden=1024, **kwargs):
            super().__init__(**kwargs)
            self.width, self.hidden = width, hidden
            self.norm = keras.layers.LayerNormalization()
            self.up = keras.layers.Dense(hidden, activation="gelu")
            self.down = keras.layers.Dense(width)

        def call(self, x):
            return x + self.down(self.up(self.norm(x)))

    return PreNormMLP


def planted_second_derivative_class():
    """A Dense layer with a tanh whose first derivative is exact and whose second is 1e-3 too large."""
    from gradcheck.backends.tensorflow.runtime import tensorflow

    tf, keras = tensorflow()

    @tf.custom_gradient
    def slope(z):
        y = tf.tanh(z)
        return 1.0 - y * y, lambda upstream: upstream * (-2.0 * y * (1.0 - y * y)) * (1.0 + OFF_BY)

    @tf.custom_gradient
    def tanh(z):
        return tf.tanh(z), lambda upstream: upstream * slope(z)

    class PlantedTanhDense(keras.layers.Dense):
        def call(self, inputs):
            return tanh(tf.matmul(inputs, self.kernel) + self.bias)

    return PlantedTanhDense


def measure(target, repeat, first_spent, second_spent, **keywords):
    """(first-order step s, second-order step s, check() order 1 s, check() order 2 s, report of order 2)."""
    import gradcheck

    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        gradcheck.check(target, **keywords)
        whole_first = time.perf_counter() - start
        start = time.perf_counter()
        report = gradcheck.check(target, order=2, **keywords)
        whole_second = time.perf_counter() - start
        row = (first_spent[-1], second_spent[-1], whole_first, whole_second, report)
        if best is None or row[1] < best[1]:
            best = row
    return best


def verdict(report) -> str:
    found = sorted({(f.code, f.tensor) for f in report.findings if f.code.startswith("second-order")})
    return "; ".join(f"{code} {tensor}" for code, tensor in found) or "no finding"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-largest", action="store_true", help="leave out the 1M-number Dense")
    args = parser.parse_args()

    from gradcheck.backends.tensorflow.runtime import tensorflow, versions

    tensorflow()
    first_spent = timed_step("gradcheck.numeric.first_order", "check_numeric")
    second_spent = timed_step("gradcheck.numeric.second_order", "check_second_order")
    print(f"# {versions()} · {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.2f} at start")
    print()
    print("| layer | numbers | first-order finite differences | second-order step | ratio | "
          "check() order 1 | check() order 2 | ratio | --order 2 findings |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    rows = [(f"keras Dense units={u}, input {b}x{f}", numbers(u, b, f), "keras.layers:Dense",
             {"init": {"units": u}, "input_shape": (b, f)}) for u, b, f in SIZES]
    if args.skip_largest:
        rows = rows[:-1]
    block = mlp_block_class()
    rows.append(("pre-norm residual MLP 256→1024→256, input 8x128x256", 526_336 + 8 * 128 * 256, block,
                 {"input_shape": (8, 128, 256)}))
    planted = planted_second_derivative_class()
    rows.append((f"planted: tanh Dense units=60, input 16x80, second derivative off by {OFF_BY:g}",
                 numbers(60, 16, 80), planted, {"init": {"units": 60}, "input_shape": (16, 80)}))
    for label, count, target, keywords in rows:
        first, second, whole_first, whole_second, report = measure(target, args.repeat, first_spent, second_spent, **keywords)
        print(f"| {label} | {count:,} | {first:.2f} s | {second:.2f} s | {second / first:.1f}x | "
              f"{whole_first:.2f} s | {whole_second:.2f} s | {whole_second / whole_first:.1f}x | "
              f"{verdict(report)} |", flush=True)


if __name__ == "__main__":
    main()
