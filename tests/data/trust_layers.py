"""Layers for a verdict to trust (tests/numeric/test_trust.py): custom gradients beside a
stop_gradient that must still be checked, straight-through estimators that must not be errors, and
a path finite differences cannot follow."""

import keras
import numpy as np
import tensorflow as tf


@tf.custom_gradient
def mish_missing_term(z):
    """mish(z) = z·tanh(softplus(z)); its gradient forgets the z·d/dz tanh(softplus(z)) term."""
    t = tf.tanh(tf.nn.softplus(z))

    def grad(upstream):
        return upstream * t

    return z * t, grad


class MishThenLayerNorm(keras.layers.Layer):
    """Dense, a hand-written Mish with a wrong gradient, then Keras's LayerNormalization (whose
    tf.nn.moments holds a stop_gradient): the most common transformer half-block."""

    def build(self, input_shape):
        self.dense = keras.layers.Dense(6)
        self.dense.build(input_shape)
        self.norm = keras.layers.LayerNormalization()
        self.norm.build((*input_shape[:-1], 6))

    def call(self, x):
        return self.norm(mish_missing_term(self.dense(x)))


@tf.custom_gradient
def logsumexp_tempered(z):
    """logsumexp(z / t) over the last axis, whose gradient forgets the 1/t factor."""
    temperature = 2.0
    y = tf.reduce_logsumexp(z / temperature, axis=-1)

    def grad(upstream):
        return upstream[..., None] * tf.nn.softmax(z / temperature, axis=-1)

    return y, grad


class TemperedLogSumExp(keras.layers.Layer):
    """A pooled score through reduce_logsumexp (which holds a stop_gradient of the max)."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")

    def call(self, x):
        return logsumexp_tempered(tf.matmul(x, self.kernel))


@tf.custom_gradient
def round_straight_through(z):
    return tf.round(z), lambda upstream: upstream


class RoundedByCustomGradient(keras.layers.Layer):
    """A straight-through estimator written as a custom gradient."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, x):
        return round_straight_through(tf.matmul(x, self.kernel) * 4.0)


class RoundedByStopGradient(keras.layers.Layer):
    """The same estimator written with tf.stop_gradient: the same outputs and gradients."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, x):
        hidden = tf.matmul(x, self.kernel) * 4.0
        return hidden + tf.stop_gradient(tf.round(hidden) - hidden)


@tf.custom_gradient
def bias_off_by_a_thousandth(b):
    return tf.identity(b), lambda upstream: upstream * (1.0 + 1e-3)


class PostNormBlock(keras.layers.Layer):
    """A post-norm transformer block (attention, LayerNormalization, a feed-forward network) whose
    feed-forward bias gets a gradient 1e-3 too large."""

    def __init__(self, width=8, hidden=16, **kwargs):
        super().__init__(**kwargs)
        self.width, self.hidden = width, hidden

    def build(self, input_shape):
        self.attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
        self.attention.build(input_shape, input_shape)
        self.norm1 = keras.layers.LayerNormalization()
        self.norm1.build(input_shape)
        self.norm2 = keras.layers.LayerNormalization()
        self.norm2.build(input_shape)
        self.up = self.add_weight(shape=(self.width, self.hidden), name="up")
        self.up_bias = self.add_weight(shape=(self.hidden,), initializer="zeros", name="up_bias")
        self.down = self.add_weight(shape=(self.hidden, self.width), name="down")

    def call(self, x):
        x = self.norm1(x + self.attention(x, x))
        bias = bias_off_by_a_thousandth(tf.convert_to_tensor(self.up_bias))
        return self.norm2(x + tf.matmul(tf.nn.gelu(tf.matmul(x, self.up) + bias), self.down))


class NumpyScale(keras.layers.Layer):
    """A scale computed in numpy: finite differences see it move the loss, the gradient cannot."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, x):
        hidden = tf.matmul(x, self.kernel)
        scale = tf.numpy_function(lambda h: np.float32(1.0 + np.mean(np.abs(h))), [hidden], tf.float32)
        return hidden * scale


class SaturatedClip(keras.layers.Layer):
    """A clip whose input starts above its upper bound (a bias of +6 against a bound of 1)."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.bias = self.add_weight(shape=(3,), initializer=keras.initializers.Constant(6.0), name="bias")

    def call(self, x):
        return tf.clip_by_value(tf.matmul(x, self.kernel) + self.bias, -1.0, 1.0)


class ClosedHighway(keras.layers.Layer):
    """A highway layer whose transform gate starts shut (its bias at -40): the gate's own weights die
    at its sigmoid, the transform's at the product with the gate."""

    def build(self, input_shape):
        width = input_shape[-1]
        self.wh = self.add_weight(shape=(width, width), name="wh")
        self.bh = self.add_weight(shape=(width,), initializer="zeros", name="bh")
        self.wt = self.add_weight(shape=(width, width), name="wt")
        self.bt = self.add_weight(shape=(width,), initializer=keras.initializers.Constant(-40.0), name="bt")

    def call(self, x):
        transform = tf.tanh(tf.matmul(x, self.wh) + self.bh)
        gate = tf.sigmoid(tf.matmul(x, self.wt) + self.bt)
        return transform * gate + x * (1.0 - gate)


class TopOneRouter(keras.layers.Layer):
    """A mixture of experts routing each sample to its top-scoring expert with keras.ops."""

    def build(self, input_shape):
        width = input_shape[-1]
        self.router = self.add_weight(shape=(width, 4), name="router")
        self.experts = self.add_weight(shape=(4, width, width), name="experts")

    def call(self, x):
        choice = keras.ops.one_hot(keras.ops.argmax(keras.ops.matmul(x, self.router), axis=-1), 4)
        outputs = keras.ops.einsum("bi,eij->bej", x, self.experts)
        return keras.ops.einsum("be,bej->bj", choice, outputs)


@tf.custom_gradient
def softsign_exact(z):
    """softsign(z) = z / (1 + |z|), with its exact gradient."""

    def grad(upstream):
        return upstream / tf.square(1.0 + tf.abs(z))

    return z / (1.0 + tf.abs(z)), grad


class TwoCustomGradients(keras.layers.Layer):
    """A right custom gradient after a wrong one: a mismatch names both, nearest first."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")

    def call(self, x):
        return softsign_exact(mish_missing_term(tf.matmul(x, self.kernel)))
