"""The process's runtime: the environment a framework is imported under, and the backend in use.

Keras reads its backend once, when it is imported, so a process checks layers on one backend: the
one `KERAS_BACKEND` names (TensorFlow unless the user set another). A run over several backends
(`--backend all`) checks each in worker processes of its own (isolation/). Nothing here imports a
framework; `backend()` imports the backend's module, and that module imports its framework only
when asked (the command's `--help` and usage errors never load one).
"""

from __future__ import annotations

import os

from .errors import GradcheckError
from .options.backends import BACKENDS, INSTALL  # noqa: F401  (re-exported: the backends name them from here)

# The variables a framework is imported under, unless the user set them: no C++ log lines, the
# TensorFlow backend.
QUIET_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}

# What a worker process (isolation/) runs under besides, unless the user set it. TensorFlow's CPU
# allocator (oneDNN's, a pool) keeps every block it ever held for the life of the process, so a
# worker's memory was the sum of each stage's peak, not the largest: 1.43 GB against 0.93 GB for
# a 25.6M-number embedding, at the same speed (docs/performance.md). A worker lives for one
# target; memory freed goes back to the system. The caller's own process (check() without
# isolate) keeps its allocator.
WORKER_DEFAULTS = {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "1"}


def quiet_environment() -> None:
    """Set QUIET_DEFAULTS where the user did not. A worker forked after the import
    (isolation/forkserver.py) sets them again, so its os.environ is what the import saw."""
    for name, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(name, value)


def backend_name() -> str:
    """The backend this process checks on: KERAS_BACKEND's, else TensorFlow."""
    name = os.environ.get("KERAS_BACKEND") or "tensorflow"
    if name not in BACKENDS:
        raise GradcheckError(
            f"KERAS_BACKEND is {name!r}, a backend gradcheck does not check layers on. Set it to one "
            f"of {', '.join(BACKENDS)} (or unset it for TensorFlow), or use --backend."
        )
    return name


def backend():
    """The backend of this process (backends.Backend), picked by KERAS_BACKEND."""
    name = backend_name()
    if name == "jax":
        from .backends.jax import BACKEND
    elif name == "torch":
        from .backends.torch import BACKEND
    else:
        from .backends.tensorflow import BACKEND
    return BACKEND
