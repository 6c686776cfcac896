"""Layers with a tf.while_loop whose body depends on `training`."""

import keras
import tensorflow as tf


class LoopScaledInTraining(keras.layers.Layer):
    """Its modes differ only in one constant inside the loop body: both must be checked."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], input_shape[-1]), name="w")

    def call(self, inputs, training=None):
        scale = 0.5 if training else 1.0

        def body(i, h):
            return i + 1, tf.tanh(scale * tf.matmul(h, self.w))

        return tf.while_loop(lambda i, h: i < 3, body, [tf.constant(0), inputs])[1]
