"""A layer whose RNN cell Keras builds twice: the cell's build() makes a raw tf.Variable from a
tensor, which raises in Keras's first, symbolic build of the wrapper (it has no build() of its own)."""

import keras
import tensorflow as tf


class LeakyCell(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")
        self.u = self.add_weight(shape=(self.units, self.units), name="u")
        self.decay = tf.Variable(tf.fill((self.units,), 0.9))  # raw variable from a tensor

    def call(self, inputs, states):
        h = tf.tanh(tf.matmul(inputs, self.w) + self.decay * tf.matmul(states[0], self.u))
        return h, [h]


class LeakyRecurrent(keras.layers.Layer):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.rnn = keras.layers.RNN(LeakyCell(units))

    def call(self, inputs):
        return self.rnn(inputs)

