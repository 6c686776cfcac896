"""Layers whose gradients are cut, zero, vanishing or non-finite, and correct twins that are not.

A line marked `# expect: CODE TENSOR` is where gradcheck must report that finding for the class
it is in; `# expect-anywhere: CODE TENSOR` on the class line means the finding has no fixed line.
`# args:` on the class line gives the command-line options the tests use. A class with no
expectation must produce no error and no warning.
"""

import numpy as np
import tensorflow as tf
import keras
from keras import ops


# --- a cut path: the gradient is None ---------------------------------------------------------


class StopGradientBias(keras.layers.Layer):  # args: --input-shape 16,5
    """A bias read only through tf.stop_gradient: fit() never moves it."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.b = self.add_weight(shape=(3,), initializer="zeros", name="b")

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel) + tf.stop_gradient(self.b)  # expect: none-gradient b


class ArgmaxRouting(keras.layers.Layer):  # args: --input-shape 16,5
    """Picks a row of a table by argmax of a projection: argmax has no gradient, so neither the
    projection kernel nor the input learn from the output."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")
        self.table = self.add_weight(shape=(4, 3), name="table")

    def call(self, inputs):
        index = tf.argmax(tf.matmul(inputs, self.kernel), axis=-1)  # expect: none-gradient kernel  expect: input-gradient-none input
        return tf.gather(self.table, index)


class CastToInt(keras.layers.Layer):  # args: --input-shape 16,5
    """Quantises a weight by casting it to int32: the cast has no gradient."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.scale = self.add_weight(shape=(3,), initializer="ones", name="scale")

    def call(self, inputs):
        steps = tf.cast(self.scale * 4.0, tf.int32)  # expect: none-gradient scale
        return tf.matmul(inputs, self.kernel) * tf.cast(steps, inputs.dtype)


class NumpyFunctionScale(keras.layers.Layer):  # args: --input-shape 16,5
    """A weight sent through tf.numpy_function: numpy code has no gradient."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.scale = self.add_weight(shape=(3,), initializer="ones", name="scale")

    def call(self, inputs):
        scale = tf.numpy_function(np.abs, [self.scale], tf.float32, stateful=False)  # expect: none-gradient scale
        return tf.matmul(inputs, self.kernel) * tf.reshape(scale, (3,))


class NumpyRoundTrip(keras.layers.Layer):  # args: --input-shape 16,5  expect-anywhere: trace-failed -
    """A `.numpy()` round trip in call(): eager code runs, but the path leaves TensorFlow, so neither
    the kernel nor the input gets a gradient, and fit() (which traces call()) fails."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        hidden = tf.matmul(inputs, self.kernel)
        return tf.constant(np.tanh(hidden.numpy()))  # expect: none-gradient kernel  expect: input-gradient-none input


# --- a zero, vanishing or non-finite gradient ---------------------------------------------------


class DeadRelu(keras.layers.Layer):  # args: --input-shape 16,5
    """A bias of -100 keeps every pre-activation negative: ReLU passes no gradient at all."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.bias = self.add_weight(shape=(3,), initializer=keras.initializers.Constant(-100.0), name="bias")

    def call(self, inputs):
        return tf.nn.relu(tf.matmul(inputs, self.kernel) + self.bias)  # expect: zero-gradient kernel  expect: zero-gradient bias  expect: zero-gradient input


class SaturatedSigmoid(keras.layers.Layer):  # args: --input-shape 16,5
    """sigmoid(z - 30): the slope there is about 1e-13, so nothing before it learns."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        return tf.sigmoid(tf.matmul(inputs, self.kernel) - 30.0)  # expect: vanishing-gradient kernel  expect: vanishing-gradient input


class ExpOverflow(keras.layers.Layer):  # args: --input-shape 16,5
    """exp of a large pre-activation overflows float32 to Inf."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), initializer="ones", name="kernel")

    def call(self, inputs):
        return tf.exp(100.0 * tf.matmul(inputs, self.kernel))  # expect: nonfinite-gradient kernel  expect: nonfinite-gradient input


