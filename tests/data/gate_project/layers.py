"""A small project whose layers hold three things that look like bugs and are meant: the gate's
suppressions are tested on it (tests/cli/test_gate_project.py). Each `# gradcheck: ignore[...]`
comment says why the finding is accepted; the straight-through estimator needs none (gradcheck
tells it as a surrogate gradient, an info). One comment sits where a formatter (ruff, black) moves a
trailing comment when it wraps a long statement: on its last line, not on the line of the op."""

import keras
import tensorflow as tf


class TargetNetwork(keras.layers.Layer):
    """An online branch that learns and a target branch held fixed, as in DQN or BYOL: the target's
    kernel is updated by copying the online one, never by its gradient."""

    def build(self, input_shape):
        self.online_kernel = self.add_weight(shape=(input_shape[-1], 4), name="online_kernel")
        self.target_kernel = self.add_weight(shape=(input_shape[-1], 4), name="target_kernel")

    def call(self, inputs):
        online = tf.matmul(inputs, self.online_kernel)
        target = tf.stop_gradient(
            tf.matmul(inputs, self.target_kernel)
        )  # gradcheck: ignore[none-gradient] frozen target branch, copied from the online kernel
        return online - target


@tf.custom_gradient
def round_straight_through(x):
    """Rounds on the way forward; passes the gradient through unchanged on the way back."""
    return tf.round(x), lambda upstream: upstream


class QuantisedDense(keras.layers.Layer):
    """Weights rounded to a grid of 1/8, trained with a straight-through estimator."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        steps = round_straight_through(self.kernel * 8.0)  # needs no ignore: a surrogate gradient is an info
        return tf.matmul(inputs, steps / 8.0)


class FrozenStem(keras.layers.Layer):
    """A pretrained stem kept frozen under a head that learns."""

    def build(self, input_shape):
        self.stem = keras.layers.Dense(6, activation="tanh")
        self.stem.build(input_shape)
        self.head = keras.layers.Dense(2)
        self.head.build((*input_shape[:-1], 6))

    def call(self, inputs):
        features = tf.stop_gradient(self.stem(inputs))  # gradcheck: ignore[none-gradient, input-gradient-none] pretrained stem, frozen on purpose
        return self.head(features)
