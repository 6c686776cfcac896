"""The `gradcheck` command: its options, its terminal and where its report goes.

- `command.py`: the click command (parse options, hand the targets to the supervisor, render, exit).
- `entry.py`: the console script's first code (signals remembered, standard streams guarded).
- `signals.py`: Ctrl-C and SIGTERM, from the first moment to the exit statuses 130 and 143.
- `streams.py`: closed standard streams, and messages on stderr that cannot crash the command.
- `terminal.py`: progress lines and messages on stderr while targets are checked.
- `destination.py`: stdout or the --output file (written whole, or in place for a device or FIFO).

It may import every room but the checks themselves: they run in worker processes (isolation/),
so nothing here imports TensorFlow. `main` is imported when first asked for, so that the console
script's entry.py runs before click is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .command import main

__all__ = ["main"]


def __getattr__(name: str):
    if name == "main":
        from .command import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
