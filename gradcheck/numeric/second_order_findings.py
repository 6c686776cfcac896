"""What the second-order check says: for each tensor whose second derivative is None or wrong, where
(the line applying a custom gradient, the op of the double backward that cuts the path, the
tf.stop_gradient a library holds) and what to do. second_order.py makes the comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import codes
from ..report import finding

_USES = "a gradient penalty (WGAN-GP), a physics-informed loss on ∂y/∂x, MAML or sharpness-aware training"
_ADVICE = (
    "Build the grad function of the custom gradient from differentiable TensorFlow ops (no "
    "tf.stop_gradient, numpy or integer casts on values it returns), or give it a gradient of its "
    "own with a nested @tf.custom_gradient."
)


def second_order_findings(probe, targets, curvatures: dict, dtype) -> list:
    findings = []
    last = list(curvatures.values())[-1] if curvatures else None
    for target in targets:
        if target.verdict not in ("none", "mismatch"):
            continue
        location = _location(probe, curvatures.get(target.mode() or "", last), target)
        context = "float64 twin" if dtype == "float64" else "float32"
        if target.verdict == "none":
            findings.append(
                finding(codes.SECOND_ORDER_NONE, target.name, _none_message(target, context, location), location.where)
            )
        elif location.stop_in_library and not location.custom:
            # The tf.stop_gradient sits in a library function the user calls (tf.nn.moments inside
            # LayerNormalization): true, worth knowing, and not a bug in the user's own code.
            target.verdict = "approximate"
            message = _mismatch_message(target, context, location)
            findings.append(finding(codes.SECOND_ORDER_APPROXIMATE, target.name, message, location.where))
        else:
            findings.append(
                finding(
                    codes.SECOND_ORDER_MISMATCH,
                    target.name,
                    _mismatch_message(target, context, location),
                    location.where,
                )
            )
    return findings


@dataclass
class _Location:
    where: str | None
    cut: Any = None  # the cuts.Cut of the double-backward graph, when one was named
    custom: bool = False  # `where` is the line applying a tf.custom_gradient
    stop: str | None = None  # where a tf.stop_gradient on the forward path is, described
    stop_in_library: bool = False  # that tf.stop_gradient is called by library code, not the user's


def _location(probe, curvature, target) -> _Location:
    """The line applying a tf.custom_gradient on the tensor's path, else the op of the double
    backward that passes no gradient, else where the tensor is made."""
    custom = curvature.custom_gradient_line(target)
    stop, stop_line = curvature.stop_gradient_on_path(target)
    library = stop is not None and stop.startswith("inside ")
    cut = None
    if target.verdict == "none":
        cut = curvature.double_backward_cut(target)
    if custom:
        return _Location(custom, cut, True, stop, library)
    if cut is not None and cut.location:
        return _Location(cut.location, cut, stop=stop, stop_in_library=library)
    if stop_line:
        return _Location(stop_line, cut, stop=stop, stop_in_library=library)
    return _Location(target.location, cut, stop=stop, stop_in_library=library)


def _mode_text(mode: str) -> str:
    return f", training={mode.capitalize()}" if mode in ("true", "false") else ""


def _none_message(target, context, location: _Location) -> str:
    name = target.name
    where = ""
    if location.cut is not None:
        where = f" The path of the gradient's own gradient is cut at {location.cut.describe()}: {location.cut.why}."
    penalty = target.penalty is not None and target.penalty[0].verdict == "none"
    hessian = target.worst is not None and target.worst[0].verdict == "none"
    parts = []
    if hessian:
        block, label, mode = target.worst
        parts.append(
            f"the gradient of its gradient (H·u along {label}{_mode_text(mode)}) is None, while finite "
            f"differences of the gradient give a norm of {np.linalg.norm(block.numeric):.3g}"
        )
    if penalty:
        block, _, mode = target.penalty
        parts.append(
            f"the gradient of the penalty ‖∂loss/∂input‖² with respect to it is None{_mode_text(mode)}, "
            f"while finite differences give a norm of {np.linalg.norm(block.numeric):.3g}"
        )
    breaks = (
        f"a gradient penalty never trains `{name}`"
        if penalty and target.variable is not None
        else f"{_USES} get no second-order signal through `{name}`"
    )
    advice = (
        _ADVICE
        if location.custom
        or location.cut is None
        or location.cut.op_type in ("StopGradient", "PyFunc", "PyFuncStateless", "EagerPyFunc", "Cast")
        else (
            'Use an op that TensorFlow can differentiate twice on this path (e.g. resize with "bilinear" '
            'rather than "nearest" or "bicubic"), or give it a @tf.custom_gradient whose grad function '
            "is differentiable."
        )
    )
    if target.lookup:
        return (
            f"TensorFlow cannot differentiate the gradient of the loss for `{name}` ({context}): "
            f"{target.lookup}.{where} So {breaks}: differentiating its gradient raises. {advice}"
        )
    detail = "; ".join(parts) or "the gradient of its gradient is None"
    return (
        f"The second derivative of the loss for `{name}` is not zero, but the tape cannot compute it "
        f"({context}): {detail}.{where} So {breaks}, silently. {advice}"
    )


def _mismatch_message(target, context, location: _Location) -> str:
    parts = []
    for kind, record in (("H·u", target.worst), ("the penalty's gradient", target.penalty)):
        if record is None or record[0].verdict != "mismatch":
            continue
        block, label, mode = record
        shown = "; ".join(
            f"{list(index) if index else ''} tape {tape:.6g} vs numeric {numeric:.6g}".strip()
            for index, tape, numeric in block.worst
        )
        along = "u = ∂L/∂input" if label == "penalty" else f"u = {label}"
        parts.append(
            f"{kind} along {along}{_mode_text(mode)}: relative error {block.error:.1e} (step "
            f"{block.step:.0e}), worst entries {shown}"
        )
    detail = "; ".join(parts)
    if location.stop is not None and not location.custom:
        return (
            f"The second derivative of the loss for `{target.name}` disagrees with finite differences of its "
            f"gradient ({context}): {detail}. The first-order gradient agrees: its path holds a tf.stop_gradient "
            f"({location.stop}) that leaves the first derivative exact at this point and the second one "
            f"wrong, so {_USES} would train on a wrong gradient. Compute that statistic without "
            "tf.stop_gradient (e.g. the variance as mean((x - mean(x))²)) if the layer is to be "
            "differentiated twice."
        )
    return (
        f"The second derivative of the loss for `{target.name}` disagrees with finite differences of its "
        f"gradient ({context}): {detail}. The first-order gradient agrees and the disagreement stays at "
        f"10x and 100x smaller steps, so differentiating the gradient gives a wrong result: {_USES} "
        f"would train on it. Check the grad function of the custom gradient this tensor flows through "
        "(its own derivative, or a nested custom gradient)."
    )
