"""How far a long stage of a check has got, told to whoever listens; nothing here draws.

A check counts its steps with `Progress(total, notify)` and calls `advance()` as each ends; the
listener (`notify(done, total)`) decides what to do with it. In the command that listener is the
worker, which sends the counts over its pipe to the supervisor, whose caller (the CLI) draws them
(progress_view.py). The checks so know nothing of terminals, and a library caller passes nothing
and pays nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Notify = Callable[[int, int], None]  # notify(done, total), with 0 <= done <= total

# A display redraws about ten times a second; telling it more often only fills the worker's pipe.
INTERVAL = 0.1


def silent(done: int, total: int) -> None:
    """The listener when nobody listens."""


class Progress:
    """Counts the steps of one stage and tells `notify` at most every INTERVAL seconds.

    `notify` hears (0, total) at once, so a display knows the size of the stage, and the last
    count when the stage closes, so it sees the end even if the steps were quicker than INTERVAL.
    """

    def __init__(self, total: int, notify: Notify = silent, interval: float = INTERVAL):
        self.total, self.done, self.notify, self.interval = max(0, total), 0, notify, interval
        self.told = 0
        self.last = time.monotonic()
        notify(0, self.total)

    def advance(self, steps: int = 1) -> None:
        self.done = min(self.total, self.done + steps)
        now = time.monotonic()
        if now - self.last >= self.interval or (self.done == self.total and self.told != self.done):
            self._tell(now)

    def skip(self, steps: int) -> None:
        """Count `steps` at once (a training mode that needs no comparisons of its own)."""
        self.advance(steps)

    def close(self) -> None:
        if self.told != self.done:
            self._tell(time.monotonic())

    def _tell(self, now: float) -> None:
        self.told, self.last = self.done, now
        self.notify(self.done, self.total)
