"""Ctrl-C (SIGINT) and SIGTERM: remembered from the command's first moment, then raised as `Stopped`.

A signal may come at any moment: while Python imports click, while pyproject.toml is read, while
the fork server imports TensorFlow, while a target is checked. The console script (entry.py)
installs handlers that only remember a signal before anything else of gradcheck is imported; the
command then runs under `raised_as_stopped()`, where a signal (or one remembered earlier) raises
`Stopped` wherever the main thread is. `Stopped` is not a KeyboardInterrupt, so click does not turn
it into its "Aborted!" (exit status 1): the command catches it, and the supervisor ends the
workers on its way out (supervisor.py). A signal the command was started with ignored (SIGINT in a
background job) stays ignored.

Imports only the standard library: it runs before click is loaded.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)
_arrived: list[int] = []  # signals remembered and not yet raised


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived: the command ends with `status` (130, 143), no report written."""

    def __init__(self, number: int) -> None:
        super().__init__(number)
        self.number = number
        self.status = 128 + number

    def message(self) -> str:
        how = "interrupted" if self.number == signal.SIGINT else "terminated (SIGTERM)"
        return f"gradcheck: {how}; the checks were stopped and no report was written."


def _remember(number: int, frame) -> None:
    _arrived.append(number)


def _usable() -> bool:
    return threading.current_thread() is threading.main_thread()


def remember_from_now() -> None:
    """From now on a signal is only remembered (the console script's first act; after the report)."""
    if not _usable():
        return
    for number in HANDLED:
        if signal.getsignal(number) not in (signal.SIG_IGN, None):
            signal.signal(number, _remember)


@contextlib.contextmanager
def raised_as_stopped() -> Iterator[None]:
    """For the duration, a signal raises Stopped (one remembered earlier at once). Only the first
    raises: a second Ctrl-C while the workers are being ended is remembered, not raised into the
    clean-up. The handlers found are put back at the end."""
    if not _usable():
        yield
        return

    def stop(number: int, frame) -> None:
        for each in previous:
            signal.signal(each, _remember)
        raise Stopped(number)

    # SIG_IGN stays; None is a handler set outside Python, which could not be put back.
    previous = {n: signal.getsignal(n) for n in HANDLED if signal.getsignal(n) not in (signal.SIG_IGN, None)}
    for number in previous:
        signal.signal(number, stop)
    try:
        if _arrived:
            first = _arrived[0]
            _arrived.clear()
            stop(first, None)
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if not any(handler is _remember for handler in previous.values()):
            _arrived.clear()  # nobody outside will ask (a command run inside another program: the tests)
