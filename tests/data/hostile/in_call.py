"""Layers whose code ends, stalls or crashes the process that checks them."""

import ctypes
import os
import signal
import sys
import time

import keras
import tensorflow as tf


class Scale(keras.layers.Layer):
    """A correct layer, checked beside the hostile ones."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


class SysExitInCall(Scale):
    def call(self, inputs):
        sys.exit(0)


class SysExit3InBuild(Scale):
    def build(self, input_shape):
        sys.exit(3)


class OsExitInCall(Scale):
    def call(self, inputs):
        os._exit(0)


class InterruptInCall(Scale):
    def call(self, inputs):
        raise KeyboardInterrupt


class Segfault(Scale):
    def call(self, inputs):
        ctypes.string_at(0)  # reads address 0: SIGSEGV in native code
        return inputs


@tf.function
def _forever(x):
    # A graph-mode loop: one C++ While op that no Python signal handler can interrupt.
    return tf.while_loop(lambda i, y: tf.constant(True), lambda i, y: (i + 1, y), [tf.constant(0), x])[1]


class WhileForever(Scale):
    def call(self, inputs):
        return _forever(inputs * self.scale)


class HangsInFloat64Copy(Scale):
    """Hangs only in the float64 copy that the finite-difference check makes, inside its fallbacks."""

    def call(self, inputs):
        while self.compute_dtype == "float64":
            time.sleep(0.01)  # a hang that sleeps: the timeout must end it all the same
        return inputs * self.scale


class KillsItsGroup(Scale):
    """Signals its process group, as code that means to stop "everything it started" might."""

    def call(self, inputs):
        os.killpg(0, signal.SIGTERM)
        return inputs * self.scale


class KillsItsParent(Scale):
    """Ends the process that started its worker: on Linux the fork server, elsewhere the command."""

    def call(self, inputs):
        parent = os.getppid()
        os.kill(parent, signal.SIGKILL)
        # A parent with TensorFlow loaded takes some milliseconds to end, and the kernel ends this
        # worker with it (PR_SET_PDEATHSIG): waiting for that keeps a quick check from finishing first.
        deadline = time.monotonic() + 10
        while os.getppid() == parent and time.monotonic() < deadline:
            time.sleep(0.001)
        return inputs * self.scale
