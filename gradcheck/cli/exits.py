"""How the command ends: the exit status of its run, of a signal, or of a message nobody could read.

click's standalone mode turns a KeyboardInterrupt into "Aborted!" with status 1 and lets a failing
stream raise; so the command runs click without it, under `raised_as_stopped()` (signals.py), and
decides here: the status the command exited with, 2 for a usage problem, 130 or 143 for Ctrl-C or
SIGTERM at any moment, and at least 2 when a message could not be written to stderr (streams.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import click

from .signals import Stopped, raised_as_stopped
from .streams import forget_lost, lost, say


def exit_as_a_command(run: Callable[[], object]) -> NoReturn:
    """Call `run` (click's main, not standalone) and exit the process with the command's status."""
    forget_lost()
    try:
        with raised_as_stopped():
            status = _status_of(run)
    except Stopped as stop:
        say(stop.message())
        sys.exit(stop.status)
    if lost() and status in (0, 1):
        status = 2  # a message was lost: whoever reads the status must look
    sys.exit(status)


def _status_of(run: Callable[[], object]) -> int:
    try:
        returned = run()  # click, not standalone, returns the code of an eager option's ctx.exit(code)
    except SystemExit as ended:
        code = ended.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except click.exceptions.Exit as ended:
        return ended.exit_code
    except click.ClickException as problem:
        problem.show()
        return problem.exit_code
    except click.Abort:  # end of input at a prompt (gradcheck has none)
        say("Aborted!")
        return 1
    return returned if isinstance(returned, int) else 0