class SqrtOfZeroWeight(keras.layers.Layer):  # args: --input-shape 16,5
    """sqrt of a zero-initialised weight: the slope of sqrt at 0 is infinite."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.gain = self.add_weight(shape=(3,), initializer="zeros", name="gain")

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel) * (1.0 + tf.sqrt(self.gain))  # expect: nonfinite-gradient gain


class NormalisedZeroWeight(keras.layers.Layer):  # args: --input-shape 16,5
    """v / norm(v) with v initialised to zeros: 0/0 in the output and the gradient."""

    def build(self, input_shape):
        self.v = self.add_weight(shape=(input_shape[-1], 3), initializer="zeros", name="v")

    def call(self, inputs):
        return tf.matmul(inputs, self.v / tf.norm(self.v))  # expect: nonfinite-gradient v  expect: nonfinite-gradient input


class WhereTrap(keras.layers.Layer):  # args: --input-shape 16,5
    """p * log(p) guarded by tf.where: the branch not taken still has a NaN gradient (NOTES.md 7)."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        p = tf.nn.relu(tf.matmul(inputs, self.kernel))
        return tf.where(p > 0, p * tf.math.log(p), tf.zeros_like(p))  # expect: nonfinite-gradient kernel  expect: nonfinite-gradient input


# --- correct layers: no finding ------------------------------------------------------------------


class SoftmaxHead(keras.layers.Layer):  # args: --input-shape 16,5
    """softmax(x @ kernel + bias): the sum of its output is constant, yet every weight learns."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")
        self.bias = self.add_weight(shape=(4,), initializer="zeros", name="bias")

    def call(self, inputs):
        return ops.softmax(ops.matmul(inputs, self.kernel) + self.bias)


class LayerNormLike(keras.layers.Layer):  # args: --input-shape 16,5
    """A hand-written layer normalisation: a plain-sum probe would see a zero gradient here."""

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="beta")

    def call(self, inputs):
        mean = ops.mean(inputs, axis=-1, keepdims=True)
        variance = ops.var(inputs, axis=-1, keepdims=True)
        return self.gamma * (inputs - mean) / ops.sqrt(variance + 1e-5) + self.beta


class AttentionLike(keras.layers.Layer):  # args: --input-shape 2,6,8
    """Single-head self-attention with query, key and value projections."""

    def build(self, input_shape):
        width = input_shape[-1]
        self.query = self.add_weight(shape=(width, width), name="query")
        self.key = self.add_weight(shape=(width, width), name="key")
        self.value = self.add_weight(shape=(width, width), name="value")

    def call(self, inputs):
        q, k, v = inputs @ self.query, inputs @ self.key, inputs @ self.value
        scores = ops.matmul(q, ops.transpose(k, (0, 2, 1))) / np.sqrt(q.shape[-1]).astype("float32")
        return ops.matmul(ops.softmax(scores, axis=-1), v)


class DropoutDense(keras.layers.Layer):  # args: --input-shape 16,5  expect-anywhere: stochastic-output -
    """Dense followed by dropout: stochastic, yet its gradient check repeats exactly."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(0.5)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs, training=None):
        return self.dropout(ops.matmul(inputs, self.kernel), training=training)


class TokenAndScale(keras.layers.Layer):  # args: --input-shape 8,5 --input-shape 8,5 --input-dtype int32 --input-dtype float32
    """An int input (token ids) beside a float one: the ids get no gradient finding."""

    def build(self, input_shape):
        self.embeddings = self.add_weight(shape=(10, 4), name="embeddings")
        self.scale = self.add_weight(shape=(4,), initializer="ones", name="scale")

    def call(self, inputs):
        tokens, weights = inputs
        vectors = tf.gather(self.embeddings, tokens)
        return vectors * self.scale * weights[..., None]


class LearnedPositions(keras.layers.Layer):  # args: --input-shape 4,6,8  expect-anywhere: input-unused input
    """Correct: a learned position table sized from the input's shape; the caller adds it to the
    input, so the input's values are not needed here (keras-hub's PositionEmbedding does this)."""

    def build(self, input_shape):
        self.positions = self.add_weight(shape=(input_shape[1], input_shape[2]), name="positions")

    def call(self, inputs):
        length = tf.shape(inputs)[1]
        return tf.broadcast_to(self.positions[:length], tf.shape(inputs))
