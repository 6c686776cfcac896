"""Random draws held fixed across backends: numpy draws them, in the order Keras asks for them.

Each framework has its own random generator, so the same seed gives RandomRotation another angle
and Dropout another mask on each. While a comparison pass runs, the random functions of Keras's
backend module (`keras.src.backend.<name>.random`, which `keras.random` looks up at each call) are
replaced by numpy draws seeded by --seed and the call's position: the same layer code asks for the
same draws in the same order on every backend, and gets the same numbers (rounded through float32,
so a float32 draw, as TensorFlow's image layers make, is the same number everywhere). A random
function with no such stand-in (categorical, shuffle, gamma...) is still called, and the pass says
so: that training mode is then left out of the comparison.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools

import numpy as np

_REPLACED = ("uniform", "normal", "truncated_normal", "dropout")


class Draws:
    """The replacements of one pass, and the random functions called that have none."""

    def __init__(self, seed: int, keras) -> None:
        self.keras, self.counter, self.seed = keras, itertools.count(), seed
        self.unreplayed: list[str] = []

    def _generator(self):
        return np.random.default_rng([self.seed, 7919, next(self.counter)])

    def _tensor(self, values, dtype):
        values = np.asarray(values, "float32").astype("float64")  # the same number in any float dtype
        return self.keras.ops.convert_to_tensor(values, dtype=dtype or self.keras.config.floatx())

    def uniform(self, shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return self._tensor(self._generator().uniform(float(minval), float(maxval), size=tuple(shape)), dtype)

    def normal(self, shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return self._tensor(self._generator().normal(float(mean), float(stddev), size=tuple(shape)), dtype)

    def truncated_normal(self, shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        generator, size = self._generator(), int(np.prod(shape))
        drawn = generator.standard_normal(size)
        while np.any(np.abs(drawn) > 2):  # Keras's truncation: within two standard deviations
            outside = np.abs(drawn) > 2
            drawn[outside] = generator.standard_normal(int(outside.sum()))
        return self._tensor(float(mean) + float(stddev) * drawn.reshape(tuple(shape)), dtype)

    def dropout(self, inputs, rate, noise_shape=None, seed=None):
        ops = self.keras.ops
        shape = tuple(inputs.shape) if noise_shape is None else tuple(d or s for d, s in zip(noise_shape, inputs.shape))
        keep = (self._generator().uniform(size=shape) >= float(rate)).astype("float64") / (1.0 - float(rate))
        return inputs * ops.cast(ops.convert_to_tensor(keep), inputs.dtype)


@contextlib.contextmanager
def fixed_draws(seed: int):
    """Keras's random functions replaced by numpy draws for the duration; yields the Draws."""
    import keras

    module = importlib.import_module(f"keras.src.backend.{keras.backend.backend()}.random")
    draws = Draws(seed, keras)
    saved = {}
    for name, function in list(vars(module).items()):
        if name.startswith("_") or not callable(function) or getattr(function, "__module__", "") != module.__name__:
            continue
        saved[name] = function
        setattr(module, name, getattr(draws, name) if name in _REPLACED else _noted(draws, name, function))
    try:
        yield draws
    finally:
        for name, function in saved.items():
            setattr(module, name, function)


def _noted(draws: Draws, name: str, function):
    def called(*args, **kwargs):
        if not name.endswith("seed_generator") and "seed" not in name:
            draws.unreplayed.append(name)
        return function(*args, **kwargs)

    return called
