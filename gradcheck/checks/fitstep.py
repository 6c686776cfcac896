"""Does one optimizer step over `layer.trainable_weights` change each tensor? The path fit() uses."""

from __future__ import annotations

import numpy as np

from ..layer.rows import variable_key
from ..runtime import backend

_FIT_LEARNING_RATE = 0.01  # SGD's default: the one step only has to show whether anything moves
_PIECE = 1 << 20  # numbers compared at a time: a comparison's temporaries stay small for any weight


def trains_under_fit(probe, runs, tensors) -> dict:
    """{row key: changed by one SGD step over layer.trainable_weights}, the path fit() uses.

    The step runs on the real variables, so every value is saved first and restored exactly after.
    Untracked and non-trainable variables are not in trainable_weights: False without a step.
    """
    framework = backend()
    _, keras = framework.modules()
    backing = framework.backing
    run = runs[0]  # fit() calls with training=True, the first mode traced
    grads = {id(backing(v)): g for v, g in zip(probe.gradient_variables, run.result["grads"])}
    weights = list(probe.layer.trainable_weights)
    pairs = [(grads.get(id(backing(v))), v) for v in weights]
    pairs = [(framework.constant(g, dtype=v.dtype), v) for g, v in pairs if g is not None]
    everything = list(probe.layer.weights) + [v for v in probe.gradient_variables if not isinstance(v, keras.Variable)]
    # The values before the step, as the framework's own tensors: they share the variables' memory
    # until the step writes, where a numpy copy would hold a second copy of every weight at once.
    saved = [(v, framework.snapshot(v)) for v in everything]
    changed = set()
    if pairs:
        optimizer = keras.optimizers.SGD(learning_rate=_FIT_LEARNING_RATE)
        try:
            optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
            for variable, before in saved:
                if not _equal(np.asarray(framework.snapshot(variable)), np.asarray(before)):
                    changed.add(id(backing(variable)))
        finally:
            for variable, before in saved:
                framework.assign(variable, before)
    # Every variable's row is keyed by its tf.Variable: facts for the rows that are variables, and
    # False for an untracked variable found only by TF's name (a helper's global), outside both lists.
    facts = {key: False for key, row in tensors.keyed() if row.kind == "untracked"}
    for variable in everything:
        key = variable_key(variable)
        if tensors.get(key) is not None:
            facts[key] = id(backing(variable)) in changed
    return facts


def _equal(after, before) -> bool:
    """np.array_equal(after, before, equal_nan=True), piece by piece."""
    if after.shape != before.shape:
        return False
    after, before = after.reshape(-1), before.reshape(-1)
    return all(
        np.array_equal(after[start : start + _PIECE], before[start : start + _PIECE], equal_nan=True)
        for start in range(0, after.size, _PIECE)
    )
