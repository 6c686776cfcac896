"""Where things happen in the user's code: picking the user's frame out of a stack or an op's traceback.

A frame is the user's when its file is not part of Python itself, TensorFlow, Keras, NumPy or
gradcheck. Locations are printed relative to the working folder when the file lies inside it, so
CI annotations (`::error file=...`) point at repository paths.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig

_LIBRARY_PACKAGES = (
    "tensorflow",
    "keras",
    "numpy",
    "gradcheck",
    "tf_keras",
    "absl",
    "google",
    "rich",
    "click",
    "_pytest",
    "pluggy",
)


def _library_roots() -> tuple[str, ...]:
    # Asked once per frame of every stack gradcheck reads (each variable a layer creates, each op
    # of a trace): computed once per set of loaded library packages, not per frame.
    return _roots_of(tuple(name for name in _LIBRARY_PACKAGES if name in sys.modules))


@functools.lru_cache(maxsize=None)
def _roots_of(loaded: tuple[str, ...]) -> tuple[str, ...]:
    roots = {os.path.dirname(__file__)}
    # "scripts": the console-script shim (venv/bin/gradcheck) is not the user's code either.
    for key in ("stdlib", "platstdlib", "scripts"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    for name in _LIBRARY_PACKAGES:
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None) if module else None
        if location:
            roots.add(os.path.dirname(location))
    return tuple(os.path.realpath(r) + os.sep for r in roots)


def is_user_file(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False
    real = _realpath(filename) if os.path.isabs(filename) else os.path.realpath(filename)
    if any(real.startswith(root) for root in _library_roots()):
        return False
    return not any(f"{os.sep}{name}{os.sep}" in real and "site-packages" in real for name in _LIBRARY_PACKAGES)


@functools.lru_cache(maxsize=4096)
def _realpath(filename: str) -> str:
    """os.path.realpath of an absolute path, remembered: the same few files recur in every stack."""
    return os.path.realpath(filename)


def format_location(filename: str, lineno: int) -> str:
    real = os.path.realpath(filename)
    cwd = os.path.realpath(os.getcwd()) + os.sep
    shown = real[len(cwd) :] if real.startswith(cwd) else real
    return f"{shown}:{lineno}"


def user_location(frames) -> str | None:
    """The innermost user frame of `frames` (objects with .filename and .lineno), as file:line."""
    for frame in reversed(list(frames)):
        if is_user_file(frame.filename):
            return format_location(frame.filename, frame.lineno)
    return None
