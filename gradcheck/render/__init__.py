"""One interface for every output format: a list of results in, the whole report as a string out.

Each format is a module with `render(results, *, quiet, width, color, fail_on, show_ignored) -> str`
that reads Reports (and TargetFailures) and never writes to a stream or recomputes a number; the
CLI writes the string where it belongs. rich is imported only by the formats that draw (text, svg).
Every format but JSON gets the results through visible.shown, so no text from the layer can act
on a terminal, a Markdown table, an XML file or a workflow log.
"""

from __future__ import annotations

import importlib
import os
import shutil
from typing import Optional

from ..report import ERROR

FORMATS = ("text", "json", "github", "junit", "markdown", "svg", "sarif")


def render(
    format: str,
    results,
    *,
    quiet: bool = False,
    width: Optional[int] = None,
    color: bool = False,
    fail_on: str = ERROR,
    show_ignored: bool = False,
) -> str:
    """The report of `results` in `format`.

    Args:
        format: one of FORMATS.
        results: a Report or TargetFailure per target, in order.
        quiet: text and Markdown: only the warnings and errors, without the tables (and a verdict
            line per target when several).
        width: text only: the columns to fit; None (a pipe, a file) makes lines as long as their
            content. svg draws at this width, 100 when None.
        color: text only: ANSI colour codes.
        fail_on: "error" or "warning", as --fail-on: decides every verdict the report prints, so a
            FAILED verdict appears exactly when the exit status is 1.
        show_ignored: text (and svg): list the ignored findings too, not only their count. The
            other formats always carry them, marked as ignored.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    from ..report import with_backends_named
    from .visible import shown

    module = importlib.import_module(f".{format}", __package__)
    safe = results if format == "json" else [shown(result) for result in with_backends_named(results)]
    return module.render(safe, quiet=quiet, width=width, color=color, fail_on=fail_on, show_ignored=show_ignored)


def terminal_settings(stream) -> dict:
    """{"width", "color"} for writing to `stream`: the terminal's width and colour, or none off a terminal.

    NO_COLOR (no-color.org) turns every escape code off; FORCE_COLOR turns colour on off a terminal
    too. Off a terminal there is no width, whatever COLUMNS says (pytest-xdist workers, for one,
    set COLUMNS=80): a log or a file keeps each line whole.
    """
    terminal = stream.isatty()
    color = not os.environ.get("NO_COLOR") and (terminal or bool(os.environ.get("FORCE_COLOR")))
    # shutil reads COLUMNS first, then asks the terminal: a user can still narrow the report.
    width: Optional[int] = shutil.get_terminal_size().columns if terminal else None
    return {"width": width, "color": color}
