"""Layers for tests/test_accuracy.py: the classes of layer issue 10 found gradcheck wrong on.

Each broken layer marks the line its finding must point at with a comment (`# here: WHAT`);
tests find that line by its text, so lines may move. Correct layers must give no finding.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops


class _Dense(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")


class NestedTuple(keras.layers.Layer):
    """call() returns (y, (y2, [y3])): `deep` feeds only y3."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.deep = self.add_weight(shape=(input_shape[-1], 2), name="deep")

    def call(self, inputs):
        y = tf.matmul(inputs, self.kernel)
        return y, (2.0 * y, [tf.matmul(inputs, self.deep)])


class NestedDict(keras.layers.Layer):
    """call() returns {"a": y, "b": {"c": z}}: `deep` feeds only z."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.deep = self.add_weight(shape=(input_shape[-1], 2), name="deep")

    def call(self, inputs):
        return {"a": tf.matmul(inputs, self.kernel), "b": {"c": tf.tanh(tf.matmul(inputs, self.deep))}}


class SparseOutput(_Dense):
    def call(self, inputs):
        return tf.sparse.from_dense(tf.nn.relu(tf.matmul(inputs, self.kernel)))


class RaggedOutput(_Dense):
    def call(self, inputs):
        return tf.RaggedTensor.from_tensor(tf.matmul(inputs, self.kernel), lengths=[1, 2, 3, 3] * 4)


class TrainingBranchRaises(_Dense):
    """Runs only with training=False; its training branch raises."""

    def call(self, inputs, training=None):
        if training:
            raise NotImplementedError("training mode is not supported yet")
        return tf.matmul(inputs, self.kernel)


def _numpy_square(x):
    return np.square(x.numpy())


class PyFunctionBackward(_Dense):
    """tf.py_function around numpy code: its backward raises in fit() too."""

    def call(self, inputs):
        hidden = tf.matmul(inputs, self.kernel)
        squared = tf.py_function(_numpy_square, [hidden], tf.float32)  # here: backward
        squared.set_shape(hidden.shape)
        return hidden + squared


class LayerNormTinyEpsilon(keras.layers.Layer):
    """A layer normalisation: on nearly constant rows (--input-range 1,1.00001) it is steep, and correct."""

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gamma")

    def call(self, inputs):
        mean = tf.reduce_mean(inputs, axis=-1, keepdims=True)
        variance = tf.reduce_mean(tf.square(inputs - mean), axis=-1, keepdims=True)
        return self.gamma * (inputs - mean) / tf.sqrt(variance + 1e-14)


class DeadReluAtOp(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")  # here: kernel made
        self.bias = self.add_weight(shape=(3,), initializer=keras.initializers.Constant(-100.0), name="bias")

    def call(self, inputs):
        hidden = tf.matmul(inputs, self.kernel) + self.bias
        return 2.0 * tf.nn.relu(hidden)  # here: relu


class SaturatedSigmoidAtOp(_Dense):
    def call(self, inputs):
        hidden = tf.matmul(inputs, self.kernel) - 30.0
        return tf.sigmoid(hidden)  # here: sigmoid


class ExplodingExpAtOp(_Dense):
    def call(self, inputs):
        hidden = tf.matmul(inputs, self.kernel) * 0.01 + 20.0
        return tf.exp(hidden)  # here: exp


class BiasBeforeNormalisation(keras.layers.Layer):
    """A bias added before a normalisation over the same axis: mathematically no gradient."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")
        self.bias = self.add_weight(shape=(4,), initializer="zeros", name="bias")  # here: bias made

    def call(self, inputs):
        hidden = tf.matmul(inputs, self.kernel) + self.bias
        centred = hidden - tf.reduce_mean(hidden, axis=0, keepdims=True)
        return centred / tf.sqrt(tf.reduce_mean(tf.square(centred), axis=0, keepdims=True) + 1e-3)


class ScaledAttention(keras.layers.Layer):
    """Correct: a float32 constant (`ops.sqrt(float(dim))`) is no float32 computation."""

    def build(self, input_shape):
        self.query = self.add_weight(shape=(input_shape[-1], 4), name="query")
        self.key = self.add_weight(shape=(input_shape[-1], 4), name="key")

    def call(self, inputs):
        q, k = ops.matmul(inputs, self.query), ops.matmul(inputs, self.key)
        scores = ops.matmul(q, ops.transpose(k, (0, 2, 1))) / ops.sqrt(float(4))
        return ops.matmul(ops.softmax(scores, axis=-1), q)


class HardCodedFloat32(_Dense):
    """Computes in float32 whatever its input's dtype."""

    def call(self, inputs):
        return tf.matmul(tf.cast(inputs, tf.float32), tf.cast(self.kernel, tf.float32))  # here: cast


class NewVariableEachCall(keras.layers.Layer):
    def call(self, inputs):
        w = tf.Variable(tf.ones((inputs.shape[-1],)))  # here: w
        return inputs * w


class DenseWithMetric(_Dense):
    """Correct: a metric's totals are state the layer keeps, not weights."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.activity = keras.metrics.Mean(name="activity")

    def call(self, inputs):
        outputs = tf.matmul(inputs, self.kernel)
        self.activity.update_state(tf.reduce_mean(tf.abs(outputs)))
        return outputs
