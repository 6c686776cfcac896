"""The text report as a self-contained SVG picture, for docs, pull requests and CI artifacts.

The lines are the text report's own (text.draw, at a fixed width: 100 columns when none is given),
drawn in colour and read back as styled segments. Every word is a <text> element whose characters
each get their own x position on the column grid, so the columns line up whatever font the viewer
has: no web font is fetched (the picture works offline, in an air-gapped CI artifact), the font is
the local monospace family, and a fallback font of another width cannot push one column into the
next. Text is XML-escaped, and render.visible has already escaped what XML cannot hold.
"""

from __future__ import annotations

from html import escape
from typing import Optional

from ..report import ERROR
from .text import draw, make_console

DEFAULT_WIDTH = 100
FONT_SIZE = 14
COLUMN = 8.5  # px per terminal cell: a monospace font's advance at 14 px is 8.4 (DejaVu) to 8.5
LINE = 19  # px per line
PAD = 16  # px around the text
FONTS = '"DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, "Courier New", monospace'


def render(
    results,
    *,
    quiet: bool = False,
    width: Optional[int] = None,
    color: bool = True,
    fail_on: str = ERROR,
    show_ignored: bool = False,
) -> str:
    columns = width or DEFAULT_WIDTH
    out = make_console(columns, True, color_system="truecolor")
    draw(out, results, quiet=quiet, fail_on=fail_on, wrap=True, show_ignored=show_ignored)
    return picture(out, out.file.getvalue().rstrip("\n").split("\n"), columns)


def picture(console, lines: list[str], columns: int) -> str:
    """The SVG of `lines` (text with ANSI styles, as the console wrote them)."""
    from rich.terminal_theme import SVG_EXPORT_THEME as theme
    from rich.text import Text

    width = round(columns * COLUMN + 2 * PAD)
    height = round(len(lines) * LINE + 2 * PAD)
    background = theme.background_color.hex
    foreground = theme.foreground_color.hex
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        "<title>gradcheck report</title>",
        f"<style>text {{ font-family: {FONTS}; font-size: {FONT_SIZE}px; fill: {foreground}; }}</style>",
        f'<rect width="{width}" height="{height}" rx="8" fill="{background}"/>',
    ]
    for number, line in enumerate(lines):
        baseline = PAD + number * LINE + FONT_SIZE
        column = 0
        for segment in Text.from_ansi(line).render(console):
            parts.extend(_words(segment.text, segment.style, column, baseline, theme))
            column += _cells(segment.text)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _cells(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _words(text: str, style, column: int, baseline: float, theme) -> list[str]:
    """One <text> per word of a segment, each character at its own column."""
    attributes = _attributes(style, theme)
    elements = []
    word = ""
    positions: list[int] = []
    for char in text + " ":
        if char == " ":
            if word:
                xs = " ".join(f"{PAD + c * COLUMN:g}" for c in positions)
                elements.append(f'<text x="{xs}" y="{baseline}"{attributes}>{escape(word, quote=False)}</text>')
            word, positions = "", []
        else:
            word += char
            positions.append(column)
        column += _cells(char)
    return elements


def _attributes(style, theme) -> str:
    if style is None:
        return ""
    found = []
    if style.color is not None and not style.color.is_default:
        found.append(f' fill="{style.color.get_truecolor(theme).hex}"')
    if style.bold:
        found.append(' font-weight="bold"')
    if style.italic:
        found.append(' font-style="italic"')
    if style.dim:
        found.append(' opacity="0.6"')
    return "".join(found)
