"""Layers whose code starts processes and leaves them running: each appends the pid of the process
it left to the file named by $LEFTOVER_PIDS, so a test can look for it after the run.

"plain" is a `subprocess.Popen` never waited for; "daemon" is a daemon as the classic recipe makes
one (fork, setsid, fork again, the middle process exits), so its parent is no longer the worker.
With $LEFTOVER_AT_IMPORT set to one of them, the module starts one as it is imported.
"""

import os
import subprocess
import sys
import time

import keras

# Run by a fresh Python, not forked from the worker (a fork of a process with TensorFlow's threads
# is not safe): its first process waits until the grandchild has written its pid, then exits.
_DAEMON = """
import os, sys, time
path = sys.argv[1]
lines = len(open(path).readlines())
if os.fork():
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(open(path).readlines()) == lines:
        time.sleep(0.005)
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
with open(path, "a") as stream:
    stream.write(f"{os.getpid()} daemon\\n")
os.execvp("sleep", ["sleep", "300"])
"""


def start(kind: str) -> None:
    path = os.environ["LEFTOVER_PIDS"]
    if kind == "plain":
        process = subprocess.Popen(["sleep", "300"])
        with open(path, "a") as stream:
            stream.write(f"{process.pid} plain\n")
    else:
        open(path, "a").close()
        subprocess.run([sys.executable, "-c", _DAEMON, path], check=True)


if os.environ.get("LEFTOVER_AT_IMPORT"):
    start(os.environ["LEFTOVER_AT_IMPORT"])


class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


class PlainInBuild(Scale):
    def build(self, input_shape):
        start("plain")
        super().build(input_shape)


class DaemonInBuild(Scale):
    def build(self, input_shape):
        start("daemon")
        super().build(input_shape)


class PlainInCall(Scale):
    def call(self, inputs):
        start("plain")  # every call: eagerly, and once per trace
        return inputs * self.scale


class DaemonInCall(Scale):
    def call(self, inputs):
        start("daemon")
        return inputs * self.scale


class DaemonThenHangs(Scale):
    """Leaves a daemon, then never returns: the worker is killed at --timeout, and its fork server
    must end the daemon the worker could not."""

    def call(self, inputs):
        start("daemon")
        while True:
            time.sleep(0.01)


class PlainThenExits(Scale):
    def call(self, inputs):
        start("plain")
        os._exit(3)
