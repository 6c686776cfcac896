"""The exceptions that cross gradcheck's stages: the user's problem, the layer's, and the time limit.

- `GradcheckError`: the check could not run because of something the user can change (exit 2).
- `LayerRaised`: the code being checked raised (the layer, or Keras and TensorFlow under it). It
  is raised only where gradcheck calls that code (`user_code()`), and caught only by the check that
  made the call, which turns it into a finding, a fallback or a skip it reports. Any other exception
  is a bug in gradcheck and surfaces as one (with its traceback under --debug).
- `TimeLimitReached`: the in-process time limit of `check()`; no check may swallow it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def sentence(text: str) -> str:
    """`text` ending in exactly one full stop, or in the question or exclamation mark it ends with:
    for a text quoted into a message (an exception's reason, click's words) before a sentence of
    gradcheck's own, so the message never reads "...?." or "..".
    """
    text = text.rstrip()
    return text if text.endswith((".", "?", "!")) else f"{text}."


class GradcheckError(ValueError):
    """The check could not run because of something the user can change.

    The message is written for the user: what went wrong and where, what was expected, and what to
    do. The CLI prints it as one paragraph and exits 2; any other exception is a bug in gradcheck.
    It subclasses ValueError so that code catching the built-in error for a bad argument (as it would
    from any library) catches gradcheck's too.
    """


class LayerFailed(GradcheckError):
    """The layer's own code raised where the check cannot go on without it (building or calling it):
    a GradcheckError whose `location` is the user's line that raised (None when none is known).
    Across several backends, a layer that fails this way on one is backend-unsupported (compare/)."""

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location


class TimeLimitReached(GradcheckError):
    """check()'s time limit ran out (a SIGALRM raised wherever the layer's code was)."""


class LayerRaised(Exception):
    """The code being checked raised `error` while gradcheck was `doing` something with it.

    `doing` is a phrase ("calling the layer", "get_config()") for messages and findings.
    """

    def __init__(self, error: BaseException, doing: str) -> None:
        super().__init__(f"{type(error).__name__} while {doing}: {error}")
        self.error = error
        self.doing = doing


@contextlib.contextmanager
def user_code(doing: str) -> Iterator[None]:
    """Run the code being checked: whatever it raises becomes LayerRaised(error, doing).

    A GradcheckError it raises (a constructor given bad --init keywords, as loading words it) is the
    layer's failure here too; the time limit, and a LayerRaised from a nested call, pass unchanged,
    and so do SystemExit and KeyboardInterrupt (BaseExceptions the worker reports on its own).
    """
    try:
        yield
    except (TimeLimitReached, LayerRaised):
        raise
    except Exception as error:
        raise LayerRaised(error, doing) from error
