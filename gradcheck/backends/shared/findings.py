"""The op behind a finding on JAX or PyTorch, described for a message: the op that cuts a gradient
path, the activation where a gradient dies or explodes, the op that made the first NaN, the op
that computes in less than float64.

Each backend names its ops its own way (a jaxpr's primitive `argmax`, torch's function `argmax`),
and says how the user may have written it (`jax.lax.stop_gradient`, `Tensor.detach`, which is what
`keras.ops.stop_gradient` does on torch); the reason and the fix are the same on both, and are
written with `keras.ops`, which runs on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_STRAIGHT_THROUGH = "use a straight-through estimator, e.g. `x + ops.stop_gradient(ops.round(x) - x)`"
_CHOICE = (
    "an index has no gradient",
    "To learn through a choice, weight the candidates with a softmax instead (or Gumbel-softmax), "
    "or use a straight-through estimator `soft + ops.stop_gradient(hard - soft)`.",
)
_ROUNDING = ("its derivative is zero wherever it exists", f"To train through rounding, {_STRAIGHT_THROUGH}.")
# kind of cut -> (why it passes no gradient, what to do)
CUT_REASONS = {
    "argmax": _CHOICE,
    "argmin": _CHOICE,
    "stop_gradient": (
        "it blocks the gradient by design",
        "Remove the stop_gradient if the tensor should learn; if it is meant to stay fixed, make it "
        "`self.add_weight(..., trainable=False)`.",
    ),
    "round": _ROUNDING,
    "floor": _ROUNDING,
    "ceil": _ROUNDING,
    "sign": _ROUNDING,
    "trunc": _ROUNDING,
    "cast": (
        "integer and bool values have no gradient",
        f"Keep the computation in floating point; to quantise while training, {_STRAIGHT_THROUGH}.",
    ),
    "comparison": (
        "a bool has no gradient",
        "To learn through a threshold, use a smooth gate such as `ops.sigmoid(k * (a - b))`.",
    ),
    "callback": (
        "Python code called back from the computation cannot be differentiated",
        "Write the computation with keras.ops (or the framework's own ops), or give it a custom gradient.",
    ),
}


@dataclass(frozen=True)
class Cut:
    """One op that ends a gradient path (the fields checks/gradients.py reads)."""

    op_type: str  # the framework's name for the op: "argmax", "detach"
    written_as: str  # how the user may have written it: "jax.lax.argmax", "Tensor.detach"
    why: str
    advice: str
    location: str | None

    def describe(self) -> str:
        shown = f"{self.op_type} ({self.written_as})" if self.written_as != self.op_type else self.op_type
        return f"{shown} at {self.location}" if self.location else shown

    @property
    def shape_only(self) -> bool:
        """An op that reads a tensor's shape, not its values (none is recorded on these backends)."""
        return False


def make_cut(kind: str | None, op_type: str, written_as: str, location: str | None, output_dtype: str = "") -> Cut:
    """A Cut of `kind` (a key of CUT_REASONS), or of an op whose output is `output_dtype`."""
    if kind in CUT_REASONS:
        why, advice = CUT_REASONS[kind]
        if kind == "cast" and output_dtype:
            written_as = f"a cast to {output_dtype}"
        return Cut(op_type, written_as, why, advice, location)
    if output_dtype:
        why = f"its output is {output_dtype}, which has no gradient"
        return Cut(
            op_type, written_as, why, "Keep the path in floating point, or use a straight-through estimator.", location
        )
    return Cut(
        op_type,
        written_as,
        "it passes no gradient on this path",
        "Use a differentiable op here, or give it a custom gradient.",
        location,
    )


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -700, 700)))


