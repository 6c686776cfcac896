"""Layers written with keras.ops only, meant to run on every Keras backend, checked on all three.

`# args:` on a class line gives the command-line options the tests use (here with `--backend all`:
the layer is checked on TensorFlow, JAX and PyTorch, and the three are compared); `# expect: CODE
TENSOR` marks the line a finding must point at on every backend, `# expect[BACKEND]: CODE TENSOR`
on that backend only.
"""

import keras
import numpy as np
from keras import ops


class MLPBlock(keras.layers.Layer):  # args: --input-shape 4,8 --backend all
    """A residual MLP with exact gelu and a normalisation: correct, and the same on every backend."""

    def build(self, input_shape):
        width = input_shape[-1]
        self.w1 = self.add_weight(shape=(width, 16), initializer="glorot_uniform", name="w1")
        self.b1 = self.add_weight(shape=(16,), initializer="zeros", name="b1")
        self.w2 = self.add_weight(shape=(16, width), initializer="glorot_uniform", name="w2")
        self.gain = self.add_weight(shape=(width,), initializer="ones", name="gain")

    def call(self, inputs):
        hidden = ops.gelu(ops.matmul(inputs, self.w1) + self.b1, approximate=False)
        y = inputs + ops.matmul(hidden, self.w2)
        mean = ops.mean(y, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(y - mean), axis=-1, keepdims=True)
        return (y - mean) * ops.rsqrt(variance + 1e-5) * self.gain


class ArgmaxGate(keras.layers.Layer):  # args: --input-shape 16,5 --backend all
    """Gates a projection by a one-hot argmax of another: the gate's kernel never learns, on any backend."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.gate = self.add_weight(shape=(input_shape[-1], 3), name="gate")

    def call(self, inputs):
        choice = ops.one_hot(ops.argmax(ops.matmul(inputs, self.gate), axis=-1), 3)  # expect: none-gradient gate
        return ops.matmul(inputs, self.kernel) * ops.cast(choice, inputs.dtype)


class FixedShear(keras.layers.Layer):  # args: --input-shape 2,8,8,3 --backend all
    """A fixed affine warp of the image, as the random image layers make: linear in the image, and
    its gradient is wrong on TensorFlow (ImageProjectiveTransformV3's registered gradient)."""

    def call(self, inputs):
        shear = np.array([[1.0, 0.2, -0.8, 0.1, 1.0, 0.3, 0.0, 0.0]] * 2, dtype="float32")
        transform = ops.cast(ops.convert_to_tensor(shear), inputs.dtype)
        return ops.image.affine_transform(inputs, transform, interpolation="bilinear")  # expect[tensorflow]: backend-mismatch input  expect-anywhere[tensorflow]: gradient-mismatch input
