"""Layers for tests/test_screening.py: a correct block the joint screen must clear, and the same
block with one small bias whose gradient is 1e-3 too large, which the screen must not clear."""

import keras
import tensorflow as tf


@tf.custom_gradient
def _too_large(bias):
    return tf.identity(bias), lambda upstream: upstream * 1.001


class Block(keras.layers.Layer):
    """x + gelu(LayerNorm(x)·W1 + b1)·W2 + b2: kernels of 64x200 among small biases."""

    planted = False

    def build(self, input_shape):
        width = input_shape[-1]
        self.norm = keras.layers.LayerNormalization()
        self.norm.build(input_shape)
        self.w1 = self.add_weight(shape=(width, 200), name="w1")
        self.b1 = self.add_weight(shape=(200,), initializer="random_normal", name="b1")
        self.w2 = self.add_weight(shape=(200, width), name="w2")
        self.b2 = self.add_weight(shape=(width,), initializer="random_normal", name="b2")

    def call(self, inputs):
        b1 = tf.convert_to_tensor(self.b1)
        hidden = tf.matmul(self.norm(inputs), self.w1) + (_too_large(b1) if self.planted else b1)  # here: planted
        return inputs + tf.matmul(keras.activations.gelu(hidden), self.w2) + self.b2


class PlantedBlock(Block):
    planted = True
