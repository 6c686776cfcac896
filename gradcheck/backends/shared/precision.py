"""Keras's float64 arithmetic on JAX and PyTorch, for the float64 twin.

Keras's float64 policy and floatx are not enough there: Keras's own type promotion turns float64
into float32 on every backend but TensorFlow (keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE,
fixed when Keras is imported, "to be aligned with JAX's default"), so `ops.matmul(f64, f64)` is
float32 on torch and `ops.mean` computes in float32 on JAX. A twin built that way gives finite
differences of a float32 function, and false mismatches of 2-95 % on correct layers (measured
with Keras 3.15 on both backends). The entry is set to float64 while the twin runs and put back
afterwards; it is a private dict of Keras, which is why the extras pin the versions measured with.
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def keras_float64():
    """Keras's float64 policy and floatx, and float64 kept float64 by its type promotion."""
    import keras
    from keras.src.backend.common import dtypes

    previous, previous_floatx = keras.config.dtype_policy(), keras.config.floatx()
    table = getattr(dtypes, "BIT64_TO_BIT32_DTYPE", None)
    previous_entry = table.get("float64") if isinstance(table, dict) else None
    keras.config.set_dtype_policy("float64")
    keras.config.set_floatx("float64")
    if isinstance(table, dict):
        table["float64"] = "float64"
    try:
        yield
    finally:
        if isinstance(table, dict):
            table["float64"] = previous_entry
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous)
