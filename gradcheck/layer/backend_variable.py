"""A target's module that sets KERAS_BACKEND while it loads: the line that set it, and the finding.

Keras reads KERAS_BACKEND once, when it is imported. gradcheck imports Keras before the target's
module runs (a worker for the backend of its job, check() on the backend of the caller's Keras), so
`os.environ["KERAS_BACKEND"] = "jax"` at the top of a layer's module takes no effect there, as it
would take none in a training script that imported Keras first. The check goes on, on the
backend Keras runs on (runtime.backend_name); the report says, as an info finding at the line
that set it, that the module asked for another one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .. import codes
from ..options.backends import BACKENDS
from ..report import Finding, finding
from ..runtime import backend_name
from .source import user_location_of_caller

VARIABLE = "KERAS_BACKEND"


@contextlib.contextmanager
def watching_backend_variable() -> Iterator[list[tuple[str, str | None]]]:
    """Record (value, the user's line) of every assignment to os.environ["KERAS_BACKEND"] in the body.

    os.environ is one object that every module shares (`from os import environ` included), so it
    is not replaced: its class is, for the body only, by a subclass that notes the assignment, then
    makes it as os.environ would (a value that is not a string raises the same TypeError).
    """
    settings: list[tuple[str, str | None]] = []
    environ = os.environ
    plain = type(environ)

    class Watched(plain):  # type: ignore[valid-type, misc]  # os._Environ, whatever the platform's
        def __setitem__(self, key, value) -> None:
            super().__setitem__(key, value)
            if key == VARIABLE:
                settings.append((value, user_location_of_caller()))

    watched = False
    with contextlib.suppress(TypeError):  # an os.environ some other code replaced: no lines, then
        environ.__class__ = Watched
        watched = True
    try:
        yield settings
    finally:
        if watched:
            environ.__class__ = plain


def backend_set_after_import(before: str | None, settings: list[tuple[str, str | None]]) -> Finding | None:
    """The backend-set-after-import finding when loading changed KERAS_BACKEND (`before` its value
    before) to another backend than this process's, else None."""
    after = os.environ.get(VARIABLE)
    running = backend_name()
    if after is None or after == before or after == running:
        return None
    where = next((line for value, line in reversed(settings) if value == after), None)
    shown = repr(after[:40] + "..." if len(after) > 40 else after)
    if after in BACKENDS:
        advice = f"Run gradcheck with --backend {after} to check the layer on {after}"
    else:
        advice = f"gradcheck checks layers on {', '.join(BACKENDS)}"
    return finding(
        codes.BACKEND_SET_AFTER_IMPORT,
        None,
        f"The layer's module sets KERAS_BACKEND to {shown} after Keras was imported on {running}, so it "
        f"takes no effect (Keras reads it once, at import): this report is {running}'s. {advice}; a "
        "backend is chosen before anything imports Keras (the environment, or the training script's first lines).",
        where,
    )