# activation -> slope from (input, output) on the probe batch (as backends/tensorflow/graph/dying.py)
SLOPES = {
    "relu": lambda x, y: (x > 0).astype("float64"),
    "relu6": lambda x, y: ((x > 0) & (x < 6)).astype("float64"),
    "sigmoid": lambda x, y: y * (1.0 - y),
    "tanh": lambda x, y: 1.0 - y * y,
    "exp": lambda x, y: y,
    "softplus": lambda x, y: _sigmoid(x),
    "elu": lambda x, y: np.where(x > 0, 1.0, y + 1.0),
}


@dataclass(frozen=True)
class Culprit:
    """The activation on a tensor's path whose own slope explains a zero, vanishing or exploding gradient."""

    op_type: str
    written_as: str
    location: str | None
    slope: float  # the largest |local derivative| over the probe batch
    note: str
    advice: str = ""  # what to change for this op (checks/weak.py has general advice otherwise)

    def describe(self) -> str:
        shown = f"{self.op_type} ({self.written_as})" if self.written_as != self.op_type else self.op_type
        return f"{shown} at {self.location}" if self.location else shown


def pick_culprit(status: str, slopes: list) -> Culprit | None:
    """The culprit for `status` among [(op_type, written_as, location, x, y)] on the path, in order."""
    measured = []
    for op_type, written_as, location, kind, x, y in slopes:
        slope = np.abs(np.asarray(SLOPES[kind](x, y), "float64"))
        measured.append((op_type, written_as, location, float(np.max(slope)) if slope.size else 0.0, kind, x))
    if not measured:
        return None
    if status == "zero":
        dead = [item for item in measured if item[3] == 0.0]
        if not dead:
            return None
        op_type, written_as, location, slope, kind, x = dead[0]
        note = (
            f"its inputs are all negative on the probe batch (at most {np.max(x):.3g})"
            if kind in ("relu", "relu6") and np.max(x) <= 0
            else "its slope is zero on every entry of the probe batch"
        )
    elif status == "vanishing":
        op_type, written_as, location, slope, kind, x = min(measured, key=lambda item: item[3])
        if slope > 1e-2:
            return None  # no single op explains it: a long chain of ordinary factors
        note = f"its slope is at most {slope:.1e} on the probe batch (saturated: inputs from {np.min(x):.3g} to {np.max(x):.3g})"
    else:
        op_type, written_as, location, slope, kind, x = max(measured, key=lambda item: item[3])
        if slope < 1e2:
            return None
        note = f"its slope reaches {slope:.1e} on the probe batch (inputs up to {np.max(x):.3g})"
    return Culprit(op_type, written_as, location, slope, note)


# op -> what to do about the NaN/Inf it makes (the words of backends/tensorflow/graph/nonfinite.py)
NONFINITE_ADVICE = {
    "sqrt": "sqrt has an infinite slope at 0: add a small epsilon inside (`ops.sqrt(x + 1e-12)`) or keep x away from 0.",
    "rsqrt": "rsqrt is infinite at 0: add a small epsilon inside.",
    "log": "log(0) is -inf: add a small epsilon or clip (`ops.log(ops.maximum(x, 1e-12))`); inside ops.where the "
    "branch not taken still gets a gradient, so make its input safe too (the double-where trick).",
    "pow": "pow at 0 with a fractional or negative exponent has an infinite slope; inside ops.where the branch not "
    "taken still gets a gradient, so make its input safe too (the double-where trick).",
    "div": "A division by zero (e.g. v / norm(v) at v = 0): add an epsilon to the divisor or use ops.normalize.",
    "exp": "exp overflows float32 above about 88: clip its argument, rescale, or use a stable form (softplus, "
    "log-sum-exp).",
}


@dataclass(frozen=True)
class LowPrecisionOp:
    """The first op on a tensor's path whose output has less precision than float64."""

    op_type: str
    dtype: str  # float32, float16 or bfloat16
    location: str | None

    def describe(self) -> str:
        is_cast = self.op_type in ("convert_element_type", "to", "cast")
        shown = f"{self.op_type} to {self.dtype}" if is_cast else f"{self.op_type} in {self.dtype}"
        return f"{shown} at {self.location}" if self.location else shown
