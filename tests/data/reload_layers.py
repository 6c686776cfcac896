"""Layers for the save/reload round trip (tests/test_reload.py)."""

import keras
import tensorflow as tf
from keras import ops


class RoundTrips(keras.layers.Layer):
    """Correct: every constructor argument is in get_config(), every weight from add_weight."""

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, inputs):
        return self.activation(ops.matmul(inputs, self.kernel))

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation)}


class ForgetsRequiredArgument(keras.layers.Layer):
    """get_config() leaves out `units`, which __init__ requires: load_model raises TypeError."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, inputs):
        return ops.matmul(inputs, self.kernel)

    def get_config(self):  # forgets units
        return super().get_config()


class ForgetsDefaultArgument(keras.layers.Layer):
    """get_config() leaves out `activation`: the reloaded layer falls back to tanh."""

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, inputs):
        return self.activation(ops.matmul(inputs, self.kernel))

    def get_config(self):  # forgets activation
        return {**super().get_config(), "units": self.units}


class RawVariableScale(keras.layers.Layer):
    """A raw tf.Variable (NOTES.md 1): not tracked, so not saved."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.scale = tf.Variable(tf.ones((3,)))  # raw variable

    def call(self, inputs):
        return ops.matmul(inputs, self.kernel) * self.scale


def make_round_trips():
    """A factory: its own arguments are not the layer's."""
    return RoundTrips(units=3, activation="relu")


INSTANCE = ForgetsDefaultArgument(units=3, activation="relu")


def make_functional_model():
    """A factory returning a functional model around a custom layer (not registered with Keras)."""
    inputs = keras.Input((5,))
    outputs = RoundTrips(units=3, activation="relu")(keras.layers.Dense(4)(inputs))
    return keras.Model(inputs, outputs)


class SublayerBuiltOnlyByCall(keras.layers.Layer):  # no build(): Keras builds its Dense at the first call
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.project = keras.layers.Dense(3)

    def call(self, inputs):
        return self.project(inputs)


class CellBuiltOnlyByCall(keras.layers.Layer):  # no build(): its RNN builds the cell at the first call
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rnn = keras.layers.RNN(keras.layers.SimpleRNNCell(3))

    def call(self, inputs):
        return self.rnn(inputs)


class CellBuiltInBuild(CellBuiltOnlyByCall):  # the advice taken
    def build(self, input_shape):
        self.rnn.build(input_shape)
