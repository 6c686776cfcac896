"""The JAX backend's runtime: JAX and Keras imported once, versions, and x64 where float64 is asked.

JAX starts with 64-bit types off (jax_enable_x64 False): a "float64" array made then silently holds
float32. Switching x64 on for the whole process would change the float32 checks too (a float32
tensor times a float64 numpy constant becomes float64, argmax returns int64), so it is on only
where float64 is asked for: the float64 twin (its scope, every pass of it, and every value put into
it). `jax.enable_x64` is JAX 0.10's context manager for that.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np

from ...errors import GradcheckError
from ...runtime import INSTALL

_modules = None


def jax_modules(hide_stderr: bool = True):
    """Return (jax, keras), importing them the first time (`hide_stderr` as TensorFlow's; JAX's
    import writes nothing)."""
    global _modules
    if _modules is None:
        from ...runtime import quiet_environment

        quiet_environment()
        try:
            import jax
            import keras
        except ImportError as error:
            raise GradcheckError(
                f"JAX could not be imported ({error}). Checking on the JAX backend needs jax and Keras 3 "
                f"in the same environment: {INSTALL['jax']}."
            ) from None
        if keras.backend.backend() != "jax":
            raise GradcheckError(
                f"Keras was imported on the {keras.backend.backend()!r} backend before gradcheck could set "
                "it to JAX (Keras reads KERAS_BACKEND once, at import). Run the JAX check in a process of "
                "its own: the gradcheck command, or check(..., isolate=True)."
            )
        from ..shared.variables import keep_tensorflow_out

        keep_tensorflow_out()
        _cache_compiled_programs(jax)
        _modules = (jax, keras)
    return _modules


def _cache_compiled_programs(jax) -> None:
    """Keep XLA's compiled programs on disk between workers and runs.

    Keras on JAX runs each op of an eager call as a program XLA compiles on first use, per shape and
    dtype, and each target is checked in a fresh worker: RandomRotation's check spent 9 of its 12 s
    compiling 112 programs, and 2 s in all once they were on disk (measured on this project's
    machine). They go where the user's caches go (XDG_CACHE_HOME, else ~/.cache) under
    gradcheck/jax, unless JAX_COMPILATION_CACHE_DIR names a folder of the user's own; a folder that
    cannot be made leaves JAX compiling as it does by default."""
    import os

    if not (os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir):
        home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(home, "gradcheck", "jax")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            return
        jax.config.update("jax_compilation_cache_dir", folder)
    # Every program, however quick to compile: each of Keras's small ones costs ~50 ms, and JAX
    # keeps only those that took a second or more unless told otherwise.
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in os.environ:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def versions() -> dict:
    jax, keras = jax_modules()
    return {"jax": jax.__version__, "keras": keras.__version__, "python": ".".join(map(str, sys.version_info[:3]))}


def wide(dtype) -> bool:
    """Whether values of `dtype` need x64 to keep their width (float64, int64, complex128)."""
    try:
        kind, size = np.dtype(dtype).kind, np.dtype(dtype).itemsize
    except TypeError:  # a name numpy does not know (bfloat16 before ml_dtypes registers it): narrow
        return False
    return kind in "fiu" and size >= 8 or kind == "c" and size >= 16


def x64(on: bool = True):
    """x64 switched on for the duration (or a context that changes nothing)."""
    jax, _ = jax_modules()
    return jax.enable_x64(True) if on else contextlib.nullcontext()
