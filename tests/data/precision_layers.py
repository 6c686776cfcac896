"""Layers for the dtype-policy check (tests/test_dtype_policy.py): one that follows the policy, one
that casts back to float32, one whose values underflow in float16, one with a float16 weight."""

import keras
import tensorflow as tf
from keras import ops


class PolicyRespecting(keras.layers.Layer):
    """Correct: every op in the compute dtype; the variance in float32, cast back."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")
        self.bias = self.add_weight(shape=(4,), initializer="zeros", name="bias")

    def call(self, inputs):
        hidden = ops.matmul(inputs, self.kernel) + self.bias
        variance = ops.var(ops.cast(hidden, "float32"), axis=-1, keepdims=True)
        return hidden * ops.cast(ops.rsqrt(variance + 1e-3), self.compute_dtype)


class HardCast(keras.layers.Layer):
    """Casts its result to float32, whatever the policy."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")

    def call(self, inputs):
        hidden = ops.matmul(inputs, self.kernel)
        return tf.cast(hidden, tf.float32)  # cast: leaves the policy


class Underflowing(keras.layers.Layer):
    """Scales activations to ~1e-8: fine in float32, zero in float16 (its smallest step is 6e-8)."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")

    def call(self, inputs):
        hidden = ops.matmul(inputs, self.kernel)
        return hidden * 1e-8  # underflow


class HalfPrecisionWeight(keras.layers.Layer):
    """Makes its kernel in the compute dtype: float16 under mixed_float16."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel", dtype=self.compute_dtype)  # weight

    def call(self, inputs):
        return ops.matmul(inputs, ops.cast(self.kernel, self.compute_dtype))
