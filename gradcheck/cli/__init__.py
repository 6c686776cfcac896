"""The `gradcheck` command: its options, its terminal and where its report goes.

- `command.py`: the click command (parse options, hand the targets to the supervisor, render, exit).
- `terminal.py`: progress lines and messages on stderr while targets are checked.
- `destination.py`: stdout or the --output file, written whole.

It may import every room but the checks themselves: they run in worker processes (isolation/),
so nothing here imports TensorFlow.
"""

from .command import main

__all__ = ["main"]
