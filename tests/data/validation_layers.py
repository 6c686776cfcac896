"""Layers for tests/test_validation.py: messages about how a layer is called, not what it computes."""

import keras


class TwoInputs(keras.layers.Layer):
    """call() takes its two inputs as separate arguments (as MultiHeadAttention does)."""

    def build(self, first_shape, second_shape=None):
        self.kernel = self.add_weight(shape=(first_shape[-1], 3))

    def call(self, first, second):
        return keras.ops.matmul(first + second, self.kernel)


class OutOfMemory(keras.layers.Layer):
    """Raises MemoryError with no text, as an allocation that fails often does."""

    def call(self, inputs):
        raise MemoryError()


class Dense3(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3))

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.kernel)
