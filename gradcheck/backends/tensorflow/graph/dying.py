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


# op type -> (what the user wrote, slope from (input, output)) for ops of one float input
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
# Ops of two inputs whose slope along the on-path one is set by the other: a clip's bounds
# (tf.clip_by_value is a Minimum then a Maximum), a gate's factor.
_BINARY = {
    "Minimum": "tf.minimum, a clip's upper bound",
    "Maximum": "tf.maximum, a clip's lower bound",
    "Mul": "a product",
}


@dataclass(frozen=True)
class Culprit:
    op_type: str
    written_as: str
    location: str | None
    slope: float  # the largest |local derivative| over the probe batch
    note: str  # e.g. "its inputs are all negative"
    advice: str = ""  # what to change, for this op and the values it saw

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
    for op, index in candidates:
        x, y = values[op.inputs[index].ref()], values[op.outputs[0].ref()]
        if op.type in _BINARY:
            other = values[op.inputs[1 - index].ref()]
            local = _binary_slope(op.type, x, other)
            slopes.append((op, _BINARY[op.type], float(np.max(local)) if local.size else 0.0, x, other))
            continue
        written_as, slope_of = _SLOPES[op.type]
        if slope_of is None:
            continue
        local = np.abs(np.asarray(slope_of(x, y), "float64"))
        slopes.append((op, written_as, float(np.max(local)) if local.size else 0.0, x, None))
    if not slopes:
        return None
    if status == "zero":
        dead = [item for item in slopes if item[2] == 0.0]
        if not dead:
            return None
        op, written_as, slope, x, other = dead[0]
        note, advice = _zero_note(op, x, other)
    elif status == "vanishing":
        op, written_as, slope, x, other = min(slopes, key=lambda item: item[2])
        if slope > 1e-2:
            return None  # no single op explains it: a long chain of ordinary factors
        note, advice = _vanishing_note(op, slope, x, other)
    else:
        op, written_as, slope, x, other = max(slopes, key=lambda item: item[2])
        if slope < 1e2:
            return None
        note = f"its slope reaches {slope:.1e} on the probe batch (inputs up to {np.max(x):.3g})"
        if op.type == "Mul":
            note = f"it is multiplied by {_factor(op, other)}, which reaches {slope:.1e} on the probe batch"
        advice = ""
    return Culprit(op.type, written_as, user_location(op.traceback), slope, note, advice)


def _binary_slope(op_type: str, x, other) -> np.ndarray:
    """The slope along `x`: TensorFlow gives a Minimum's gradient to the smaller operand (ties to
    the first), a Maximum's to the larger, a Mul's is the other factor."""
    x, other = np.broadcast_arrays(np.asarray(x, "float64"), np.asarray(other, "float64"))
    if op_type == "Minimum":
        return (x <= other).astype("float64")
    if op_type == "Maximum":
        return (x >= other).astype("float64")
    return np.abs(other)


def _bound(other) -> str:
    values = np.unique(np.asarray(other))
    return f"{values[0]:.3g}" if values.size == 1 else f"{np.min(other):.3g} to {np.max(other):.3g}"


def _factor(op, other) -> str:
    """The other factor of a multiplication, named by the op that makes it (a gate's Sigmoid)."""
    made_by = op.inputs[1].op if op.inputs[0].op.type != "Const" else op.inputs[0].op
    for tensor in op.inputs:
        producer = tensor.op
        if producer.type in _SLOPES:
            made_by = producer
    where = user_location(made_by.traceback)
    if made_by.type in _SLOPES:
        return f"the output of {made_by.type} ({_SLOPES[made_by.type][0]}){f' at {where}' if where else ''}"
    return "the other factor"


