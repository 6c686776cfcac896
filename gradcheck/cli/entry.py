"""The `gradcheck` console script and `python -m gradcheck`: the command's first code to run.

Importing this module is the first thing the command does after the interpreter starts (the
package's own `__init__` modules import nothing), so a Ctrl-C or SIGTERM from this moment on is
remembered (signals.py) rather than raised as a traceback out of some import; `run()` then guards
the standard streams and runs the click command, which raises what was remembered. A signal before
this module is imported meets the interpreter itself: before its own handler exists the process is
ended by the signal (the shell's status 130 or 143); after, Python prints a KeyboardInterrupt.
"""

from __future__ import annotations

import sys

from . import signals

signals.remember_from_now()


def run() -> None:
    """Run the command with sys.argv, and exit with its status."""
    from . import streams

    streams.guard_standard_fds()
    try:
        with signals.raised_as_stopped():
            from .command import main
    except signals.Stopped as stop:
        streams.say(stop.message())
        sys.exit(stop.status)
    main.main()


if __name__ == "__main__":
    run()
