"""--format markdown and --format svg: tables that parse, well-formed XML, user text shown as typed."""

import re
import xml.etree.ElementTree as ET

from gradcheck.render import render
from gradcheck.render.markdown import code, text
from gradcheck.report import Report, TargetFailure, TensorInfo, finding

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


NAME = "[red]x[/red]|:smile:"


REPORT = Report(
    target="odd|dir/[/]:smile:.py:Layer",
    variables=(
        TensorInfo(
            name=NAME,
            kind="untracked",
            shape=(3,),
            dtype="float32",
            gradient_ratio=0.1,
            gradient_status="ok",
            trains_under_fit=False,
        ),
        TensorInfo(name="`tick`", kind="trainable", shape=(2, 2), dtype="float32", gradient_status="none"),
    ),
    findings=(
        finding(
            "untracked-variable",
            NAME,
            f"`{NAME}` is raw [bold]x[/] :smile: <b>bold</b> a|b\n# not a heading",
            "odd|dir/[/].py:18",
        ),
    ),
    training_modes=("n/a",),
    versions={"tensorflow": "2.21.0", "keras": "3.15.1"},
)


def _tables(markdown: str):
    """Each GFM table as a list of rows, each row a list of cells split on unescaped pipes."""
    tables, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in _UNESCAPED_PIPE.split(line.strip())[1:-1]])
        elif current:
            tables.append(current)
            current = []
    return tables


def test_markdown_tables_parse_every_row_has_the_headers_column_count():
    clean = Report(target="a.py:Clean", training_modes=("n/a",))
    markdown = render("markdown", [REPORT, clean, TargetFailure("a.py:Gone", "no such file")])
    tables = _tables(markdown)
    assert len(tables) == 2  # the summary of several targets, REPORT's tensors (Clean has none)
    for table in tables:
        assert all(len(row) == len(table[0]) for row in table), table
        assert set("".join(table[1])) <= set("-")  # the delimiter row
    assert tables[0][0] == ["entry", "target", "result", "errors", "warnings"]
    assert tables[1][0] == ["tensor", "kind", "shape", "gradient ratio", "status", "trains under fit()", "finite diff."]
    assert tables[1][2][0] == "`[red]x[/red]\\|:smile:`"  # a code span, its pipe escaped for the table
    assert tables[1][3][0] == "`` `tick` ``"


def test_markdown_verdict_heading_and_findings_with_file_line():
    markdown = render("markdown", [REPORT])
    lines = markdown.splitlines()
    assert lines[0] == "## FAILED `odd|dir/[/]:smile:.py:Layer`"
    item = next(line for line in lines if line.startswith("- **ERROR**"))
    assert item.startswith("- **ERROR** `untracked-variable` `[red]x[/red]|:smile:` at `odd|dir/[/].py:18`: ")
    prose = item.split(": ", 1)[1]
    assert prose.startswith("`[red]x[/red]|:smile:` is raw")  # the message's own code span stays code
    assert "\\[bold\\]x\\[/\\]" in prose and "&lt;b>bold&lt;/b>" in prose and "a\\|b" in prose
    outside_code = re.sub(r"`[^`]*`", "", prose)
    assert ":smile:" not in outside_code and ":\u200bsmile:" in outside_code  # GitHub would draw an emoji
    assert "<br>\\# not a heading" in prose


def test_markdown_keeps_a_messages_code_spans_and_escapes_a_stray_backtick():
    from gradcheck.render.markdown import prose

    assert prose("`bg` is cut by `tf.stop_gradient` at a.py:3") == "`bg` is cut by `tf.stop_gradient` at a.py:3"
    assert prose("a `b") == "a \\`b"  # an unpaired backtick is text
    assert prose("`x*y` and *z*") == "`x*y` and \\*z\\*"


def test_markdown_escaping_helpers():
    assert text("# h") == "\\# h" and text("1. x") == "1\\. x" and text("- x") == "\\- x"
    assert text("a_b *c* [d](e) <f> & ~g~") == "a\\_b \\*c\\* \\[d\\](e) &lt;f> &amp; \\~g\\~"
    assert code("a`b") == "``a`b``" and code("`a") == "`` `a ``"


_SVG = "{http://www.w3.org/2000/svg}"


def _screen(svg: str) -> list[str]:
    """The terminal lines an SVG report draws, rebuilt from where each character is placed: a
    character lands in the column its own x names, so a misplaced one shows as a gap or overlap."""
    from gradcheck.render.svg import COLUMN, FONT_SIZE, LINE, PAD

    cells: dict[int, dict[int, str]] = {}
    for element in ET.fromstring(svg).iter(f"{_SVG}text"):
        xs = [float(x) for x in element.get("x").split()]
        assert len(xs) == len(element.text), element.text  # one position per character
        row = round((float(element.get("y")) - PAD - FONT_SIZE) / LINE)
        for x, char in zip(xs, element.text):
            column = (x - PAD) / COLUMN
            assert column == round(column), (element.text, x)  # on the grid
            assert round(column) not in cells.setdefault(row, {}), (element.text, x)  # no overlap
            cells[row][round(column)] = char
    return [
        "".join(cells.get(row, {}).get(c, " ") for c in range(max(cells.get(row, {0: ""}), default=-1) + 1))
        for row in range(max(cells) + 1)
    ]


def test_svg_is_well_formed_self_contained_and_shows_user_text_as_typed():
    svg = render("svg", [REPORT], width=80)
    root = ET.fromstring(svg)
    assert root.tag == f"{_SVG}svg"
    # Nothing is fetched: no web font, no external reference (the namespace is a name, not a fetch).
    assert re.findall(r"https?://[^\s\"]+", svg) == ["http://www.w3.org/2000/svg"]
    assert "@font-face" not in svg and "url(" not in svg and "href" not in svg
    shown = "\n".join(_screen(svg))
    for word in ("odd|dir/[/]:smile:.py:Layer", NAME, "is raw [bold]x[/] :smile: <b>bold</b>", "FAILED"):
        assert word in shown, word


def test_svg_columns_line_up_as_in_the_text_report():
    text_lines = render("text", [REPORT], width=80).rstrip("\n").split("\n")
    assert [line.rstrip() for line in _screen(render("svg", [REPORT], width=80))] == [
        line.rstrip() for line in text_lines
    ]
