"""float64 arithmetic for the twin: Keras's policy and floatx, and TensorFlow's type promotion.

Finite differences in float32 cannot see a relative gradient error of 1e-3, so they run on a
float64 copy of the layer (layer/twin.py), built, called and traced under this scope.
"""

from __future__ import annotations

import contextlib

from .runtime import tensorflow


@contextlib.contextmanager
def float64_policy(promote: bool = False):
    """Build, call and trace the twin under this: float64 policy, floatx and type promotion.

    floatx too: `keras.Input(shape)` takes its dtype from floatx, not from the policy, so a
    functional model's copy would otherwise round its float64 input to float32 at the door.
    Promotion (`promote`, only for a layer that raised without it: Keras's own code trips over
    it elsewhere): a float32 constant (`ops.sqrt(float(dim))` gives one whatever floatx says)
    meeting a float64 tensor makes TensorFlow raise, although it computes nothing in float32 on
    the tensor's path; TensorFlow's "safe" promotion casts it up instead. A cast to float32 on the
    path is still float32 computation, and is still seen (fallback.py).
    """
    from tensorflow.python.framework import ops

    _, keras = tensorflow()
    previous, previous_floatx = keras.config.dtype_policy(), keras.config.floatx()
    previous_promotion = ops.get_dtype_conversion_mode()
    keras.config.set_dtype_policy("float64")
    keras.config.set_floatx("float64")
    if promote:
        ops.set_dtype_conversion_mode("safe")
    try:
        yield
    finally:
        ops._dtype_conversion_mode = previous_promotion  # the setter takes no "off" spelling
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous)
