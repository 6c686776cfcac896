"""Every float leaf of whatever call() returns, with the name a user would index it by.

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
