"""A module that ends the process when imported: gradcheck must report it, never pass it."""

import sys

import keras

sys.exit(0)  # a script's last line, left in a module


class Never(keras.layers.Layer):
    def call(self, inputs):
        return inputs
