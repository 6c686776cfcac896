"""Calling a layer as Keras and fit() would: how many inputs, as what, and with which `training`."""

from __future__ import annotations

import inspect

from ..errors import GradcheckError, user_code


def call_layer(layer, inputs, training, accepts_training: bool, doing: str = "calling the layer"):
    """Call the layer as Keras would: one input as itself, several as a list (the contract), or
    as separate arguments when call() asks for that many (`MultiHeadAttention.call(query, value)`,
    docs/design-notes.md 9).

    Whatever the layer raises comes out as LayerRaised(error, doing); a mismatch between the
    number of inputs and call()'s arguments is the user's GradcheckError, found before the call.
    """
    keywords = {"training": training} if accepts_training and training is not None else {}
    _check_input_count(layer, len(inputs))
    with user_code(doing):
        if len(inputs) == 1:
            return layer(inputs[0], **keywords)
        if _required_positional(layer) == len(inputs):
            return layer(*inputs, **keywords)
        return layer(list(inputs), **keywords)


def _check_input_count(layer, given: int) -> None:
    """call(a, b) given three --input-shapes: say so, rather than Keras's "missing a required argument"."""
    try:
        parameters = inspect.signature(layer.call).parameters.values()
    except (TypeError, ValueError):
        return
    names = [
        p.name
        for p in parameters
        if p.kind == p.POSITIONAL_OR_KEYWORD and p.default is p.empty and p.name not in ("training", "mask")
    ]  # Keras fills these itself
    if len(names) > 1 and len(names) != given:
        raise GradcheckError(
            f"{given} --input-shape value(s) for a call() that takes {len(names)} inputs ({', '.join(names)}). "
            "Give --input-shape once per input of call(), in the order of its arguments."
        )


def input_names(layer, count: int) -> list[str]:
    """What the report calls each input: `input` for one; for several, call()'s own names for them
    as call_layer passes them: its parameters (`call(self, x, context)`: `x`, `context`), or the
    list parameter's items (`call(self, inputs)`: `inputs[0]`, `inputs[1]`)."""
    if count == 1:
        return ["input"]
    try:
        parameters = list(inspect.signature(layer.call).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    positional = [p for p in parameters if p.kind == p.POSITIONAL_OR_KEYWORD]
    if _required_positional(layer) == count:
        return [p.name for p in positional[:count]]
    if positional:  # one list of inputs, as Keras's Attention and Concatenate take them
        return [f"{positional[0].name}[{i}]" for i in range(count)]
    return [f"input {i}" for i in range(count)]


def _required_positional(layer) -> int:
    try:
        parameters = inspect.signature(layer.call).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(1 for p in parameters if p.kind == p.POSITIONAL_OR_KEYWORD and p.default is p.empty)


def takes_training(layer) -> bool:
    try:
        parameters = inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False
    return "training" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def training_of(mode: str) -> bool | None:
    """The `training` argument for a traced mode: "true", "false", or "n/a" (call() takes none)."""
    return {"true": True, "false": False}.get(mode)


def random_training(training: bool | None) -> bool:
    """The `training` value for a call that should show randomness: True, unless --no-training."""
    return training if training is not None else True


def float_outputs(result) -> list:
    """The float tensors of whatever call() returned, in the backend's fixed order."""
    from ..runtime import backend

    return [tensor for _, tensor in backend().float_leaves(result)]
