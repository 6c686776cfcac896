"""--backend: which Keras backends a target is checked on, validated, defaulted and spread into jobs.

Keras reads its backend once, at import, so each backend is checked in workers of its own: a
target asked for on several backends becomes one job per backend (isolation/ gives each its
environment), and the command compares their results afterwards (compare/). Nothing here imports a
framework: whether one is installed is asked of the import system without importing it, so a
missing one is refused at once with the command that installs it (exit 2).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os

from ..errors import GradcheckError
from .values import quote

# The backends gradcheck checks layers on, in the order reports list them.
BACKENDS = ("tensorflow", "jax", "torch")
# What `pip install` adds a backend with (the plain install is TensorFlow's).
INSTALL = {
    "tensorflow": "pip install 'tensorflow>=2.16'",
    "jax": "pip install 'gradcheck[jax]'",
    "torch": "pip install 'gradcheck[torch]'",
}

CHOICES = (*BACKENDS, "all")
_FRAMEWORK = {"tensorflow": ("tensorflow", "TensorFlow"), "jax": ("jax", "JAX"), "torch": ("torch", "PyTorch")}


def parse_backends(value) -> tuple[str, ...]:
    """One name or a list of them (--backend, pyproject's `backends`, check(backend=...)): each a
    backend or `all`, in the order given (the first is the reference of a comparison), once each."""
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise GradcheckError(
            f"--backend {quote(value)} is not a backend name or a list of them. Use {', '.join(CHOICES)}."
        )
    chosen: list[str] = []
    for name in names:
        if name not in CHOICES:
            raise GradcheckError(
                f"--backend {quote(name)} is not a Keras backend gradcheck checks on. Use one of "
                f"{', '.join(CHOICES)} (repeat --backend for several; all is every one of them)."
            )
        for backend in BACKENDS if name == "all" else (name,):
            if backend not in chosen:
                chosen.append(backend)
    return tuple(chosen)


def default_backends() -> tuple[str, ...]:
    """KERAS_BACKEND's backend when it is set, else TensorFlow (as Keras itself defaults)."""
    name = os.environ.get("KERAS_BACKEND")
    if not name:
        return ("tensorflow",)
    if name not in BACKENDS:
        raise GradcheckError(
            f"KERAS_BACKEND is {quote(name)}, a backend gradcheck does not check layers on. Set it to one of "
            f"{', '.join(BACKENDS)} (or unset it for TensorFlow), or choose with --backend."
        )
    return (name,)


def missing(backend: str) -> str | None:
    """Why `backend` cannot be used in this environment (its framework or Keras is not installed)."""
    module, shown = _FRAMEWORK[backend]
    absent = [name for name in (module, "keras") if not _installed(name)]
    if not absent:
        return None
    return (
        f"--backend {backend}: {' and '.join(shown if n == module else 'Keras' for n in absent)} "
        f"{'is' if len(absent) == 1 else 'are'} not installed in this environment ({os.path.dirname(os.__file__)}). "
        f"Install {'it' if len(absent) == 1 else 'them'} with: {INSTALL[backend]}"
    )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or a module hidden from the import system
        return False


def check_installed(jobs: list) -> None:
    """Refuse, before any worker starts, a job on a backend whose framework is not installed.

    Raises:
        GradcheckError: the first such backend, with the command that installs it.
    """
    for _, options in jobs:
        for backend in () if isinstance(options, GradcheckError) else options.backends:
            why = missing(backend)
            if why is not None:
                raise GradcheckError(why)


def per_backend(jobs: list, folder: str | None = None) -> list:
    """One (target, Options) job per backend each job asks for (its `backends`, else the default),
    in the order of the jobs, each Options holding its one backend. With `folder`, a job on two or
    more backends has them compared: each of its jobs writes its side into a folder of its own
    under `folder` (compare/). Whether each backend is installed is check_installed's to say.
    """
    spread = []
    for number, (target, options) in enumerate(jobs):
        if isinstance(options, GradcheckError):
            spread.append((target, options))
            continue
        backends = options.backends or default_backends()
        compared = os.path.join(folder, str(number)) if folder and len(backends) > 1 else None
        for backend in backends:
            spread.append((target, dataclasses.replace(options, backends=(backend,), compare_folder=compared)))
    return spread


def on_backend(result, options):
    """A job's result with its backend on everything that does not say it yet: a TargetFailure (the
    worker could not say), and findings made outside the check (the worker's leftover processes,
    the gate's unused-ignore and baseline-fixed)."""
    if isinstance(options, GradcheckError) or not options.backends:
        return result
    backend = options.backends[0]
    if not hasattr(result, "findings"):
        return dataclasses.replace(result, backend=backend) if getattr(result, "backend", None) is None else result
    findings = tuple(f if f.backend else dataclasses.replace(f, backend=backend) for f in result.findings)
    return dataclasses.replace(result, findings=findings)
