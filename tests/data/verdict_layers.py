"""Layers for a verdict to trust (tests/checks/test_causes_and_severity.py): one root cause gives one finding,
inputs are named as call() names them, and a layer with integer outputs is checked for what applies."""

import keras
import tensorflow as tf


class FrozenProjection(keras.layers.Layer):
    """`kernel` and `bias` are both cut by one stop_gradient: one cause, shown once."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.bias = self.add_weight(shape=(3,), initializer="ones", name="bias")
        self.gain = self.add_weight(shape=(3,), initializer="ones", name="gain")

    def call(self, inputs):
        frozen = tf.stop_gradient(tf.matmul(inputs, self.kernel) + self.bias)  # here: the one cut
        return frozen * self.gain


class TrainableProjection(FrozenProjection):
    """The correct twin: the same computation without the stop_gradient."""

    def call(self, inputs):
        return (tf.matmul(inputs, self.kernel) + self.bias) * self.gain


class RandomMask(keras.layers.Layer):
    """A 0/1 mask drawn in build() is not reported as a constant posing as a weight, yet a reload
    draws another: the reload mismatch is the only finding that explains it, so it stays."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")
        self.mask = tf.cast(tf.random.uniform((4,)) > 0.5, tf.float32)  # here: the mask

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel) * self.mask


class Attend(keras.layers.Layer):
    """Two inputs as two arguments: `context` is cut by argmax, `x` is not."""

    def build(self, x_shape, context_shape=None):
        self.kernel = self.add_weight(shape=(x_shape[-1], 3), name="kernel")

    def call(self, x, context):
        choice = tf.one_hot(tf.argmax(context, axis=-1), 3, dtype=x.dtype)  # here: context cut
        return tf.matmul(x, self.kernel) * choice


class AttendSoftly(Attend):
    """The correct twin: a softmax passes the gradient to `context`."""

    def call(self, x, context):
        return tf.matmul(x, self.kernel) * tf.nn.softmax(context[..., :3], axis=-1)


class PairOfInputs(keras.layers.Layer):
    """Two inputs as one list: they are `inputs[0]` and `inputs[1]`."""

    def call(self, inputs):
        first, second = inputs
        return first * tf.stop_gradient(second)  # here: second cut


class Buckets(keras.layers.Layer):
    """Integer outputs only, with a raw variable it reads: the inventory still applies."""

    def build(self, input_shape):
        self.edges = tf.Variable([0.0, 0.5])  # here: raw edges

    def call(self, inputs):
        return tf.cast(tf.reduce_sum(tf.cast(inputs[..., None] > self.edges, tf.int32), axis=-1), tf.int32)


class Quantise(keras.layers.Layer):
    """Not a Keras preprocessing layer: a cast to uint8 cutting the input is an error here."""

    def call(self, inputs):
        return tf.cast(tf.cast(inputs * 255.0, tf.uint8), tf.float32) / 255.0  # here: uint8


class Posterize(keras.layers.RandomPosterization):
    """A user's subclass of a Keras preprocessing layer is a preprocessing layer too."""
