"""A layer with three findings, for the baseline tests (tests/cli/test_baseline.py): a weight call()
never reads, a bias behind tf.stop_gradient, and a scale cut by an integer cast."""

import keras
import tensorflow as tf


class ThreeFindings(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.bias = self.add_weight(shape=(3,), initializer="zeros", name="bias")
        self.scale = self.add_weight(shape=(3,), initializer="ones", name="scale")
        self.unused = self.add_weight(shape=(3,), name="unused")

    def call(self, inputs):
        hidden = tf.matmul(inputs, self.kernel) + tf.stop_gradient(self.bias)
        steps = tf.cast(tf.cast(self.scale * 4.0, tf.int32), tf.float32)
        return hidden * steps
