"""Every float leaf of whatever call() returns on JAX or PyTorch, named as on TensorFlow.

call() may return an array or any nesting of tuples, lists and dicts of them; leaves are named by
their index path (`output[1][0]`, `output["b"]`), dict keys in sorted order, exactly as
backends/tensorflow/leaves.py names them, so a report names the same output the same way on every
backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def float_leaves(result, is_float_tensor: Callable[[Any], bool]) -> list[tuple[str, Any]]:
    """[(name, tensor)] for every float leaf of `result`, in a fixed order."""
    found: list[tuple[str, Any]] = []
    _walk(result, "output", found, is_float_tensor)
    if len(found) == 1:
        return [("output", found[0][1])]
    return found


def _walk(value, name: str, found: list, is_float_tensor) -> None:
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            _walk(value[key], f"{name}[{_key(key)}]", found, is_float_tensor)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(item, f"{name}[{index}]", found, is_float_tensor)
    elif is_float_tensor(value):
        found.append((name, value))


def _key(key) -> str:
    return f'"{key}"' if isinstance(key, str) else repr(key)
