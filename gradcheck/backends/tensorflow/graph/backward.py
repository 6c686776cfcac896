"""A backward pass that raises: say which op's gradient fails, at the user's line, as fit() will.

The forward pass ran (the probe called the layer), so an error while executing the traced probe
function comes from its backward part: a `tf.py_function` whose body leaves TensorFlow returns a
scalar zero as its gradient and the next gradient op fails on the shape (design notes 7), a
hand-written gradient returns the wrong shape, an op has no kernel for its gradient. fit() hits
the same error on its first step, so it is a finding about the layer (`backward-failed`), not a
check that could not run. TensorFlow names the failing node; a backward node is named
`gradient_tape/<forward op>/...`, which leads back to the forward op and its line in the user's code.
"""

from __future__ import annotations

import re

from .... import codes
from ....layer.source import user_location
from ....report import Finding, finding
from .cuts import ancestors

_PREFIX = "gradient_tape/"
# Forward ops whose gradient is the usual culprit: named first when several are in view.
_SUSPECTS = ("EagerPyFunc", "PyFunc", "PyFuncStateless", "IdentityN")
_WRITTEN_AS = {
    "EagerPyFunc": "tf.py_function",
    "PyFunc": "tf.numpy_function",
    "PyFuncStateless": "tf.numpy_function",
    "IdentityN": "tf.custom_gradient",
}
_ADVICE = {
    "EagerPyFunc": "A tf.py_function whose body leaves TensorFlow (a .numpy() call, numpy code) has no "
    "usable gradient: write the computation with TensorFlow ops, or give it one with "
    "@tf.custom_gradient.",
    "IdentityN": "Check that the custom gradient returns one gradient per input, each of its input's shape.",
}
_DEFAULT_ADVICE = (
    "Check the gradient of that op: a custom gradient that returns the wrong shape, or an "
    "op with no gradient for these dtypes."
)


def backward_failure(trace, error, mode: str) -> Finding | None:
    """The `backward-failed` finding for `error` raised by running `trace`, or None when the node
    that failed is not in the backward part (then the error is not explained here)."""
    node = _failed_node(error)
    if node is None:
        return None
    try:
        failed = trace.graph.get_operation_by_name(node)
    except (KeyError, ValueError):
        return None
    if failed in ancestors(trace.loss.op):
        return None  # the forward pass itself failed: not a backward problem
    forward = _forward_op(trace.graph, failed)
    op_type = forward.type if forward is not None else failed.type
    location = user_location(forward.traceback) if forward is not None else None
    written = _WRITTEN_AS.get(op_type)
    shown = f"{op_type} ({written})" if written else op_type
    where = f" with training={mode.capitalize()}" if mode in ("true", "false") else ""
    text = _message_of(error)
    return finding(
        codes.BACKWARD_FAILED,
        None,
        f"The backward pass raises{where}: the gradient of {shown}{' at ' + location if location else ''} "
        f"fails with {type(error).__name__}: {text}, so fit() raises the same error on its first training "
        f"step. {_ADVICE.get(op_type, _DEFAULT_ADVICE)}",
        location,
    )


def _failed_node(error) -> str | None:
    found = re.findall(r"\{\{node ([^}]+)\}\}", str(getattr(error, "message", error)))
    return found[-1] if found else None


def _message_of(error) -> str:
    """TensorFlow's own sentence, without the node list and the traceback it prints."""
    lines = [line.strip() for line in str(getattr(error, "message", error)).splitlines()]
    for index, line in enumerate(lines):
        if line.startswith("[[{{node"):
            before = [text for text in lines[:index] if text]
            if before:
                return before[-1].rstrip(".").replace("  ", " ")
    return lines[0].rstrip(".") if lines else type(error).__name__


def _forward_op(graph, failed):
    """The forward op whose gradient contains `failed`, or whose gradient feeds it: the suspects
    (py_function, custom gradient) first, then any op at a line of the user's code."""
    candidates = [failed, *[tensor.op for tensor in failed.inputs]]
    found = []
    for op in candidates:
        forward = _forward_of(graph, op)
        if forward is not None and forward not in found:
            found.append(forward)
    for forward in found:
        if forward.type in _SUSPECTS:
            return forward
    return next((op for op in found if user_location(op.traceback)), None)


def _forward_of(graph, op):
    if not op.name.startswith(_PREFIX):
        return None
    scope = op.name[len(_PREFIX) :]
    while scope:
        try:
            return graph.get_operation_by_name(scope)
        except (KeyError, ValueError):
            scope = scope.rsplit("/", 1)[0] if "/" in scope else ""
    return None
