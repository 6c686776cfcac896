"""Benchmark, run by hand (not by CI): the whole command on layers a size above bench/realistic.py's.

    python bench/big_layers.py [--repeat 1] [--before CHECKOUT] [--only NAME]

Prints one table, measured side by side in one run (a fresh process each, best of --repeat):
- the floor, `python -c "import tensorflow, keras, keras_hub"`: what any run pays before checking;
- keras_hub `TransformerDecoder(intermediate_dim=3072, num_heads=12)` at GPT-2-small width on
  4x128x768 (7,087,872 parameters), with and without --no-numeric, and `planted_decoder()` below:
  the same block whose feed-forward bias (`_feedforward_intermediate_dense.bias`, 3,072 numbers)
  gets a gradient 1e-3 too large (relative);
- `keras.layers.Embedding(50000, 512)` (25.6M parameters) on 8x128 int32 ids, and
  `PlantedEmbedding` below: the same table whose gradient is 1e-3 too large on one row the batch
  looks up (the row of the batch's first id);
- `ResNetBlock` below: a ResNet basic block (two 3x3 convolutions with batch normalisation, 64
  channels, a residual connection) on 8x56x56x64.

Each gradcheck row gives its wall time and CPU time (user + system of the command and every
process under it), each over the floor's, the peak resident memory of the largest process (the
worker, or the fork server holding TensorFlow), the worker's own peak as `--debug` prints it (and
how much of it the check added to what the worker started with), and the verdict: exit status and
error codes; a planted row says whether the error was caught as `gradient-mismatch` on that tensor
alone. The machine may be shared: the load average is printed at the start and the end, and the
figures should be read with it (CPU time moves least with the load).

The layers are defined at module level so the command can load them as
`bench/big_layers.py:ResNetBlock`; loading this file as a target does not run the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gradcheck.backends.tensorflow.runtime import tensorflow

# The layers below subclass Keras's, so TensorFlow is imported with the module; gradcheck's quiet
# import keeps its C++ log lines off the table. keras_hub is imported by planted_decoder() only: a
# target of this file that does not need it does not pay for its import.
tf, keras = tensorflow()

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().relative_to(ROOT).as_posix()
OFF_BY = 1e-3  # the planted relative error


@tf.custom_gradient
def _bias_off_by(bias):
    """The identity, with a gradient OFF_BY too large."""
    return tf.identity(bias), lambda upstream: upstream * (1.0 + OFF_BY)


class _PlantedBiasDense(keras.layers.Dense):
    """Dense whose bias gradient is OFF_BY too large; a custom gradient refuses a variable, so the
    bias goes in as a tensor, as a user's own trick would."""

    def call(self, inputs, training=None):
        outputs = tf.matmul(inputs, tf.convert_to_tensor(self.kernel))
        return self.activation(outputs + _bias_off_by(tf.convert_to_tensor(self.bias)))


def planted_decoder(**kwargs):
    """keras_hub's TransformerDecoder whose feed-forward's first bias gets a gradient OFF_BY too large."""
    import keras_hub

    class PlantedDecoder(keras_hub.layers.TransformerDecoder):
        def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
            super().build(decoder_sequence_shape, encoder_sequence_shape)
            # The same sublayer, weights and config; only its call() differs.
            self._feedforward_intermediate_dense.__class__ = _PlantedBiasDense

    return PlantedDecoder(**kwargs)


@tf.custom_gradient
def _first_row_off(vectors, ids):
    """The looked-up vectors unchanged; the gradient of those of the batch's first id OFF_BY too large."""

    def gradient(upstream):
        hit = tf.cast(tf.equal(ids, tf.reshape(ids, [-1])[0]), upstream.dtype)[..., None]
        return upstream * (1.0 + OFF_BY * hit), None

    return tf.identity(vectors), gradient


class PlantedEmbedding(keras.layers.Embedding):
    """keras.layers.Embedding whose gradient is OFF_BY too large on the row of the batch's first id.
    The table is read by a lookup, as Embedding reads it: the error sits in a looked-up row."""

    def call(self, inputs):
        return _first_row_off(tf.gather(self.embeddings, inputs), inputs)


