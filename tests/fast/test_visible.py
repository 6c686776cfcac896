"""Whatever a layer's names and messages hold, every format but JSON shows it without letting it act:
a CR cannot cut a Markdown row, a NUL or a lone surrogate cannot break XML (SVG, JUnit), an ESC
cannot reach a terminal, a line break cannot start a GitHub workflow command."""

import dataclasses
import json
import re
import xml.etree.ElementTree as ET

import pytest

from gradcheck.render import render
from gradcheck.render.visible import visible
from gradcheck.report import Report, TargetFailure, TensorInfo, finding

NASTY = "a\rb\x00c\x01d\x1b[31me\x7ff\x85g\udc80h\u202ei\u2028j"
ACTING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")

REPORT = Report(
    target=f"layers.py:{NASTY}",
    variables=(
        TensorInfo(
            name=f"w{NASTY}", kind="untracked", shape=(3,), dtype="float32", created_at=f"l{NASTY}.py:3", layer=NASTY
        ),
    ),
    findings=(
        finding("untracked-variable", f"w{NASTY}", f"`w{NASTY}` is raw.\n{NASTY}", f"l{NASTY}.py:3"),
        dataclasses.replace(
            finding("zero-gradient", "k", f"dead {NASTY}", "layers.py:9"),
            ignored=True,
            ignore_reason=f"kept {NASTY}",
            ignored_by=f"comment at l{NASTY}.py:9",
        ),
    ),
    training_modes=("n/a",),
)
RESULTS = [REPORT, TargetFailure(f"x.py:{NASTY}", f"failed {NASTY}")]


def test_visible_escapes_what_acts_and_keeps_the_rest():
    assert visible(NASTY) == "a\\rb\\x00c\\x01d\\x1b[31me\\x7ff\\x85g\\udc80h\\u202ei\\u2028j"
    assert visible("tab\tline\nnext", multiline=True) == "tab\tline\nnext"
    assert visible("tab\tline\nnext") == "tab\\tline\\nnext"
    assert visible("ünïcødé ✓ 中文") == "ünïcødé ✓ 中文"


@pytest.mark.parametrize("format", ["text", "markdown", "svg", "junit", "github", "sarif"])
def test_no_format_but_json_writes_a_character_that_acts(format):
    output = render(format, RESULTS, show_ignored=True)
    output.encode("utf-8")  # a lone surrogate would raise here
    assert not ACTING.search(output), repr(ACTING.search(output).group())
    assert "\\x1b[31m" in output or "\\\\x1b[31m" in output  # shown, as an escape


def test_markdown_rows_keep_their_columns():
    markdown = render("markdown", RESULTS)
    tables = [block.splitlines() for block in markdown.split("\n\n") if block.startswith("|")]
    assert len(tables) == 2  # the summary of the two targets, and the tensor table
    for rows in tables:
        cells = [len(re.split(r"(?<!\\)\|", row)) for row in rows]
        assert len(set(cells)) == 1 and len(rows) >= 3, rows  # a CR would have cut a row in two


def test_svg_and_junit_parse():
    ET.fromstring(render("svg", RESULTS).encode("utf-8"))
    root = ET.fromstring(render("junit", RESULTS).encode("utf-8"))
    assert [case.get("classname") for case in root.iter("testcase")][0] == f"layers.py:{visible(NASTY)}"


def test_github_lines_are_only_gradchecks_commands_and_verdicts():
    lines = render("github", RESULTS).splitlines()
    assert all(line.startswith(("::error ", "::warning ", "::notice ", "gradcheck: ")) for line in lines), lines


def test_sarif_is_json_whose_strings_hold_no_acting_character():
    document = json.loads(render("sarif", RESULTS))
    assert not ACTING.search(json.dumps(document, ensure_ascii=False))


def test_json_keeps_the_exact_text():
    document = json.loads(render("json", RESULTS[:1]))
    assert document["target"] == f"layers.py:{NASTY}"
    assert document["findings"][1]["ignore_reason"] == f"kept {NASTY}"
