"""Layer state that is not a weight, and the one place that resets it before a pass.

Keras keeps some variables outside `layer.weights` on purpose: a stateful RNN's carried states
(`rnn_state`, design notes 14), the SeedGenerator state behind dropout and noise, a metric's totals. They
are state, not weights: no gradient should reach them and fit() does not train them, so they are
listed as `state` in the inventory and never reported as untracked. They also change on every call
(the RNN carries its last output forward, the RNG moves on), so every pass gradcheck makes starts
from the same values: RNN states from zero (what `reset_states()` does), RNG states from values
derived from --seed (the same masks on every run), anything else from its value when first seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SEED = "seed generator"
RNN = "rnn state"
OTHER = "state"


def _backing(variable):
    from ..runtime import backend

    return backend().backing(variable)


def _numpy(variable):
    from ..runtime import backend

    return backend().to_numpy(variable)


def _label(variable) -> str:
    from ..runtime import backend

    return backend().variable_label(variable)


def state_variables(layer, layer_path=None) -> dict[int, tuple[Any, str, str]]:
    """{id(tf.Variable): (tf.Variable, what it is, its path)} for every non-weight variable.

    The path is the one a user would type (`states[0]`, `dropout.seed_generator.state`); a
    variable found only through `layer.variables` keeps its Keras path. `layer_path(sublayer)`
    names a sublayer (Names.layer_path); its Keras name otherwise.
    """
    found: dict[int, tuple[Any, str, str]] = {}
    weights = {id(_backing(v)) for v in layer.weights}
    for sublayer in layer._flatten_layers(include_self=True, recursive=True):
        prefix = "" if sublayer is layer else f"{layer_path(sublayer) if layer_path else sublayer.name}."
        for index, generator in enumerate(getattr(sublayer, "_seed_generators", None) or []):
            variable = getattr(generator, "state", None)
            if variable is not None:
                held = next((k for k, v in vars(sublayer).items() if v is generator and not k.startswith("_")), None)
                path = f"{prefix}{held}.state" if held else f"{prefix}_seed_generators[{index}].state"
                found.setdefault(id(_backing(variable)), (_backing(variable), SEED, path))
        if getattr(sublayer, "stateful", False):
            for index, variable in enumerate(_flat(getattr(sublayer, "states", None))):
                if hasattr(variable, "assign"):
                    path = f"{prefix}states[{index}]"
                    found.setdefault(id(_backing(variable)), (_backing(variable), RNN, path))
        for metric in getattr(sublayer, "_metrics", None) or []:  # a keras.metrics object it holds
            held = next((k for k, v in vars(sublayer).items() if v is metric and not k.startswith("_")), None)
            for variable in getattr(metric, "variables", []):
                tf_variable = _backing(variable)
                path = f"{prefix}{held or metric.name}.{_label(tf_variable).rsplit('/', 1)[-1]}"
                found.setdefault(id(tf_variable), (tf_variable, OTHER, path))
    for variable in layer.variables:  # other bookkeeping Keras keeps beside the weights
        tf_variable = _backing(variable)
        if id(tf_variable) not in weights:
            path = getattr(variable, "path", None) or _label(tf_variable)
            found.setdefault(id(tf_variable), (tf_variable, OTHER, path))
    return found


def _flat(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListWrapper":
        return [item for element in value for item in _flat(element)]
    return [value]


def snapshot(layer) -> list[tuple[Any, np.ndarray]]:
    """(variable, value) for every state variable: restore() puts the layer back as it was."""
    return [(v, np.array(_numpy(v))) for v, _, _ in state_variables(layer).values()]


def fixed(layer, seed: int, *, rng: bool = True) -> list[tuple[Any, np.ndarray]]:
    """(variable, value) every pass starts from. With rng=False only the carried state is reset
    (RNN states, metrics), so two calls still show whether the layer draws random numbers."""
    values, generators = [], 0
    for variable, what, _ in state_variables(layer).values():
        current = np.array(_numpy(variable))
        if what == SEED:
            if not rng:
                continue
            # A SeedGenerator starts from an unseeded value and moves on every call; a value
            # derived from --seed makes the masks, and so the gradients, repeat from run to run.
            derived = np.arange(current.size).reshape(current.shape) + seed * 7919 + generators
            generators += 1
            values.append((variable, derived.astype(current.dtype)))
        elif what == RNN:
            values.append((variable, np.zeros_like(current)))
        else:
            values.append((variable, current))
    return values


def restore(pairs) -> None:
    from ..runtime import backend

    framework = backend()
    for variable, value in pairs:
        framework.assign(variable, value)
