"""Does one optimizer step over `layer.trainable_weights` change each tensor? The path fit() uses."""

from __future__ import annotations

import numpy as np

from ..layer.rows import variable_key
from ..runtime import backend

_FIT_LEARNING_RATE = 0.01  # SGD's default: the one step only has to show whether anything moves
_PIECE = 1 << 20  # numbers compared at a time: a comparison's temporaries stay small for any weight
_SPARSE_FROM = 1 << 20  # numbers: a smaller weight is stepped, saved and compared whole


def trains_under_fit(probe, runs, tensors) -> dict:
    """{row key: changed by one SGD step over layer.trainable_weights}, the path fit() uses.

    The step runs on the real variables, so every value it may change is saved first and restored
    exactly after. Untracked and non-trainable variables are not in trainable_weights: False
    without a step.
    """
    framework = backend()
    _, keras = framework.modules()
    backing = framework.backing
    run = runs[0]  # fit() calls with training=True, the first mode traced
    grads = {id(backing(v)): g for v, g in zip(probe.gradient_variables, run.result["grads"])}
    steps = [(_step_gradient(framework, grads.get(id(backing(v))), v), v) for v in probe.layer.trainable_weights]
    pairs = [(gradient, rows, v) for (gradient, rows), v in steps if gradient is not None]
    # Only the variables stepped can change: each is saved whole, or a big one stepped on a few
    # rows (an embedding's table) on those rows only, where a copy of the whole table would double
    # the check's memory.
    saved = [(v, rows, _save(framework, v, rows)) for _, rows, v in pairs]
    changed = set()
    if pairs:
        optimizer = keras.optimizers.SGD(learning_rate=_FIT_LEARNING_RATE)
        try:
            optimizer.apply([g for g, _, _ in pairs], [v for _, _, v in pairs])
            for variable, rows, before in saved:
                if not _equal(np.asarray(_save(framework, variable, rows)), np.asarray(before)):
                    changed.add(id(backing(variable)))
        finally:
            for variable, rows, before in saved:
                if rows is None:
                    framework.assign(variable, before)
                else:
                    framework.assign_rows(backing(variable), rows, before)
    everything = list(probe.layer.weights) + [v for v in probe.gradient_variables if not isinstance(v, keras.Variable)]
    # Every variable's row is keyed by its tf.Variable: facts for the rows that are variables, and
    # False for an untracked variable found only by TF's name (a helper's global), outside both lists.
    facts = {key: False for key, row in tensors.keyed() if row.kind == "untracked"}
    for variable in everything:
        key = variable_key(variable)
        if tensors.get(key) is not None:
            facts[key] = id(backing(variable)) in changed
    return facts


def _step_gradient(framework, grad, variable):
    """(the gradient the step applies to `variable`, the rows it touches or None: every row).

    A big weight whose gradient is zero on most rows (an embedding's table: only the rows a batch
    looks up) is stepped with a gradient on those rows, as the tape gives it to fit()."""
    if grad is None:
        return None, None
    grad = np.asarray(grad)
    if grad.ndim >= 2 and grad.size >= _SPARSE_FROM and getattr(variable, "constraint", None) is None:
        rows = _nonzero_rows(grad)
        if rows.size <= len(grad) // 2:
            sparse = framework.sparse_gradient(grad[rows], rows, variable)
            if sparse is not None:
                return sparse, rows
    return framework.constant(grad, dtype=variable.dtype), None


def _nonzero_rows(grad) -> np.ndarray:
    """The rows of `grad` holding a number other than zero (NaN counts), piece by piece."""
    flat = grad.reshape(len(grad), -1)
    per_piece = max(1, _PIECE // max(flat.shape[1], 1))
    found = [
        start + np.flatnonzero(np.any(flat[start : start + per_piece] != 0, axis=1))
        for start in range(0, len(flat), per_piece)
    ]
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def _save(framework, variable, rows):
    """The values the step may change: the whole variable, or its rows `rows`."""
    return framework.snapshot(variable) if rows is None else framework.read_rows(framework.backing(variable), rows)


def _equal(after, before) -> bool:
    """np.array_equal(after, before, equal_nan=True), piece by piece."""
    if after.shape != before.shape:
        return False
    after, before = after.reshape(-1), before.reshape(-1)
    return all(
        np.array_equal(after[start : start + _PIECE], before[start : start + _PIECE], equal_nan=True)
        for start in range(0, after.size, _PIECE)
    )
