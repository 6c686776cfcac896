"""A layer whose width comes from an environment variable: it shows which os.environ its worker has."""

import os

import keras


class WidthFromEnvironment(keras.layers.Layer):
    def build(self, input_shape):
        width = int(os.environ.get("GRADCHECK_TEST_WIDTH", "1"))
        self.kernel = self.add_weight(shape=(input_shape[-1], width))

    def call(self, inputs):
        return inputs @ self.kernel
