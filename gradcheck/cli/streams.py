"""The command's standard streams: closed ones guarded, and messages on stderr that never crash it.

A command started with fd 0, 1 or 2 closed (`>&-`, `2>&-`) has no Python stream there
(`sys.stdout is None`), and the next file it opened would take that number: a capture file or a
worker's pipe would then receive whatever is written to "stdout". So the console script first
points a closed one at /dev/null (`guard_standard_fds`); `sys.stdout` stays None, which is how
destination.py knows the report has nowhere to go (exit 2).

Every message the command prints goes through `say`: a stderr that is closed, full (/dev/full) or
gone (a terminal hung up) loses the message, and never raises. Someone was then not told
something, so the command's exit status becomes 2 (`lost`; an interrupted command keeps 130 or
143). A stream that failed is pointed at /dev/null, so the interpreter's own last flush at exit
does not fail again (which would make the status 120).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

_lost: list[str] = []


def guard_standard_fds() -> None:
    """Give a closed fd 0, 1 or 2 /dev/null, so no file the command opens later takes its number."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one, or a lower one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def say(text: str) -> None:
    """`text` as a line on stderr; if stderr cannot take it, the message is lost and remembered."""
    import click

    try:
        if sys.stderr is None:
            raise OSError("stderr is closed")
        click.echo(text, err=True)
    except (OSError, ValueError):  # ValueError: a stream closed under Python
        _lost.append(text)
        silence(sys.stderr)


def forget_lost() -> None:
    """A new command run in this process (the tests run many) starts with nothing lost."""
    _lost.clear()


def lost() -> bool:
    """Whether a message could not be written (the exit status is then at least 2)."""
    return bool(_lost)


def silence(stream) -> None:
    """Point the file descriptor under `stream` (stdout or stderr) at /dev/null, so the text still
    buffered in it is flushed there at exit rather than failing again. A stream without a file
    descriptor of its own (click's test runner) is left alone."""
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
