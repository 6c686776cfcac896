"""Walks from a tensor along its path to the loss, for the finite-difference check (numeric.py):
the custom gradient a mismatch points at, and the stop_gradient that makes a disagreement say
nothing about the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

from ....layer.source import format_location, is_user_file, user_location


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


def custom_gradients_on_path(forward, target) -> list[str]:
    """Each tf.custom_gradient on the target's path to the loss, in words: where it is applied and
    the gradient function it registered ("the tf.custom_gradient applied at layers.py:19, whose
    gradient function is `clipped.<locals>.grad` at layers.py:8"), nearest first."""
    start = forward.placeholder(target)
    if start is None:
        return []
    described = []
    for op in float_path_ops(start):
        if is_custom_gradient(op):
            applied = user_location(op.traceback)
            words = f"the tf.custom_gradient applied at {applied}" if applied else "a tf.custom_gradient"
            function = _gradient_function(op)
            described.append(f"{words}, whose gradient function is {function}" if function else words)
    return described


def _gradient_function(op) -> str | None:
    """The function the user gave tf.custom_gradient for the op's gradient, as "`name` at file:line".

    TensorFlow registers a wrapper under the op's `_gradient_op_type`; the user's function is held
    in the closures of that wrapper (how deep, and under which name, is TensorFlow's business, so
    the closures are searched, nearest first, for a function defined in the user's code).
    """
    from tensorflow.python.framework import ops as tf_ops

    try:
        wrapper = tf_ops._gradient_registry.lookup(op.get_attr("_gradient_op_type").decode())
    except (LookupError, ValueError, AttributeError):
        return None
    frontier, seen = [wrapper], set()
    for _depth in range(4):
        deeper = []
        for function in frontier:
            if id(function) in seen:
                continue
            seen.add(id(function))
            code = getattr(function, "__code__", None)
            if code is not None and is_user_file(code.co_filename):
                return f"`{function.__qualname__}` at {format_location(code.co_filename, code.co_firstlineno)}"
            for cell in getattr(function, "__closure__", None) or ():
                try:
                    held = cell.cell_contents
                except ValueError:  # a cell not filled yet
                    continue
                if callable(held) and hasattr(held, "__code__"):
                    deeper.append(held)
        frontier = deeper
    return None


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
