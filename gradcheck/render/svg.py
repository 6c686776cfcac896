"""The text report as an SVG picture, for docs and pull requests, drawn by rich's own SVG export.

The drawing is render_text's, recorded on a console of a fixed width (a picture has one; 100
columns when none is given) with colour on. rich writes every character as XML-escaped text, so
a name like `<b>` or `]]>` stays text.
"""

from __future__ import annotations

from typing import Optional

from ..report import ERROR
from .text import draw, make_console

DEFAULT_WIDTH = 100


def render(
    results, *, quiet: bool = False, width: Optional[int] = None, color: bool = True, fail_on: str = ERROR
) -> str:
    out = make_console(width or DEFAULT_WIDTH, True, record=True)
    draw(out, results, quiet=quiet, fail_on=fail_on, wrap=True)
    return out.export_svg(title="gradcheck")
