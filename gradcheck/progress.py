"""A progress bar on stderr for the finite-difference check, shown only when it is slow."""

from __future__ import annotations

import time
from typing import Any


class Progress:
    """A rich progress bar on stderr, shown only once the check has taken more than a second."""

    def __init__(self, wanted: bool, total: int):
        self.wanted, self.total, self.done = wanted, total, 0
        self.start = time.monotonic()
        self.bar: Any = None
        self.task: Any = None

    def advance(self) -> None:
        self.done += 1
        if not self.wanted:
            return
        if self.bar is None and time.monotonic() - self.start > 1.0:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("finite differences", total=self.total, completed=self.done)
        elif self.bar is not None:
            self.bar.update(self.task, completed=self.done)

    def skip(self, steps: int) -> None:
        self.done += steps - 1
        self.advance()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
