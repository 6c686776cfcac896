"""Layers and objects that gradcheck must refuse with exit status 2 and one clear paragraph.

They live outside sample_layers/ on purpose: the sample harness checks every class there. Tests find
the user's file:line in a message by the `# raises here: WHAT` comment on the line (line_of()).
"""

import os
import time

import keras
import tensorflow as tf


class BuildRaises(keras.layers.Layer):
    def build(self, input_shape):
        raise ValueError("build needs a rank-3 input")  # raises here: build


class CallRaises(keras.layers.Layer):
    def call(self, inputs):
        raise RuntimeError("call is broken")  # raises here: call


class NeedsUnits(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        if units <= 0:
            raise ValueError(f"units must be positive, got {units}")  # raises here: init
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units))

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel)


class FixedWidth(keras.layers.Layer):
    """Expects 5 features; any other last dimension is a shape mismatch."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(5, 3))

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel)  # raises here: shape


class ReturnsNone(keras.layers.Layer):
    def call(self, inputs):
        return None


class Hangs(keras.layers.Layer):
    def call(self, inputs):
        # A test that must act while call() runs (HANG_MARK set) waits for this file, rather than
        # guessing how long a cold start takes.
        if "HANG_MARK" in os.environ:
            open(os.environ["HANG_MARK"], "w").close()
        while True:  # never returns; it sleeps rather than spins, leaving the CPU to the other tests
            time.sleep(0.01)


class ReturnsDict(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3))

    def call(self, inputs):
        return {"a": tf.matmul(inputs, self.kernel), "b": tf.tanh(inputs)}


class ReturnsTuple(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3))

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel), inputs * 2.0


def factory_raises():
    raise KeyError("no such config")  # raises here: factory


def factory_returns_string():
    return "not a layer"


NOT_A_LAYER = 42


class PlainClass:
    pass
