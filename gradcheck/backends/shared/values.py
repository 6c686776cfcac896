"""Value moves every backend can make through numpy: what TensorFlow does without a numpy copy
(backends/tensorflow/__init__.py), JAX and torch do here, on weights small enough that the copy
does not matter (their forwards compare every tensor whole: no embedding rows)."""

from __future__ import annotations

import contextlib

import numpy as np


class NumpyValues:
    """Backend methods made of `to_numpy` and `assign` (the class mixing it in gives those two)."""

    def to_numpy(self, value):  # pragma: no cover - given by the backend
        raise NotImplementedError

    def assign(self, variable, value) -> None:  # pragma: no cover - given by the backend
        raise NotImplementedError

    def unfilled_weights(self):
        """Initialisers run as written: only TensorFlow's copies skip them (a saving of memory)."""
        return contextlib.nullcontext()

    def read_rows(self, variable, rows) -> np.ndarray:
        return np.array(np.asarray(self.to_numpy(variable))[np.asarray(rows)])

    def assign_rows(self, variable, rows, values) -> None:
        whole = np.array(self.to_numpy(variable))
        whole[np.asarray(rows)] = values
        self.assign(variable, whole)

    def sparse_gradient(self, values, rows, variable) -> None:
        """No sparse gradient: the step is dense (Keras's optimizers take IndexedSlices on TensorFlow only)."""
        return None

    def snapshot(self, variable) -> np.ndarray:
        return np.array(self.to_numpy(variable))  # a copy: a torch tensor's numpy view would follow writes

    def assign_from(self, variable, source) -> None:
        self.assign(variable, np.asarray(self.to_numpy(source)))
