"""Layers for the tests of the JAX and PyTorch backends and of their comparison (tests/checks/test_backends.py)."""

import keras
import tensorflow as tf
from keras import ops


class TensorFlowInside(keras.layers.Layer):
    """A layer written with keras.ops but for one tf.sin: it runs on TensorFlow only."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        return tf.sin(ops.matmul(inputs, self.kernel))
