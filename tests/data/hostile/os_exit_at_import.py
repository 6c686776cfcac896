"""A module that ends the process with os._exit at import: no exception, no cleanup."""

import os

import keras

os._exit(0)


class Never(keras.layers.Layer):
    def call(self, inputs):
        return inputs
