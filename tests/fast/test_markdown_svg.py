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
    assert "\\[bold\\]x\\[/\\]" in prose and "&lt;b>bold&lt;/b>" in prose and "a\\|b" in prose
    assert ":smile:" not in prose and ":\u200bsmile:" in prose  # GitHub would draw an emoji
    assert "<br>\\# not a heading" in prose


def test_markdown_escaping_helpers():
    assert text("# h") == "\\# h" and text("1. x") == "1\\. x" and text("- x") == "\\- x"
    assert text("a_b *c* [d](e) <f> & ~g~") == "a\\_b \\*c\\* \\[d\\](e) &lt;f> &amp; \\~g\\~"
    assert code("a`b") == "``a`b``" and code("`a") == "`` `a ``"


def test_svg_is_well_formed_and_shows_user_text_as_typed():
    svg = render("svg", [REPORT], width=80)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    shown = "".join(root.itertext()).replace("\xa0", " ")
    for word in ("odd|dir/[/]:smile:.py:Layer", NAME, "is raw [bold]x[/] :smile: <b>bold</b>", "FAILED"):
        assert word in shown, word
