"""Layers for the report tests (tests/test_render_text.py, tests/test_testing_helper.py).

`LongNames` has tensor names long enough that an 80-column table must stack or drop columns, and
one raw tf.Variable (an error) so that the report has a finding and a FAILED verdict.
"""

import keras
import tensorflow as tf


class _Projection(keras.layers.Layer):
    def build(self, input_shape):
        self.projection_kernel_with_a_long_name = self.add_weight(shape=(input_shape[-1], 3))

    def call(self, x):
        return x @ self.projection_kernel_with_a_long_name


class LongNames(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder_block_with_a_descriptive_name = _Projection()

    def build(self, input_shape):
        self.raw_scale_variable_kept_outside_keras = tf.Variable(tf.ones((3,)))  # untracked-variable

    def call(self, x):
        return self.encoder_block_with_a_descriptive_name(x) * self.raw_scale_variable_kept_outside_keras
