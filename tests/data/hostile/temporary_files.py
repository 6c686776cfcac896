"""Layers whose checks write temporary files, then end in ways that run no cleanup: a function
AutoGraph converts (its generated module is removed only by an atexit hook, which a worker's
os._exit skips), and a save in the reload check (its .keras file in a temporary folder) interrupted
by SIGKILL, of the worker as the out-of-memory killer would send it, or of the fork server the
worker was forked from. Nothing of gradcheck's may be left in the temporary folder."""

import os
import signal
import time

import keras
import tensorflow as tf


class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, inputs):
        return inputs * self.scale


@tf.function
def _doubled_when_positive(x):
    if tf.reduce_sum(x) > 0:  # a Python `if` on a tensor: AutoGraph converts the function
        return x * 2.0
    return x


class ConvertedByAutoGraph(Scale):
    def call(self, inputs):
        return _doubled_when_positive(inputs * self.scale)


class KillsItsWorkerWhileSaved(Scale):
    def save_own_variables(self, store):
        os.kill(os.getpid(), signal.SIGKILL)


class KillsItsServerWhileSaved(Scale):
    def save_own_variables(self, store):
        os.kill(os.getppid(), signal.SIGKILL)  # the fork server: the worker dies with it
        time.sleep(60)
