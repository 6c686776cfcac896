"""Layers whose tensors share a display name: each row must still get its own facts (rows.py)."""

import keras
import tensorflow as tf


def _projection():
    # A variable only a closure holds: gradcheck can only show it by TensorFlow's name, "kernel",
    # the same name as the layer's own tracked weight.
    hidden = tf.Variable(tf.ones((4, 3)), name="kernel")
    return lambda x: tf.matmul(x, hidden)


PROJECT = _projection()


class TwoKernels(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel) * 0.0 + PROJECT(inputs)
