"""Layers whose width shows something of the worker they run in: its os.environ, its garbage collector."""

import os

import keras


class WidthFromEnvironment(keras.layers.Layer):
    def build(self, input_shape):
        width = int(os.environ.get("GRADCHECK_TEST_WIDTH", "1"))
        self.kernel = self.add_weight(shape=(input_shape[-1], width))

    def call(self, inputs):
        return inputs @ self.kernel


class WidthFromFrozenObjects(keras.layers.Layer):
    """Width 1 when its worker froze TensorFlow's objects out of the garbage collector (worker.prepare),
    2 when each target's collection would walk them all again."""

    def build(self, input_shape):
        import gc

        width = 1 if gc.get_freeze_count() > 100_000 else 2
        self.kernel = self.add_weight(shape=(input_shape[-1], width))

    def call(self, inputs):
        return inputs @ self.kernel
