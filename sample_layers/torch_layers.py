"""The traps on the PyTorch backend: a raw torch.nn.Parameter Keras does not track, a wrong
torch.autograd.Function.

`# args:` on a class line gives the command-line options the tests use; `# expect: CODE TENSOR`
marks the line a finding must point at.
"""

import keras
import torch
from keras import ops


class RawParameter(keras.layers.Layer):  # args: --input-shape 16,5 --backend torch
    """The PyTorch habit: a torch.nn.Parameter as an attribute. torch files it under the module's
    parameters; Keras 3 does not track it, so fit() never trains it."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.w = torch.nn.Parameter(torch.ones(3))  # expect: untracked-variable w

    def call(self, inputs):
        return ops.matmul(inputs, self.kernel) * self.w


class SinDoubled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return torch.sin(z)

    @staticmethod
    def backward(ctx, upstream):  # expect: gradient-mismatch kernel  expect: gradient-mismatch input
        (z,) = ctx.saved_tensors
        return upstream * 2.0 * torch.cos(z)  # twice the true gradient


class WrongAutogradFunction(keras.layers.Layer):  # args: --input-shape 16,5 --backend torch
    """sin features through a torch.autograd.Function whose backward is twice too large."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        return SinDoubled.apply(ops.matmul(inputs, self.kernel))
