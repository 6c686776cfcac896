"""The three classic custom layers, written the way Keras 3 expects: every weight from add_weight.

Each should pass gradcheck with no finding of severity error or warning.
"""

import keras
from keras import ops


class SimpleDense(keras.layers.Layer):  # args: --init units=4 --input-shape 16,5
    """y = x @ kernel"""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform")

    def call(self, inputs):
        return ops.matmul(inputs, self.kernel)


class DenseWithBias(keras.layers.Layer):  # args: --init units=4 --input-shape 16,5
    """y = x @ kernel + bias"""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs):
        return ops.matmul(inputs, self.kernel) + self.bias


class DenseWithActivation(keras.layers.Layer):  # args: --init units=4 --input-shape 16,5
    """y = activation(x @ kernel + bias)"""

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs):
        return self.activation(ops.matmul(inputs, self.kernel) + self.bias)
