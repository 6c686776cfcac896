"""Copies whose large weights skip their initializer: they are given other values right after.

The float64 twin (layer/twin.py) and the reload check's copies (checks/reload.py) are built, then
given the layer's weights (or the saved ones). For a weight of 25.6M numbers the initializer's
random draw is the most expensive step of making the copy: TensorFlow draws float64 uniforms
through three buffers of the tensor's size (615 MB at its peak for an embedding table of 205 MB),
and the memory TensorFlow takes stays with the process. While `unfilled()` is active, a Keras
variable of at least LARGE numbers starts as zeros; smaller ones draw as before (so nothing about
a small layer's copies changes, the random state they advance included).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

LARGE = 1 << 20  # numbers: a float64 weight of 8 MB


@contextlib.contextmanager
def unfilled() -> Iterator[None]:
    """Large Keras variables made while active start as zeros instead of their initializer's draw.

    Keras's TensorFlow variable fills itself in `_initialize_with_initializer`; where a Keras
    version has no such method, copies are made as the layer makes them."""
    from keras.src.backend.tensorflow import core

    from .runtime import tensorflow

    tf, _ = tensorflow()
    variable_class = getattr(core, "Variable", None)
    filling = getattr(variable_class, "_initialize_with_initializer", None)
    if variable_class is None or filling is None:
        yield
        return

    def fill(variable, initializer) -> None:
        shape, dtype = getattr(variable, "_shape", None), getattr(variable, "_dtype", None)
        if shape is None or dtype is None or math.prod(shape) < LARGE:
            filling(variable, initializer)
        else:
            variable._initialize(lambda: tf.zeros(shape, dtype))

    variable_class._initialize_with_initializer = fill
    try:
        yield
    finally:
        variable_class._initialize_with_initializer = filling
