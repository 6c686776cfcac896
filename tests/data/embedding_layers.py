"""Layers for tests/numeric/test_rows.py: embedding tables compared on the rows the batch looks up,
a decoder block with a planted error in its feed-forward bias, and a layer whose pre-activations
sit by a ReLU's kink."""

import os

import keras
import tensorflow as tf

OFF_BY = 1e-3


@tf.custom_gradient
def _first_row_off(vectors, ids):
    """The looked-up vectors unchanged; the gradient of those of the batch's first id 1e-3 too large."""

    def gradient(upstream):
        hit = tf.cast(tf.equal(ids, tf.reshape(ids, [-1])[0]), upstream.dtype)[..., None]
        return upstream * (1.0 + OFF_BY * hit), None

    return tf.identity(vectors), gradient


class PlantedRow(keras.layers.Embedding):
    """An Embedding whose gradient is 1e-3 too large on the row of the batch's first id."""

    def call(self, inputs):
        return _first_row_off(tf.gather(self.embeddings, inputs), inputs)  # here: planted row


class CountingInitializer(keras.initializers.RandomUniform):
    """RandomUniform that appends the shape of every draw to the file $GRADCHECK_TEST_DRAWS."""

    def __call__(self, shape, dtype=None):
        with open(os.environ["GRADCHECK_TEST_DRAWS"], "a") as record:
            record.write(f"{tuple(shape)}\n")
        return super().__call__(shape, dtype=dtype)


class CountedTable(keras.layers.Embedding):
    """An Embedding of 2^20 numbers (32768 x 32) whose initializer counts its draws."""

    def __init__(self, **kwargs):
        super().__init__(input_dim=32768, output_dim=32, embeddings_initializer=CountingInitializer(), **kwargs)

    def get_config(self):
        config = super().get_config()
        for key in ("input_dim", "output_dim", "embeddings_initializer"):
            config.pop(key)
        return config


@tf.custom_gradient
def _bias_off_by(bias):
    return tf.identity(bias), lambda upstream: upstream * (1.0 + OFF_BY)


class _PlantedBiasDense(keras.layers.Dense):
    def call(self, inputs, training=None):
        outputs = tf.matmul(inputs, tf.convert_to_tensor(self.kernel))
        return self.activation(outputs + _bias_off_by(tf.convert_to_tensor(self.bias)))  # here: planted bias


def planted_decoder(**kwargs):
    """keras_hub's TransformerDecoder (ReLU feed-forward, post-norm) whose feed-forward's first
    bias gets a gradient 1e-3 too large: the check of a decoder at GPT-2 width, scaled down."""
    import keras_hub

    class PlantedDecoder(keras_hub.layers.TransformerDecoder):
        def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
            super().build(decoder_sequence_shape, encoder_sequence_shape)
            self._feedforward_intermediate_dense.__class__ = _PlantedBiasDense

    return PlantedDecoder(intermediate_dim=64, num_heads=2, **kwargs)


class ByTheKink(keras.layers.Layer):
    """relu(x·W + b) whose first unit has no weight from the input and a bias of 2e-6: every
    sample's first pre-activation sits 2e-6 from the kink, which the first finite-difference step
    (1e-5) straddles and a step 10x smaller does not. The other units are well away from it."""

    def build(self, input_shape):
        width = input_shape[-1]
        pattern = [[0.0 if j == 0 else 0.5 * (-1) ** (i + j) for j in range(4)] for i in range(width)]
        self.kernel = self.add_weight(shape=(width, 4), initializer=keras.initializers.Constant(pattern), name="kernel")
        bias = keras.initializers.Constant([2e-6, 0.0, 0.0, 0.0])
        self.bias = self.add_weight(shape=(4,), initializer=bias, name="bias")

    def call(self, inputs):
        return keras.activations.relu(tf.matmul(inputs, self.kernel) + self.bias)
