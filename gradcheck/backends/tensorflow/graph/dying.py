"""Where a gradient dies or explodes: the op on the path whose own slope is zero, tiny or huge.

A zero, vanishing or exploding gradient is a product of local derivatives along the path from the
tensor to the output; one op usually decides it: a ReLU whose inputs are all negative (slope 0), a
sigmoid or tanh driven into saturation (slope 1e-13), an exp of a large value (slope e^x). As
cuts.py does for a None gradient, the walk goes forward from the tensor through the ops from which
the loss is reachable; for each activation-like op on the way its slope is computed from its own
input and output on the probe batch (one evaluation of the traced graph, only when a warning is
made), and the op whose slope explains the status is named at its line in the user's code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....layer.source import user_location
from .cuts import ancestors, entry_tensors
from .values import graph_values


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -700, 700)))


# op type -> (what the user wrote, slope from (input, output))
_SLOPES = {
    "Relu": ("tf.nn.relu", lambda x, y: (x > 0).astype("float64")),
    "Relu6": ("tf.nn.relu6", lambda x, y: ((x > 0) & (x < 6)).astype("float64")),
    "LeakyRelu": ("leaky_relu", None),  # never zero: named only when it explodes or vanishes
    "Sigmoid": ("tf.sigmoid", lambda x, y: y * (1.0 - y)),
    "Tanh": ("tf.tanh", lambda x, y: 1.0 - y * y),
    "Exp": ("tf.exp", lambda x, y: y),
    "Softplus": ("tf.nn.softplus", lambda x, y: _sigmoid(x)),
    "Elu": ("tf.nn.elu", lambda x, y: np.where(x > 0, 1.0, y + 1.0)),
    "Selu": ("tf.nn.selu", None),
}


@dataclass(frozen=True)
class Culprit:
    op_type: str
    written_as: str
    location: str | None
    slope: float  # the largest |local derivative| over the probe batch
    note: str  # e.g. "its inputs are all negative"

    def describe(self) -> str:
        shown = f"{self.op_type} ({self.written_as})"
        return f"{shown} at {self.location}" if self.location else shown


def culprit(probe, run, source, status: str) -> Culprit | None:
    """The op on `source`'s path to the loss that explains `status` (zero, vanishing, exploding)."""
    if run.trace is None or source is None or status not in ("zero", "vanishing", "exploding"):
        return None
    candidates = _ops_on_path(run.trace, source)
    if not candidates:
        return None
    values = _values(probe, run, candidates)
    if values is None:  # the graph could not be pruned or run: report without the op
        return None
    slopes = []
    for op in candidates:
        written_as, slope_of = _SLOPES[op.type]
        if slope_of is None:
            continue
        x, y = values[op.inputs[0].ref()], values[op.outputs[0].ref()]
        slope = np.abs(np.asarray(slope_of(x, y), "float64"))
        slopes.append((op, written_as, float(np.max(slope)) if slope.size else 0.0, x))
    if not slopes:
        return None
    if status == "zero":
        dead = [item for item in slopes if item[2] == 0.0]
        if not dead:
            return None
        op, written_as, slope, x = dead[0]
        note = _zero_note(op.type, x)
    elif status == "vanishing":
        op, written_as, slope, x = min(slopes, key=lambda item: item[2])
        if slope > 1e-2:
            return None  # no single op explains it: a long chain of ordinary factors
        note = f"its slope is at most {slope:.1e} on the probe batch (saturated: inputs from {np.min(x):.3g} to {np.max(x):.3g})"
    else:
        op, written_as, slope, x = max(slopes, key=lambda item: item[2])
        if slope < 1e2:
            return None
        note = f"its slope reaches {slope:.1e} on the probe batch (inputs up to {np.max(x):.3g})"
    return Culprit(op.type, written_as, user_location(op.traceback), slope, note)


def _zero_note(op_type: str, x) -> str:
    if op_type in ("Relu", "Relu6") and np.max(x) <= 0:
        return f"its inputs are all negative on the probe batch (at most {np.max(x):.3g})"
    return "its slope is zero on every entry of the probe batch"


def _ops_on_path(trace, source) -> list:
    """Activation-like ops between `source` and the loss, in graph order (forward ops only)."""
    feeds_loss = ancestors(trace.loss.op)
    start = entry_tensors(source, feeds_loss)
    seen, frontier, found = set(), list(start), []
    while frontier:
        tensor = frontier.pop()
        for op in tensor.consumers():
            if op not in feeds_loss or op in seen or op.name.startswith("gradient_tape/"):
                continue
            seen.add(op)
            if op.type in _SLOPES:
                found.append(op)
            frontier.extend(t for t in op.outputs if t.dtype.is_floating)
    order = {op: index for index, op in enumerate(trace.graph.get_operations())}
    return sorted(found, key=lambda op: order[op])


def _values(probe, run, ops) -> dict | None:
    """{tensor ref: numpy value} for the inputs and outputs of `ops`, on the probe batch (None when
    the graph cannot be evaluated)."""
    fetches: list = []
    for op in ops:
        for tensor in (op.inputs[0], op.outputs[0]):
            if all(tensor is not other for other in fetches):
                fetches.append(tensor)
    values = graph_values(probe, run, fetches)
    if values is None:
        return None
    return {t.ref(): np.asarray(v, "float64") for t, v in zip(fetches, values)}
