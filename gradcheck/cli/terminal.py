"""What the command says on stderr while the targets are checked: progress lines, and why a target
could not run. The only place rich draws progress; the checks only count (progress.py).

The supervisor tells the view each Activity (supervisor.py). Nothing is drawn until a stage has
lasted SHOW_AFTER seconds, so a quick check leaves the terminal as it was; then one line per target
being checked: its stage (after its label, with several targets), and a bar with the count when the
stage counts its steps. The lines are transient, erased when the view closes, which is before the
report is written: the CLI uses a view only when stderr is a terminal and the report is text, and
stdout is never touched.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import GradcheckError
from ..isolation.memory import described
from ..isolation.supervisor import Activity
from ..report import TargetFailure
from .streams import say

SHOW_AFTER = 1.0  # seconds a stage runs before it is drawn
_REDRAW = 0.1  # seconds between redraws


@dataclass
class _Row:
    label: str
    stage: str
    since: float  # when the stage began (time.monotonic)
    done: int | None = None
    total: int | None = None
    task: Any = None  # its rich task id, once drawn


class ProgressView:
    """Progress lines on stderr for the targets being checked, drawn by a thread of its own.

    Its own thread, not the supervisor's loop, decides when a stage has run long enough to be shown:
    a stage that counts no steps sends nothing while it runs. Use it as a context manager around
    check_targets, with `show` as its `progress` callback.
    """

    def __init__(self, alone: bool = False) -> None:
        self.alone = alone  # one target: its label, which the user just typed, is left out
        self.rows: dict[int, _Row] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.bar: Any = None  # a rich Progress, once something is drawn
        self.thread = threading.Thread(target=self._draw_until_stopped, name="gradcheck-progress", daemon=True)

    def __enter__(self) -> ProgressView:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.thread.join()
        if self.bar is not None:
            with contextlib.suppress(OSError, ValueError):
                self.bar.stop()  # transient: the lines are erased
            self.bar = None

    def show(self, activity: Activity) -> None:
        """The supervisor's `progress` callback: remember what the target is doing."""
        with self.lock:
            row = self.rows.get(activity.index)
            if activity.ended:
                if row is not None:
                    row.stage = ""  # the drawing thread removes its line
                return
            if row is None or row.stage != activity.stage:
                task = row.task if row is not None else None
                row = self.rows[activity.index] = _Row(activity.target, activity.stage, time.monotonic(), task=task)
            row.done, row.total = activity.done, activity.total

    def echo(self, text: str) -> None:
        """A message on stderr, above the progress lines while they are drawn."""
        with self.lock:
            if self.bar is not None:
                try:
                    self.bar.console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)
                    return
                except (OSError, ValueError):  # the terminal went away: said (and lost) below
                    self.bar = None
        say(text)

    def _draw_until_stopped(self) -> None:
        try:
            while not self.stopped.wait(_REDRAW):
                with self.lock:
                    self._draw()
        except (OSError, ValueError):  # the terminal went away (hung up, closed): stop drawing
            self.bar = None

    def _draw(self) -> None:
        now = time.monotonic()
        for index, row in list(self.rows.items()):
            if not row.stage:
                if row.task is not None:
                    self.bar.remove_task(row.task)
                del self.rows[index]
                continue
            if row.task is None and now - row.since < SHOW_AFTER:
                continue
            if self.bar is None:
                self.bar = _bar()
                self.bar.start()
            elapsed = int(now - row.since)
            fields = {
                "description": row.stage if self.alone else f"{row.label}: {row.stage}",
                "completed": row.done or 0,
                "count": f"{row.done}/{row.total}" if row.total is not None else "",
                "elapsed": f"{elapsed // 60}:{elapsed % 60:02d}",  # in this stage, not since the line appeared
            }
            if row.task is None:
                row.task = self.bar.add_task(total=row.total, **fields)
            else:
                self.bar.update(row.task, **fields)
                # update() keeps the old total when given None, and an uncounted stage has none.
                next(task for task in self.bar.tasks if task.id == row.task).total = row.total
        if self.bar is not None:
            self.bar.refresh()


def _bar():
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
    from rich.table import Column

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
        BarColumn(bar_width=20),
        TextColumn("{task.fields[count]}"),
        TextColumn("{task.fields[elapsed]}"),
        console=Console(stderr=True, highlight=False),
        auto_refresh=False,  # redrawn by the view's own thread
        expand=True,  # the description takes what the bar and counts leave, cut with an ellipsis
        transient=True,
        redirect_stdout=False,  # stdout is the report's
        redirect_stderr=True,  # what else reaches stderr goes above the lines
    )


def tell(targets, index: int, outcome, debug: bool, view: ProgressView | None = None) -> None:
    """On stderr, in the order of the targets: why a target could not run, and what its code printed.

    With several targets each message starts with its target, so a reader of the CI log knows
    which entry it is about. Captured output is shown with a target that could not run (as pytest
    shows a failing test's), and for every target under --debug.
    """
    echo = view.echo if view is not None else say
    label, options = targets[index]
    result = outcome.result
    used = described(*outcome.memory) if debug else None
    if used:  # before a failure's paragraph, which stays the last thing said about the target
        echo(f"gradcheck: {label}: {used}")
    if isinstance(result, TargetFailure):
        named = len(targets) > 1 or isinstance(options, GradcheckError)
        if debug and outcome.traceback:
            echo(outcome.traceback.rstrip())
        echo(f"gradcheck: {label + ': ' if named else ''}{result.message}")
    if outcome.captured and (debug or isinstance(result, TargetFailure)):
        echo(f"----- output captured while checking {label} -----\n{outcome.captured}\n-----")


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False
