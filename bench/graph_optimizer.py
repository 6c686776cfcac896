"""Benchmark, run by hand (not by CI): the checks with and without TensorFlow's graph optimizer.

    python bench/graph_optimizer.py [--repeat 3] [--skip-large]

A check compiles a few functions per layer (the probe's, the float64 copy's gradients and loss)
and runs each a handful of times. runtime.unoptimized_graphs() turns Grappler off for the check,
since optimizing each function as it is first called cost more than it saved. This prints, for
each layer, the CPU time of one whole check (api.build_report, as a worker runs it) both ways,
taking turns in this one process, set up as a worker is (best of --repeat, after a warm-up of
each), their ratio, and the verdict of each way, so that a difference in what is reported shows.

The machine may be shared: the CPU time of this process (all its threads) is the figure printed,
as the one load disturbs least, and the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SMALL = [
    ("sample_layers/classic.py:DenseWithActivation", {"init": ["units=10"], "input_shape": ["100,5"]}),
    ("sample_layers/gradients.py:AttentionLike", {"input_shape": ["2,6,8"]}),
    ("keras.layers:Conv2D", {"init": ["filters=4", "kernel_size=3"], "input_shape": ["4,8,8,3"]}),
    ("keras.layers:LSTM", {"init": ["units=4"], "input_shape": ["16,3,5"]}),
    ("keras.layers:MultiHeadAttention", {"init": ["num_heads=2", "key_dim=4"], "input_shape": ["4,6,8", "4,6,8"]}),
    ("keras.layers:LayerNormalization", {"input_shape": ["16,8"]}),
    ("keras.layers:Dense", {"init": ["units=8"], "input_shape": ["16,5"], "order": 2}),
]
LARGE = [
    ("bench/realistic.py:PreNormResidualMLP", {"input_shape": ["8,128,256"]}),
    (
        "keras_hub.layers:TransformerEncoder",
        {"init": ["intermediate_dim=1024", "num_heads=8"], "input_shape": ["8,128,256"]},
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs each way per layer; the best is shown")
    parser.add_argument("--skip-large", action="store_true", help="leave out the two 500k+ parameter layers")
    args = parser.parse_args()

    from gradcheck.backends.tensorflow import runtime
    from gradcheck.isolation.worker import prepare
    from gradcheck.options import make_options
    from gradcheck.pipeline import build_report

    prepare()  # as a worker starts: TensorFlow imported and its objects frozen out of the collector
    ways = {"optimized": contextlib.nullcontext, "unoptimized": runtime.unoptimized_graphs}

    def check(target: str, keywords: dict, way: str) -> tuple[float, str]:
        options = make_options(**keywords)
        real = runtime.unoptimized_graphs
        runtime.unoptimized_graphs = ways[way]  # build_report looks it up as it starts
        try:
            start = time.process_time()
            report = build_report(target, options, fresh_session=True)
            cpu = time.process_time() - start
        finally:
            runtime.unoptimized_graphs = real
        errors = sorted(f"{f.code} {f.tensor}" for f in report.findings if f.severity == "error")
        return cpu, ("ok" if report.ok else "errors: " + ", ".join(errors))

    print(f"# {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.2f} at the start")
    print(
        "\n| target | order | optimized (CPU) | unoptimized (CPU) | ratio | verdict, optimized | verdict, unoptimized |"
    )
    print("|---|---:|---:|---:|---:|---|---|")
    totals = dict.fromkeys(ways, 0.0)
    for target, keywords in SMALL + ([] if args.skip_large else LARGE):
        for way in ways:
            check(target, keywords, way)  # warm-up: each way's first check pays one-off costs
        best = dict.fromkeys(ways, float("inf"))
        verdicts = {}
        for _ in range(args.repeat):
            for way in ways:
                cpu, verdicts[way] = check(target, keywords, way)
                best[way] = min(best[way], cpu)
        for way in ways:
            totals[way] += best[way]
        print(
            f"| `{target}` | {keywords.get('order', 1)} | {best['optimized']:.3f} s | {best['unoptimized']:.3f} s "
            f"| {best['unoptimized'] / best['optimized']:.2f} | {verdicts['optimized']} | {verdicts['unoptimized']} |"
        )
    print(
        f"| all of the above | | {totals['optimized']:.3f} s | {totals['unoptimized']:.3f} s "
        f"| {totals['unoptimized'] / totals['optimized']:.2f} | | |"
    )
    print(f"\n# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
