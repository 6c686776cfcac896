"""The Keras variables a layer makes while a recorder is active, with the user's line of each.

TensorFlow's backend hears every tf.Variable through a variable creator scope; JAX and PyTorch
have no such hook, and there a Keras variable is itself the identity the checks key rows by (a
JAX array cannot be assigned in place, a torch Parameter is an implementation detail of one
variable). So the recorder wraps Keras's own `Variable.__init__` for its duration: `add_weight`,
a `keras.Variable(...)` in build() or call(), a SeedGenerator's state, each is seen as it is made.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ...layer.source import user_location_of_caller


class KerasVariableLog:
    """Records every Keras variable created while active, with the innermost line of the user's code.

    `backing(variable)` is what the backend keys a variable's row by (the Keras variable itself on
    JAX, the torch Parameter that holds its value on torch): the log is keyed and filled the same way.
    """

    def __init__(self, backing=lambda variable: variable) -> None:
        self.created: dict[int, tuple[Any, str | None]] = {}  # id(backing) -> (backing, location)
        self._backing = backing

    @contextlib.contextmanager
    def recording(self):
        from keras.src.backend.common.variables import Variable

        original = Variable.__init__
        created, backing = self.created, self._backing

        def recorded(variable, *args, **kwargs):
            original(variable, *args, **kwargs)
            held = backing(variable)
            created[id(held)] = (held, user_location_of_caller())

        Variable.__init__ = recorded
        try:
            yield self
        finally:
            Variable.__init__ = original

    def since(self, mark: int) -> list[tuple[Any, str | None]]:
        return list(self.created.values())[mark:]


def seed_keras(seed: int) -> None:
    """keras.utils.set_random_seed without its TensorFlow part: that one imports TensorFlow whenever
    it is installed ("for tf.data pipelines"), three seconds of a JAX or PyTorch worker's start for
    nothing. Keras's global seed, its global SeedGenerator, Python's and numpy's generators (and
    torch's, on torch) are set as it sets them."""
    import random

    import keras
    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


def keep_tensorflow_out() -> None:
    """Keras on JAX or PyTorch imports TensorFlow, when it is installed, the first time it asks
    whether it is (`module_utils.tensorflow.available`: get_config's serialisation and
    set_random_seed ask, for tf.TensorShape and tf.data): three seconds and 700 MB of a worker that
    checks another framework. Keras is told it is not there, unless something imported it already;
    a layer that imports TensorFlow itself still gets it."""
    import sys

    from keras.src.utils import module_utils

    lazy = getattr(module_utils, "tensorflow", None)
    if lazy is not None and "tensorflow" not in sys.modules and hasattr(lazy, "_available"):
        lazy._available = False
