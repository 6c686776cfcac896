"""The traps on the JAX backend: a raw jax array Keras does not track, a wrong jax.custom_vjp.

`# args:` on a class line gives the command-line options the tests use; `# expect: CODE TENSOR`
marks the line a finding must point at.
"""

import jax
import jax.numpy as jnp
import keras
from keras import ops


class RawJaxArray(keras.layers.Layer):  # args: --input-shape 16,5 --backend jax
    """The JAX habit: parameters as arrays held by the layer. Keras 3 does not track them."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
        self.w = jnp.ones((3,))  # expect: untracked-variable w

    def call(self, inputs):
        return ops.matmul(inputs, self.kernel) * self.w


@jax.custom_vjp
def sin_doubled(z):
    return jnp.sin(z)


def _forward(z):
    return jnp.sin(z), z


def _backward(z, upstream):
    return (upstream * 2.0 * jnp.cos(z),)  # twice the true gradient


sin_doubled.defvjp(_forward, _backward)


class WrongCustomVjp(keras.layers.Layer):  # args: --input-shape 16,5 --backend jax
    """sin features through a jax.custom_vjp whose backward is twice too large."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs):
        return sin_doubled(ops.matmul(inputs, self.kernel))  # expect: gradient-mismatch kernel  expect: gradient-mismatch input