def _zero_note(op, x, other) -> tuple[str, str]:
    """(what the op saw, what to change) for an op whose slope is zero on every entry."""
    low, high = f"{np.min(x):.3g}", f"{np.max(x):.3g}"
    if op.type in ("Relu", "Relu6") and np.max(x) <= 0:
        return (
            f"its inputs are all negative on the probe batch (at most {high})",
            "Bring the pre-activations feeding that ReLU above zero (a bias initialised far below zero keeps "
            "them negative), or use leaky_relu/gelu, which never stop the gradient entirely.",
        )
    if op.type == "Minimum":
        return (
            f"its input is above the upper bound {_bound(other)} on every entry (from {low} to {high}), where the "
            "clip passes no gradient",
            f"Start the values entering the clip inside its range (they are {low} to {high}, the bound is "
            f"{_bound(other)}): rescale or re-initialise what produces them (a bias or scale), or use a smooth "
            "squashing function (tf.tanh) instead of a hard clip.",
        )
    if op.type == "Maximum":
        return (
            f"its input is below the lower bound {_bound(other)} on every entry (from {low} to {high}), where the "
            "clip passes no gradient",
            f"Start the values entering the clip inside its range (they are {low} to {high}, the bound is "
            f"{_bound(other)}): rescale or re-initialise what produces them (a bias or scale), or use a smooth "
            "squashing function (tf.tanh) instead of a hard clip.",
        )
    if op.type == "Mul":
        return (
            f"it is multiplied by {_factor(op, other)}, which is zero on every entry",
            "Open the gate (or the mask) for at least part of the batch, or check what makes that factor zero.",
        )
    return "its slope is zero on every entry of the probe batch", ""


def _vanishing_note(op, slope: float, x, other) -> tuple[str, str]:
    """(what the op saw, what to change) for an op whose slope is tiny on every entry."""
    if op.type == "Mul":
        return (
            f"it is multiplied by {_factor(op, other)}, which is at most {slope:.1e} on the probe batch: the gate is "
            "closed",
            "Start the gate open: initialise the bias of what computes it near zero (a highway or LSTM carry "
            "gate often starts at +1 to +2), so the gated branch gets a gradient from the first step.",
        )
    return (
        f"its slope is at most {slope:.1e} on the probe batch (saturated: inputs from {np.min(x):.3g} to {np.max(x):.3g})",
        "",
    )


def _ops_on_path(trace, source) -> list:
    """(op, index of its on-path input) for activation-like ops, bounds and products between
    `source` and the loss, in graph order (forward ops only)."""
    feeds_loss = ancestors(trace.loss.op)
    start = entry_tensors(source, feeds_loss)
    on_path = {t.ref() for t in start}
    seen, frontier, found = set(), list(start), []
    while frontier:
        tensor = frontier.pop()
        for op in tensor.consumers():
            if op not in feeds_loss or op in seen or op.name.startswith("gradient_tape/"):
                continue
            seen.add(op)
            if op.type in _SLOPES or (op.type in _BINARY and len(op.inputs) == 2):
                index = next(i for i, t in enumerate(op.inputs) if t.ref() in on_path)
                # A product of two on-path values (x * x) has no single gate: leave it out.
                if op.type not in _BINARY or op.inputs[1 - index].ref() not in on_path:
                    found.append((op, index))
            for output in op.outputs:
                if output.dtype.is_floating:
                    on_path.add(output.ref())
                    frontier.append(output)
    order = {op: position for position, op in enumerate(trace.graph.get_operations())}
    return sorted(found, key=lambda pair: order[pair[0]])


def _values(probe, run, ops) -> dict | None:
    """{tensor ref: numpy value} for the inputs and outputs of `ops`, on the probe batch (None when
    the graph cannot be evaluated)."""
    fetches: list = []
    for op, _ in ops:
        for tensor in (*op.inputs, op.outputs[0]):
            if all(tensor is not other for other in fetches):
                fetches.append(tensor)
    values = graph_values(probe, run, fetches)
    if values is None:
        return None
    return {t.ref(): np.asarray(v, "float64") for t, v in zip(fetches, values)}
