"""Walks from a tensor along its path to the loss, for the finite-difference check (numeric.py):
the custom gradient a mismatch points at, and the stop_gradient that makes a disagreement say
nothing about the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

from ....layer.source import user_location


def downstream_op(forward, target, wanted):
    """The user's line of the first op on the target's path to the loss that `wanted(op)` picks
    ("" when that op is not in the user's code), or None when there is none.

    Only float-valued edges are followed: a shape or a count cast to float32 carries no gradient.
    """
    start = forward.placeholder(target)
    if start is None:
        return None
    for op in float_path_ops(start):
        if wanted(op):
            return user_location(op.traceback) or ""
    return None


def float_path_ops(start):
    """Every op the float (or complex) value of the graph tensor `start` flows into, nearest first."""
    seen, frontier = set(), list(start.consumers())
    while frontier:
        op = frontier.pop(0)
        if id(op) in seen:
            continue
        seen.add(id(op))
        yield op
        for output in op.outputs:
            if output.dtype.is_floating or output.dtype.is_complex:
                frontier.extend(output.consumers())


# Ops whose gradient is left out by definition while their float output still follows the input.
# Ops that have no gradient at all while their float output follows the input (numpy code).
_NO_GRADIENT = frozenset({"PyFunc", "PyFuncStateless"})


def has_no_gradient(op) -> bool:
    return op.type in _NO_GRADIENT


def is_custom_gradient(op) -> bool:
    """tf.custom_gradient marks its output with an IdentityN whose gradient is overridden."""
    if op.type != "IdentityN":
        return False
    try:
        return op.get_attr("_gradient_op_type").startswith(b"CustomGradient")
    except ValueError:
        return False


_LOW_PRECISION = ("float32", "float16", "bfloat16", "complex64")


@dataclass(frozen=True)
class LowPrecisionOp:
    """The first op on a tensor's path whose output has less precision than float64."""

    op_type: str
    dtype: str  # the dtype it computes in: float32, float16, bfloat16 (complex64 counts as float32)
    location: str | None  # the user's line, None when the op is not in the user's code

    def describe(self) -> str:
        shown = f"{self.op_type} to {self.dtype}" if self.op_type == "Cast" else f"{self.op_type} in {self.dtype}"
        return f"{shown} at {self.location}" if self.location else shown


def low_precision_op(start) -> LowPrecisionOp | None:
    """The first low-precision op reached from `start` (a graph tensor) along float-valued edges.

    Only ops the float64 value flows into are visited: a constant computed in float32 on the
    side (and cast up where it meets the path) is not one.
    """
    if start is None:
        return None
    for op in float_path_ops(start):
        low = [t.dtype.name for t in op.outputs if t.dtype.name in _LOW_PRECISION]
        if low:
            dtype = "float32" if low[0] == "complex64" else low[0]
            return LowPrecisionOp(op.type, dtype, user_location(op.traceback))
    return None
