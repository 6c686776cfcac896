"""Layers for the second-order check (tests/test_second_order.py): each says what --order 2 must find.

`tanh` is used throughout because its second derivative, -2·tanh·(1 - tanh²), is far from zero on
inputs in [-1, 1]: a grad function that is not itself differentiable changes the Hessian visibly.
"""

import keras
import numpy as np
import tensorflow as tf


class SmoothDense(keras.layers.Layer):
    """tanh(x W + b) written with plain ops: a correct layer, no finding with --order 2."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform")
        self.bias = self.add_weight(shape=(self.units,), initializer="random_normal")

    def call(self, x):
        return tf.tanh(tf.matmul(x, self.kernel) + self.bias)


@tf.custom_gradient
def stopped_tanh(z):
    y = tf.tanh(z)

    def grad(upstream):
        # Right first derivative, but stop_gradient makes it a constant for the second.
        return upstream * tf.stop_gradient(1.0 - y * y)

    return y, grad


@tf.custom_gradient
def numpy_tanh(z):
    y = tf.tanh(z)

    def grad(upstream):
        # Right first derivative computed in numpy: TensorFlow cannot differentiate it.
        slope = tf.numpy_function(lambda v: (1.0 - np.tanh(v) ** 2).astype(v.dtype), [z], z.dtype)
        return upstream * tf.reshape(slope, tf.shape(z))

    return y, grad


class StoppedTanhDense(SmoothDense):
    """The gradient penalty never trains `bias` (None) and is wrong for `kernel` and the input."""

    def call(self, x):
        return stopped_tanh(tf.matmul(x, self.kernel) + self.bias)  # expect: second-order-none bias


class NumpyTanhDense(SmoothDense):
    """The same through a numpy round trip in the grad function."""

    def call(self, x):
        return numpy_tanh(tf.matmul(x, self.kernel) + self.bias)  # expect: second-order-none bias


def _tanh_slope_off(off):
    """d tanh / dz = 1 - tanh², as a custom gradient whose own derivative is `off` too large."""

    @tf.custom_gradient
    def slope(z):
        y = tf.tanh(z)

        def grad(upstream):
            return upstream * (-2.0 * y * (1.0 - y * y)) * (1.0 + off)

        return 1.0 - y * y, grad

    return slope


def _tanh_with_wrong_second_derivative(off):
    slope = _tanh_slope_off(off)

    @tf.custom_gradient
    def tanh(z):
        def grad(upstream):
            return upstream * slope(z)  # the first derivative is exact

        return tf.tanh(z), grad

    return tanh


wrong_second_tanh = _tanh_with_wrong_second_derivative(0.05)


class WrongSecondDerivative(SmoothDense):
    """First derivative right, second derivative 5% off: only --order 2 sees it."""

    def call(self, x):
        return wrong_second_tanh(tf.matmul(x, self.kernel) + self.bias)  # expect: second-order-mismatch kernel


class ReluDense(SmoothDense):
    """relu(x W + b): a second derivative of zero almost everywhere is right, not a finding."""

    def call(self, x):
        return tf.nn.relu(tf.matmul(x, self.kernel) + self.bias)



class NearestUpsample(keras.layers.Layer):
    """tanh(w · nearest-neighbour upsampling of x): TensorFlow registers no gradient for
    ResizeNearestNeighborGrad, so the gradient of the gradient cannot be taken at all."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return tf.tanh(tf.image.resize(x, (4, 4), "nearest") * self.w)  # expect: second-order-none w


class TrainingScaled(keras.layers.Layer):
    """tanh(x·W), doubled when training: two training modes that compute different things."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs, training=None):
        y = tf.tanh(tf.matmul(inputs, self.kernel))
        return y * 2.0 if training else y
