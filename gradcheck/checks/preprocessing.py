"""Keras's preprocessing layers: what their input's gradient says costs a user nothing.

A preprocessing or augmentation layer (RandomHue, RandomPosterization, CLAHE: a subclass of Keras's
`DataLayer` or `BaseImagePreprocessingLayer`, anything defined under keras/src/layers/preprocessing/)
sits between the data and the first layer that trains. That its input gets no gradient (a cast to
uint8, a comparison in an HSV conversion), a zero one or even a wrong one (TensorFlow's gradient of
ImageProjectiveTransformV3 under RandomRotation) is true, and harms no training: there is nothing
before it to train. So every finding about the input's gradient, from the gradient check, the
finite differences or the second order, is restated as `preprocessing-input-gradient` (info), with
the same message and why. The layer's weights, its outputs and its reload are judged as for any layer.
"""

from __future__ import annotations

import dataclasses

from .. import codes
from ..report import finding
from .interface import CheckResult, Context

# The codes that describe the gradient a tensor receives: restated when the tensor is the input.
_GRADIENT_CODES = frozenset(
    code.name
    for code in (
        codes.INPUT_GRADIENT_NONE,
        codes.ZERO_GRADIENT,
        codes.VANISHING_GRADIENT,
        codes.EXPLODING_GRADIENT,
        codes.NONFINITE_GRADIENT,
        codes.GRADIENT_MISMATCH,
        codes.SECOND_ORDER_NONE,
        codes.SECOND_ORDER_MISMATCH,
        codes.SECOND_ORDER_APPROXIMATE,
    )
)
# Where Keras defines its preprocessing layers and their bases (keras.src since Keras 3.0).
_PREPROCESSING_MODULES = ("keras.src.layers.preprocessing.", "keras.layers.preprocessing.")


@dataclasses.dataclass(frozen=True)
class PreprocessingInputs:
    """Input-gradient findings on a Keras preprocessing layer, restated as info."""

    stage = None  # part of the stage before it: no pass of its own

    @classmethod
    def from_options(cls, options) -> PreprocessingInputs:
        return cls()

    def run(self, context: Context) -> CheckResult:
        base = preprocessing_base(context.probe.layer)
        if base is None:
            return CheckResult()
        inputs = {row.name for row in context.inputs}
        inputs -= {row.name for row in context.tensors}  # a weight of the same name is not the input
        amended = {
            item: restated(item, type(context.probe.layer).__name__, base)
            for item in context.findings
            if item.tensor in inputs and item.code in _GRADIENT_CODES
        }
        return CheckResult(amended=amended)


def preprocessing_base(layer) -> str | None:
    """The Keras preprocessing class `layer` is (or derives from), by name; None for any other layer."""
    for cls in type(layer).__mro__:
        if cls.__module__.startswith(_PREPROCESSING_MODULES):
            return cls.__name__
    return None


def restated(item, class_name: str, base: str):
    kind = "a Keras preprocessing layer" if class_name == base else f"a Keras preprocessing layer (a {base})"
    return finding(
        codes.PREPROCESSING_INPUT_GRADIENT,
        item.tensor,
        f"{item.message} {class_name} is {kind}: it sits between the data and the first layer that "
        f"trains, so no layer before it needs this gradient ({item.code} on any other layer).",
        item.location,
        cause=item.cause,
    )
