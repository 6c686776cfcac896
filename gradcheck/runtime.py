"""The process's runtime: the environment a framework is imported under, and the backend in use.

Keras reads its backend once, when it is imported, so a process checks layers on one backend: the
one `KERAS_BACKEND` names (TensorFlow unless the user set another) when Keras is imported, and
that one for good: a layer's module that sets the variable afterwards changes nothing in Keras,
so it changes nothing here either (a worker pins its backend before any user code runs, and
Keras, once imported, says which it runs on). A run over several backends
(`--backend all`) checks each in worker processes of its own (isolation/). Nothing here imports a
framework; `backend()` imports the backend's module, and that module imports its framework only
when asked (the command's `--help` and usage errors never load one).
"""

from __future__ import annotations

import os
import sys

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


_pinned: list[str] = []  # the backend pin_backend() fixed for this process (and its forks)


def pin_backend() -> str:
    """Fix this process's backend to the one KERAS_BACKEND names now (else TensorFlow) and return it.

    A worker calls it before it imports Keras and before any of the user's code runs: what a
    module does to os.environ afterwards cannot make it check on another backend than the one
    Keras was imported with, and the job was started for (isolation/launch.py sets the variable).
    """
    _pinned[:] = [_environment_backend()]
    return _pinned[0]


def imported_backend() -> str | None:
    """The backend this process is fixed to (pinned, or the one Keras was imported with), else None."""
    if _pinned:
        return _pinned[0]
    keras = sys.modules.get("keras")
    try:
        name = keras.config.backend() if keras is not None else None
    except Exception:  # Keras half imported (an import that failed, or one under way)
        return None
    return name if isinstance(name, str) else None


def backend_name() -> str:
    """The backend this process checks on: the one it is fixed to (imported_backend), else
    KERAS_BACKEND's, else TensorFlow."""
    name = imported_backend()
    if name is None:
        return _environment_backend()
    if name not in BACKENDS:
        raise GradcheckError(
            f"Keras was imported on the {name!r} backend in this process, a backend gradcheck does not "
            f"check layers on. Check the layer with --backend (one of {', '.join(BACKENDS)}), or "
            "check(..., isolate=True), which runs it in a process of its own."
        )
    return name


def _environment_backend() -> str:
    name = os.environ.get("KERAS_BACKEND") or "tensorflow"
    if name not in BACKENDS:
        raise GradcheckError(
            f"KERAS_BACKEND is {name!r}, a backend gradcheck does not check layers on. Set it to one "
            f"of {', '.join(BACKENDS)} (or unset it for TensorFlow), or use --backend."
        )
    return name


def backend():
    """The backend of this process (backends.Backend): backend_name()'s."""
    name = backend_name()
    if name == "jax":
        from .backends.jax import BACKEND
    elif name == "torch":
        from .backends.torch import BACKEND
    else:
        from .backends.tensorflow import BACKEND
    return BACKEND