class ResNetBlock(keras.layers.Layer):
    """relu(x + BN(conv(relu(BN(conv(x)))))): a ResNet basic block, 3x3 convolutions, 73,984 parameters at 64 channels."""

    def __init__(self, filters: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv1 = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.norm1 = keras.layers.BatchNormalization()
        self.conv2 = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.norm2 = keras.layers.BatchNormalization()

    def build(self, input_shape):
        # Every sublayer built here, so load_model can restore their weights.
        inner = (*input_shape[:-1], self.filters)
        self.conv1.build(input_shape)
        self.norm1.build(inner)
        self.conv2.build(inner)
        self.norm2.build(inner)

    def call(self, inputs, training=None):
        x = keras.activations.relu(self.norm1(self.conv1(inputs), training=training))
        x = self.norm2(self.conv2(x), training=training)
        return keras.activations.relu(inputs + x)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


DECODER = ["--init", "intermediate_dim=3072", "--init", "num_heads=12", "--input-shape", "4,128,768"]
EMBEDDING = ["--init", "input_dim=50000", "--init", "output_dim=512", "--input-shape", "8,128"]
EMBEDDING += ["--input-dtype", "int32", "--input-range", "0,50000"]
ROWS = [
    ("decoder", "keras_hub TransformerDecoder(intermediate_dim=3072, num_heads=12), 4x128x768"),
    ("decoder-no-numeric", "same, --no-numeric"),
    ("decoder-planted", f"planted {OFF_BY:g} error in `_feedforward_intermediate_dense.bias`"),
    ("embedding", "keras.layers.Embedding(50000, 512), 8x128 ids"),
    ("embedding-planted", f"planted {OFF_BY:g} error in one looked-up row of `embeddings`"),
    ("resnet", "ResNet basic block, 64 channels, 8x56x56x64"),
]
COMMANDS = {
    "decoder": ["keras_hub.layers:TransformerDecoder", *DECODER],
    "decoder-no-numeric": ["keras_hub.layers:TransformerDecoder", *DECODER, "--no-numeric"],
    "decoder-planted": [f"{HERE}:planted_decoder", *DECODER],
    "embedding": ["keras.layers:Embedding", *EMBEDDING],
    "embedding-planted": [f"{HERE}:PlantedEmbedding", *EMBEDDING],
    "resnet": [f"{HERE}:ResNetBlock", "--input-shape", "8,56,56,64"],
}
PLANTED = {"decoder-planted": "feedforward_intermediate_dense.bias", "embedding-planted": "embeddings"}
_WORKER = re.compile(r"peak memory of its worker ([\d,]+) MB resident(?:, ([\d,]+) MB more)?")


def run_timed(command: list[str], repeat: int, checkout: str | None = None) -> dict:
    """The best of `repeat` runs: wall and CPU time (s), peak RSS of the largest process (MB), the
    worker's peak and what the check added to it (MB, from --debug), stdout."""
    best: dict | None = None
    timer = shutil.which("time") or "/usr/bin/time"
    environment = dict(os.environ)
    if checkout is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, environment.get("PYTHONPATH")]))
    for _ in range(repeat):
        with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
            wrapped = [timer, "-f", "%U %S %M", "-o", out.name, *command] if os.path.exists(timer) else command
            start = time.perf_counter()
            completed = subprocess.run(wrapped, cwd=ROOT, capture_output=True, text=True, check=False, env=environment)
            elapsed = time.perf_counter() - start
            text = out.read().split()
        worker = _WORKER.search(completed.stderr)
        run = {
            "wall": elapsed,
            "cpu": float(text[-3]) + float(text[-2]) if len(text) >= 3 else float("nan"),
            "peak": int(text[-1]) / 1024 if text and text[-1].isdigit() else float("nan"),
            "worker": float(worker.group(1).replace(",", "")) if worker else None,
            "added": float(worker.group(2).replace(",", "")) if worker and worker.group(2) else None,
            "stdout": completed.stdout,
        }
        if best is None or run["wall"] < best["wall"]:
            best = run
    assert best is not None
    return best


def verdict(stdout: str, planted: str | None) -> str:
    """'ok' or 'errors: code on `tensor`, ...' from a --json document; a planted row says whether
    it was caught as gradient-mismatch on that tensor alone, and how many rows were compared."""
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError:
        return "could not run"
    errors = [(f["code"], f["tensor"]) for f in document["findings"] if f["severity"] == "error"]
    shown = "ok" if not errors else "errors: " + ", ".join(f"{code} on `{tensor}`" for code, tensor in errors)
    rows = [
        f"{v['numeric_rows']:,} rows of `{v['name']}` compared" for v in document["variables"] if v.get("numeric_rows")
    ]
    if rows:
        shown += " (" + "; ".join(rows) + ")"
    if planted is not None:
        caught = errors == [("gradient-mismatch", planted)]
        shown += " — caught" if caught else f" — NOT caught as gradient-mismatch on `{planted}` alone"
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the best is shown")
    parser.add_argument(
        "--before",
        metavar="CHECKOUT",
        help="also run each row with the gradcheck package of another checkout, alternating with "
        "this one, and print both",
    )
    parser.add_argument("--only", action="append", choices=sorted(COMMANDS), help="run only these rows")
    args = parser.parse_args()

    versions = [("now", None)] + ([("before", str(Path(args.before).resolve()))] if args.before else [])
    print(f"# {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.2f} at the start")
    print()
    floor = run_timed([sys.executable, "-c", "import tensorflow, keras, keras_hub"], args.repeat)
    print(
        "| command | code | wall time | over the floor | CPU time | CPU over the floor | peak RSS (largest process) "
        "| worker's peak RSS (added by the check) | verdict |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    print(
        f'| `python -c "import tensorflow, keras, keras_hub"` (floor) | | {floor["wall"]:.2f} s | | '
        f"{floor['cpu']:.2f} s | | {floor['peak']:.0f} MB | | |"
    )
    for name, label in ROWS:
        if args.only and name not in args.only:
            continue
        for version, checkout in versions:
            # The console script, not `python -m`: -m would put the working folder (this checkout)
            # ahead of --before's on sys.path.
            command = [str(Path(sys.executable).with_name("gradcheck")), *COMMANDS[name], "--json", "--debug"]
            run = run_timed(command, args.repeat, checkout)
            worker = "n/a" if run["worker"] is None else f"{run['worker']:,.0f} MB"
            if run["added"] is not None:
                worker += f" (+{run['added']:,.0f} MB)"
            print(
                f"| {label} | {version} | {run['wall']:.2f} s | {run['wall'] - floor['wall']:+.2f} s | "
                f"{run['cpu']:.2f} s | {run['cpu'] - floor['cpu']:+.2f} s | {run['peak']:,.0f} MB | {worker} | "
                f"{verdict(run['stdout'], PLANTED.get(name))} |",
                flush=True,
            )
    print()
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
