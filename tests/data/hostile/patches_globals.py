"""A correct layer whose module changes the interpreter it is imported into: numpy's isfinite made
to call everything finite, and a variable set in os.environ. A target checked after it in the same
process would have its NaN gradients pass and its environment changed."""

import os

import keras
import numpy as np

np.isfinite = lambda values, *args, **kwargs: np.ones(np.shape(values), dtype=bool)
os.environ["GRADCHECK_TEST_WIDTH"] = "7"


class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale
