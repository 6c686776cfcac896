"""Layers whose weights Keras 3 does not track, or that call() uses but cannot train.

A line marked `# expect: CODE TENSOR` is where gradcheck must report that finding for the class
it is in; `# expect-anywhere: CODE TENSOR` on the class line means the finding has no fixed line.
`# args:` on the class line gives the command-line options the tests use.
"""

import numpy as np
import tensorflow as tf
import keras


class RawVariable(keras.layers.Layer):  # args: --input-shape 16,5
    """The Keras 2 habit: a tf.Variable assigned in build(). Keras 3 leaves it out of the weights."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.w = tf.Variable(tf.ones((3,)))  # expect: untracked-variable w

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel) * self.w


class RandomTensorWeight(keras.layers.Layer):  # args: --input-shape 16,5
    """A weight drawn with tf.random.normal: a constant tensor, never trained."""

    def build(self, input_shape):
        self.w = tf.random.normal((input_shape[-1], 3))  # expect: constant-tensor w

    def call(self, inputs):
        return tf.matmul(inputs, self.w)


class NumpyWeight(keras.layers.Layer):  # args: --input-shape 16,5
    """A weight made with numpy: embedded in the graph as a constant."""

    def build(self, input_shape):
        rng = np.random.default_rng(0)
        self.w = rng.normal(size=(input_shape[-1], 3)).astype("float32")  # expect: constant-tensor w

    def call(self, inputs):
        return tf.matmul(inputs, self.w)


class VariablesInAList(keras.layers.Layer):  # args: --input-shape 16,5
    """Keras wraps the list but does not track raw tf.Variables inside it (NOTES.md 7)."""

    def build(self, input_shape):
        self.ws = [tf.Variable(tf.ones((input_shape[-1], 5))) for _ in range(2)]  # expect: untracked-variable ws[0]  expect: untracked-variable ws[1]

    def call(self, inputs):
        return tf.matmul(inputs, self.ws[0]) + tf.matmul(inputs, self.ws[1])


class Helper:
    """A plain Python object holding a sublayer: Keras does not look inside it."""

    def __init__(self):
        self.scale = tf.Variable(2.0)  # expect: untracked-variable helper.scale


class HeldByPlainObject(keras.layers.Layer):  # args: --input-shape 16,5
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.helper = Helper()

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel) * self.helper.scale


class UnusedWeight(keras.layers.Layer):  # args: --input-shape 16,5
    """A weight made in build() that call() forgot."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.bias = self.add_weight(shape=(3,), initializer="zeros", name="bias")  # expect: unused-variable bias

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel)


class VariableInCall(keras.layers.Layer):  # args: --input-shape 16,5  expect-anywhere: trace-failed -
    """A tf.Variable made inside call(): a fresh one on every call."""

    def call(self, inputs):
        scale = tf.Variable(tf.ones((inputs.shape[-1],)))  # expect: variable-created-in-call scale
        return inputs * scale


class FrozenStatistic(keras.layers.Layer):  # args: --input-shape 16,5
    """A non-trainable weight read by call(): fine, and reported as info only."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.offset = self.add_weight(shape=(3,), initializer="zeros", trainable=False, name="offset")  # expect: non-trainable-variable offset

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel) - self.offset


GLOBAL_SCALE = tf.Variable(tf.ones((3,)))  # expect: untracked-variable untracked.GLOBAL_SCALE


class UsesModuleGlobal(keras.layers.Layer):  # args: --input-shape 16,5
    """A module-level tf.Variable read by call(): no layer tracks it."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel) * GLOBAL_SCALE


class VariablesInADict(keras.layers.Layer):  # args: --input-shape 16,5
    """In a dict, a keras weight is tracked and a raw tf.Variable is not."""

    def build(self, input_shape):
        self.params = {
            "kernel": tf.Variable(tf.ones((input_shape[-1], 2))),  # expect: untracked-variable params['kernel']
            "bias": self.add_weight(shape=(2,), initializer="zeros", name="bias"),
        }

    def call(self, inputs):
        return tf.matmul(inputs, self.params["kernel"]) + self.params["bias"]


class ScaledBlock(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.proj = keras.layers.Dense(4)

    def build(self, input_shape):
        self.scale = tf.Variable(1.0)  # expect: untracked-variable blocks[0].scale  expect: untracked-variable blocks[1].scale

    def call(self, inputs):
        return self.proj(inputs) * self.scale


class NestedBlocksModel(keras.Model):  # args: --input-shape 16,5
    """A subclassed Model whose blocks hide a raw tf.Variable each; named by attribute path."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [ScaledBlock(), ScaledBlock()]
        self.head = keras.layers.Dense(2)

    def call(self, inputs):
        for block in self.blocks:
            inputs = block(inputs)
        return self.head(inputs)


class ReplacesItsKernel(keras.layers.Layer):  # args: --input-shape 16,5
    """`self.kernel = self.kernel / norm` in call(): the attribute becomes a tensor (NOTES.md 7)."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        self.kernel = self.kernel / tf.norm(self.kernel)  # expect: unused-variable kernel
        return tf.matmul(inputs, self.kernel)


class CausalMask(keras.layers.Layer):  # args: --input-shape 16,5
    """Correct: a fixed 0/1 mask beside a trainable kernel is a mask, not a weight."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], input_shape[-1]), name="kernel")
        self.mask = np.tril(np.ones((input_shape[-1], input_shape[-1]), "float32"))

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel * self.mask)
