"""Every float leaf of whatever call() returns, with the name a user would index it by, and the
probe loss made from them.

call() may return a tensor, or any nesting of tuples, lists and dicts of them (`(y, (y2, [y3]))`,
`{"a": y, "b": {"c": z}}`); the probe loss must reach every float leaf, or a weight that feeds only
a deep one gets a false None gradient. Leaves are named by the index path (`output[1][0]`,
`output["b"]["c"]`). A SparseTensor enters through its `values` and a RaggedTensor through its
`flat_values`: the numbers a loss on them differentiates. Dict keys are visited in sorted order,
as `tf.nest` does, so every caller sees the leaves in the same order.
"""

from __future__ import annotations

from typing import Any


def float_leaves(tf, result) -> list[tuple[str, Any]]:
    """[(name, float tensor)] for every float leaf of `result`, in a fixed order."""
    found: list[tuple[str, Any]] = []
    _walk(tf, result, "output", found)
    if len(found) == 1:
        return [("output", found[0][1])]  # one float tensor, however wrapped: just "output"
    return found


def float_tensors(tf, result) -> list:
    """The float leaves of `result` without their names."""
    return [tensor for _, tensor in float_leaves(tf, result)]


def probe_loss(tf, outputs, projections: list, batch: int, float64: bool = False):
    """The loss every check differentiates: sum(r·y) over the float outputs, divided by the batch size.

    Each r is a fixed random projection (sampling.projections), so every output number reaches the
    loss with its own weight. The sums run in float32 at least (float64 for a float64 output); with
    float64=True every term runs in float64, as the finite-difference comparisons want: the sum then
    adds no rounding of its own to the float64 twin's loss.
    """
    total: Any = None
    for y, r in zip(outputs, projections):
        dtype = tf.float64 if float64 or y.dtype == tf.float64 else tf.float32
        term = tf.reduce_sum(tf.cast(y, dtype) * tf.cast(r, dtype))
        term = tf.cast(term, tf.float64) if total is not None and total.dtype == tf.float64 else term
        total = term if total is None else total + tf.cast(term, total.dtype)
    if total is None:  # no float output (Discretization): a loss of 0 still traces what call() reads
        total = tf.constant(0.0, tf.float64 if float64 else tf.float32)
    return total / batch


def _walk(tf, value, name: str, found: list) -> None:
    if isinstance(value, tf.SparseTensor):
        _walk(tf, value.values, f"{name}.values", found)
    elif isinstance(value, tf.RaggedTensor):
        _walk(tf, value.flat_values, f"{name}.flat_values", found)
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            _walk(tf, value[key], f"{name}[{_key(key)}]", found)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(tf, item, f"{name}[{index}]", found)
    elif tf.is_tensor(value) and value.dtype.is_floating:
        found.append((name, value))


def _key(key) -> str:
    return f'"{key}"' if isinstance(key, str) else repr(key)
