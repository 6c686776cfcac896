"""A layer whose module picks its Keras backend: it sets KERAS_BACKEND, as a script would, before
importing Keras. gradcheck has imported Keras by then, so it takes no effect."""

import os

os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402


class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, inputs):
        return inputs * self.scale
