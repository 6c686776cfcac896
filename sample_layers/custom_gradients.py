"""Layers with a hand-written gradient (tf.custom_gradient): wrong ones, right ones, and a kink.

A wrong custom gradient is finite and flows, so only finite differences can see it. Each wrong
layer sends its wrong gradient into one tensor; the finding points at the line that applies the
custom gradient. Weights are passed to a custom-gradient function as tensors (a variable argument
raises TypeError unless the gradient function takes `variables=`, NOTES.md 7).

`# args:` on a class line gives the command-line options the tests use; `# expect: CODE TENSOR`
marks the line a finding must point at.
"""

import tensorflow as tf
import keras


@tf.custom_gradient
def tanh_doubled(z):
    """tanh whose gradient is twice the true one."""
    y = tf.tanh(z)

    def grad(upstream):
        return upstream * 2.0 * (1.0 - y * y)

    return y, grad


@tf.custom_gradient
def sin_flipped(z):
    """sin whose gradient has the wrong sign."""

    def grad(upstream):
        return -upstream * tf.cos(z)

    return tf.sin(z), grad


@tf.custom_gradient
def swish_missing_term(z):
    """z·sigmoid(z) whose gradient forgets the z·s·(1 − s) term of the product rule."""
    s = tf.sigmoid(z)

    def grad(upstream):
        return upstream * s

    return z * s, grad


@tf.custom_gradient
def softplus_slightly_off(z):
    """softplus whose gradient is sigmoid(z)·(1 + 1e-3): wrong by a relative 1e-3."""

    def grad(upstream):
        return upstream * tf.sigmoid(z) * (1.0 + 1e-3)

    return tf.nn.softplus(z), grad


@tf.custom_gradient
def stable_softplus(z):
    """log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(−|z|)); its gradient is sigmoid(z)."""

    def grad(upstream):
        return upstream * tf.sigmoid(z)

    return tf.maximum(z, 0.0) + tf.math.log1p(tf.exp(-tf.abs(z))), grad


class _Dense(keras.layers.Layer):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")


class DoubledGradient(_Dense):  # args: --input-shape 16,5
    """A weight reparametrised through tanh, whose custom gradient is twice too large."""

    def call(self, inputs):
        weight = tanh_doubled(tf.convert_to_tensor(self.kernel))  # expect: gradient-mismatch kernel
        return tf.matmul(inputs, weight) + self.bias


class FlippedGradient(_Dense):  # args: --input-shape 16,5
    """sin features of the input, whose custom gradient has the wrong sign: layers below learn backwards."""

    def call(self, inputs):
        features = sin_flipped(inputs)  # expect: gradient-mismatch input
        return tf.matmul(features, self.kernel) + self.bias


class MissingTerm(_Dense):  # args: --input-shape 16,5
    """A learned per-unit gate swish(gate), whose custom gradient misses a product-rule term."""

    def build(self, input_shape):
        super().build(input_shape)
        self.gate = self.add_weight(shape=(self.units,), initializer="ones", name="gate")

    def call(self, inputs):
        gate = swish_missing_term(tf.convert_to_tensor(self.gate))  # expect: gradient-mismatch gate
        return (tf.matmul(inputs, self.kernel) + self.bias) * gate


class SlightlyOffGradient(_Dense):  # args: --input-shape 16,5
    """A positive scale softplus(bias), whose custom gradient is off by a relative 1e-3."""

    def call(self, inputs):
        scale = softplus_slightly_off(tf.convert_to_tensor(self.bias))  # expect: gradient-mismatch bias
        return tf.matmul(inputs, self.kernel) * scale


class StableSoftplus(_Dense):  # args: --input-shape 16,5 --input-range -30,30
    """A correct custom gradient: a numerically stable softplus activation (large inputs included)."""

    def call(self, inputs):
        return stable_softplus(tf.matmul(inputs, self.kernel) + self.bias)


class ReluNearKink(_Dense):  # args: --input-shape 16,5 --input-range -1e-6,1e-6 expect-anywhere: non-differentiable-point input
    """ReLU features of inputs that sit within a finite-difference step of the kink at 0.

    The gradient is right; finite differences straddle the kink and disagree with it. That must be
    reported as a non-differentiable point, not as a gradient mismatch.
    """

    def call(self, inputs):
        return tf.matmul(tf.nn.relu(inputs) + 1.0, self.kernel) + self.bias


class Float32Inside(_Dense):  # args: --input-shape 16,5
    """Computes its matmul in float32 whatever the input dtype, so a float64 copy is not float64 inside.

    Correct, but the finite-difference check must fall back to float32 for every tensor on that
    path (and say so) rather than report the float32 rounding as a mismatch.
    """

    def call(self, inputs):
        product = tf.matmul(tf.cast(inputs, tf.float32), tf.cast(self.kernel, tf.float32))  # expect: float32-fallback -
        return tf.cast(product, inputs.dtype) + self.bias


class StraightThroughRounding(keras.layers.Layer):  # args: --input-shape 16,5
    """Correct: a straight-through estimator rounds forward and passes the gradient unchanged.

    Finite differences see a flat loss (rounding) while tf.stop_gradient gives the gradient the
    estimator chose: a surrogate gradient (info), never a false gradient-mismatch."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        hidden = tf.matmul(inputs, self.kernel) * 4.0
        return hidden + tf.stop_gradient(tf.round(hidden) - hidden)  # expect: surrogate-gradient kernel  expect: surrogate-gradient input
