import keras

WIDTHS = [1 2]


class Broken(keras.layers.Layer):
    def call(self, inputs):
        return inputs
