"""Layers for tests/test_subbatch.py: ones whose finite-difference passes must keep the whole batch."""

import keras
import tensorflow as tf


class FixedBatch(keras.layers.Layer):
    """Flattens each sample with the batch size it was built with: no other batch goes through."""

    def build(self, input_shape):
        self.batch = input_shape[0]
        size = 1
        for dimension in input_shape[1:]:
            size *= dimension
        self.kernel = self.add_weight(shape=(size, 3), name="kernel")

    def call(self, inputs):
        return tf.matmul(tf.reshape(inputs, (self.batch, -1)), self.kernel)


class WithBatchMean(keras.layers.Layer):
    """Returns its output and that output's mean over the batch."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        outputs = tf.matmul(inputs, self.kernel)
        return outputs, tf.reduce_mean(outputs, axis=0)
