"""A raw JAX array a layer holds (`self.w = jnp.ones(...)` in build()), as a variable the checks can
assign.

On JAX a raw array is what a tf.Variable is on TensorFlow: the trap (Keras does not track it, so
fit() never trains it and saving drops it). The checks read and move variables by assigning them
(finite differences perturb one, the reload check moves one off its value, the twin is given the
layer's values), but a JAX array is immutable: assigning one means putting a new array where the
old one is held. A `RawArray` remembers that place (an attribute of a layer or object, an item of
a list or dict), found by the attribute walk (layer/naming.py), and stands for the array from then
on: its identity is the row's, whatever array it holds at the moment.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from .runtime import jax_modules, wide, x64


class RawArray:
    """The place of a raw array on a layer, and the array it holds now."""

    def __init__(self, original, owner, key, is_item: bool) -> None:
        self.original = original  # the array the layer was built with: put back when its values return
        self.current = original
        self.owner, self.key, self.is_item = owner, key, is_item

    @property
    def shape(self) -> tuple:
        return tuple(self.current.shape)

    @property
    def dtype(self):
        return self.current.dtype

    def assign(self, value) -> None:
        value = np.asarray(value).astype(self.current.dtype)
        if np.array_equal(value, np.asarray(self.original)) and value.dtype == self.original.dtype:
            array = self.original  # its values back: the very array, so traces that captured it still match
        else:
            jax, _ = jax_modules()
            with x64(wide(value.dtype)):
                array = jax.numpy.asarray(value)
        if self.is_item:
            self.owner[self.key] = array
        else:
            object.__setattr__(self.owner, self.key, array)  # past Keras's attribute tracking
        _SLOTS[id(array)] = (self, array)
        self.current = array


_SLOTS: dict[int, tuple[RawArray, Any]] = {}  # id(array) -> (its slot, the array: kept alive, so ids stay unique)


def slot_of(array) -> RawArray | None:
    held = _SLOTS.get(id(array))
    return held[0] if held is not None and held[1] is array else None


def remember(names, is_raw) -> None:
    """Make a slot for every raw array the walk found at a place it can be put back (an attribute or
    a list or dict item: a tuple, a closure cell or a module's global cannot take a new array)."""
    for key, obj in names.objects.items():
        if not is_raw(obj) or slot_of(obj) is not None:
            continue
        place = names.places.get(key)
        if place is None or place.owner is None:
            continue
        if place.attribute is not None:
            _SLOTS[key] = (RawArray(obj, place.owner, place.attribute, False), obj)
        elif isinstance(place.owner, (list, dict)) and place.path.endswith("]"):
            index = _item_key(place.path)
            if index is not None:
                _SLOTS[key] = (RawArray(obj, place.owner, index, True), obj)


def _item_key(path: str):
    """The key of the last `[...]` of a path (`ws[1]` -> 1, `d['a']` -> 'a')."""
    text = path[path.rfind("[") + 1 : -1]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
