"""Findings of one cause drawn as one (render/causes.py), on hand-built Reports, without TensorFlow:
text, Markdown and GitHub merge them; JSON, SARIF and JUnit keep one entry per tensor; the gate
still decides each finding on its own."""

import json
import xml.etree.ElementTree as ET

from gradcheck.gate.suppressions import apply_suppressions
from gradcheck.options.ignores import parse_ignores
from gradcheck.render import render
from gradcheck.report import Report, finding

CAUSE = "Relu at layers.py:9"


def _dead(tensor: str):
    return finding(
        "zero-gradient", tensor, f"`{tensor}`'s gradient is exactly zero. It dies at Relu.", "layers.py:9", cause=CAUSE
    )


DEAD = Report(
    target="layers.py:Dead",
    findings=(
        _dead("bias"),
        _dead("input"),
        _dead("kernel"),
        finding("zero-gradient", "gain", "`gain`'s gradient is exactly zero.", "layers.py:4"),  # no cause
        finding("vanishing-gradient", "scale", "`scale` is vanishing. It dies at Relu.", "layers.py:9", cause=CAUSE),
    ),
    training_modes=("n/a",),
)


def test_the_text_report_shows_one_finding_per_code_and_cause_naming_every_tensor():
    lines = render("text", [DEAD]).splitlines()
    heads = [line for line in lines if line.startswith("WARNING")]
    assert heads == [
        "WARNING zero-gradient  bias, input, kernel  layers.py:9",
        "WARNING zero-gradient  gain  layers.py:4",
        "WARNING vanishing-gradient  scale  layers.py:9",
    ]
    merged = lines.index(heads[0])
    assert lines[merged + 1 : merged + 3] == [
        "        `bias`'s gradient is exactly zero. It dies at Relu.",
        f"        The same for `input` and `kernel`: one cause, {CAUSE}.",
    ]
    assert "OK layers.py:Dead: 0 errors, 5 warnings" in lines[-1]  # the verdict counts every finding


def test_markdown_and_github_merge_the_same_way():
    bullets = [line for line in render("markdown", [DEAD]).splitlines() if line.startswith("- **WARNING**")]
    assert [line.split(" at ", 1)[0] for line in bullets] == [
        "- **WARNING** `zero-gradient` `bias, input, kernel`",
        "- **WARNING** `zero-gradient` `gain`",
        "- **WARNING** `vanishing-gradient` `scale`",
    ]
    annotations = [line for line in render("github", [DEAD]).splitlines() if line.startswith("::")]
    assert len(annotations) == 3
    assert annotations[0].endswith(f"%0AThe same for `input` and `kernel`: one cause, {CAUSE}.")


def test_json_sarif_and_junit_keep_one_entry_per_tensor_with_its_cause():
    document = json.loads(render("json", [DEAD]))
    assert [(f["tensor"], f["cause"]) for f in document["findings"]] == [
        ("bias", CAUSE),
        ("input", CAUSE),
        ("kernel", CAUSE),
        ("gain", None),
        ("scale", CAUSE),
    ]
    assert len(json.loads(render("sarif", [DEAD]))["runs"][0]["results"]) == 5
    assert sum(1 for _ in ET.fromstring(render("junit", [DEAD])).iter("testcase")) == 5
    assert Report.from_dict(json.loads(render("json", [DEAD]))).findings == DEAD.findings  # crosses the worker boundary


def test_an_ignored_finding_leaves_its_group_and_is_decided_on_its_own():
    [gated] = apply_suppressions([DEAD], [parse_ignores(["zero-gradient:input"])], [[]])
    assert [(f.tensor, f.ignored) for f in gated.findings][:3] == [("bias", False), ("input", True), ("kernel", False)]
    lines = render("text", [gated], show_ignored=True).splitlines()
    heads = [line for line in lines if line.startswith(("WARNING zero", "IGNORED zero"))]
    assert heads == [
        "WARNING zero-gradient  bias, kernel  layers.py:9",
        "WARNING zero-gradient  gain  layers.py:4",
        "IGNORED zero-gradient  input  layers.py:9",
    ]


def test_a_cause_from_the_layer_is_shown_escaped():
    hostile = finding("none-gradient", "w", "cut", "x.py:1", cause="ArgMax at \x1b[31mx.py:1")
    twin = finding("none-gradient", "b", "cut", "x.py:1", cause="ArgMax at \x1b[31mx.py:1")
    text = render("text", [Report(target="x.py:L", findings=(hostile, twin), training_modes=("n/a",))])
    assert "one cause, ArgMax at \\x1b[31mx.py:1." in text and "\x1b" not in text
