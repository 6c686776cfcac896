"""The text report on real reports at 80 and 120 columns, and on hand-built edge cases.

Real reports come from the pipeline once per module (a fixture), with numeric=False except for
the one layer whose finite-difference verdicts are asserted to show whole.
"""

import re

import pytest
from rich.cells import cell_len

from gradcheck.render import render
from gradcheck.report import Report, TargetFailure, TensorInfo, finding

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TARGETS = [
    ("tests/data/report_layers.py:LongNames", {"input_shape": (4, 5)}),
    ("sample_layers/untracked.py:NestedBlocksModel", {"input_shape": (16, 5)}),
    ("sample_layers/gradients.py:TokenAndScale",
     {"input_shape": [(8, 5), (8, 5)], "input_dtype": ["int32", "float32"]}),
    ("sample_layers/gradients.py:SaturatedSigmoid", {"input_shape": (16, 5)}),
    ("sample_layers/gradients.py:ExpOverflow", {"input_shape": (16, 5)}),
    ("sample_layers/untracked.py:UnusedWeight", {"input_shape": (16, 5)}),
]


@pytest.fixture(scope="module")
def reports():
    from gradcheck import check

    made = [check(target, numeric=False, **kwargs) for target, kwargs in TARGETS]
    made.append(check("sample_layers/untracked.py:RawVariable", input_shape=(16, 5)))  # finite-diff. verdicts
    return made


def _words_that_must_be_whole(report):
    """Every tensor name, kind and status, the finding codes and tensors, as the table shows them."""
    words = []
    for t in report.variables:
        words += [t.name, t.kind, t.gradient_status or "not read"]
        words += [t.layer] if t.layer else []
        words += [t.numeric_verdict] if t.numeric_verdict else []
    for i in report.inputs:
        words += [i.name, f"input {i.dtype}", i.gradient_status or "not differentiable"]
        words += [i.numeric_verdict] if i.numeric_verdict else []
    for f in report.findings:
        words += [f.code] + ([f.tensor] if f.tensor else []) + ([f.location] if f.location else [])
    return words


@pytest.mark.parametrize("width", [80, 120])
def test_real_reports_fit_the_width_with_every_name_and_status_whole(reports, width):
    for report in reports:
        text = render("text", [report], width=width)
        lines = text.splitlines()
        assert lines, report.target
        too_long = [line for line in lines if cell_len(line) > width]
        assert not too_long, f"{report.target} at {width}:\n{text}"
        for word in _words_that_must_be_whole(report):
            assert any(word in line for line in lines), f"{word!r} is not whole in {report.target} at {width}:\n{text}"
        assert "…" not in text, text
        verdict = text.rstrip("\n").split("\n\n")[-1]  # the last paragraph, maybe wrapped
        assert verdict.startswith(("OK " + report.target, "FAILED " + report.target)), text


def test_the_table_keeps_its_columns_when_there_is_room(reports):
    raw = reports[-1]
    wide = render("text", [raw], width=200).splitlines()
    header = re.split(r"\s{2,}", wide[1])
    assert header == ["tensor", "kind", "shape", "gradient norm", "gradient", "status", "trains under fit()",
                      "finite diff."]
    narrow = render("text", [raw], width=80).splitlines()
    assert re.split(r"\s{2,}", narrow[2]) == ["tensor", "kind", "shape", "gradient", "status", "trains", "finite diff."]


def test_off_a_terminal_lines_are_as_long_as_their_content(reports):
    long_names = reports[0]
    lines = render("text", [long_names]).splitlines()
    name = "encoder_block_with_a_descriptive_name.projection_kernel_with_a_long_name"
    row = next(line for line in lines if line.startswith(name))
    assert row.split()[2:4] == ["trainable", "5x3"]  # one line per tensor, nothing stacked
    message = next(line for line in lines if "is a raw tf.Variable" in line and "Keras 3 does not track it" in line)
    assert message.startswith(" " * 8) and message.rstrip().endswith("in `build()`.")  # one line
    assert all(line == line.rstrip() for line in lines)


def test_findings_wrap_with_a_hanging_indent(reports):
    lines = render("text", [reports[0]], width=80).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ERROR"))
    body = []  # the finding's continuation lines, up to the next finding or the blank line after the last
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        body.append(line)
    assert len(body) >= 3
    assert all(line.startswith(" " * 8) and not line.startswith(" " * 9) for line in body), body


def test_gradient_column_places_the_ratio_between_the_thresholds(reports):
    vanishing = reports[3]  # SaturatedSigmoid: a vanishing kernel
    kernel = next(t for t in vanishing.variables if t.gradient_status == "vanishing")
    assert kernel.gradient_ratio < vanishing.vanishing_threshold
    row = next(line for line in render("text", [vanishing]).splitlines() if line.startswith(kernel.name + " "))
    assert "◀···········" in row and f"{kernel.gradient_ratio:.1e}" in row
    legend = next(line for line in render("text", [vanishing]).splitlines() if line.startswith("gradient:"))
    assert legend == ("gradient: RMS(gradient) / max(RMS(tensor), 1) on a log scale, "
                      "◀ 1e-07 vanishing to exploding 1e+04 ▶")


def test_gradient_bar_positions():
    from gradcheck.render.table import gradient_bar

    low, high = 1e-7, 1e4
    assert gradient_bar(1e-7, "ok", low, high).plain == "●" + "·" * 11
    assert gradient_bar(1e4, "ok", low, high).plain == "·" * 11 + "●"
    assert gradient_bar(1.0, "ok", low, high).plain.index("●") == 7  # 7 of 11 decades above 1e-7
    assert gradient_bar(0.0, "zero", low, high).plain == "◀" + "·" * 11
    assert gradient_bar(1e6, "exploding", low, high).plain == "·" * 11 + "▶"
    assert gradient_bar(None, "nonfinite", low, high).plain == "NaN/Inf"
    assert gradient_bar(None, "none", low, high).plain == ""


# --- hand-built reports --------------------------------------------------------------------------------

MARKUP = "[red]x[/red]"
EVIL = Report(
    target="odd/[/]:smile:.py:L[red]x[/red]",
    variables=(
        TensorInfo(name=f"{MARKUP}.w", kind="untracked", shape=(3,), dtype="float32", gradient_ratio=0.1,
                   gradient_status="ok"),
        TensorInfo(name="[/]:smile:", kind="constant", shape=(2, 2), dtype="float32", gradient_status="none"),
        TensorInfo(name="b" * 70, kind="trainable", shape=(4,), dtype="float32", gradient_ratio=1e5,
                   gradient_status="exploding", numeric_verdict="mismatch", numeric_error=0.5),
    ),
    findings=(
        finding("untracked-variable", f"{MARKUP}.w", f"`{MARKUP}.w` is raw [bold]x[/] :smile: [/]", "odd/[/].py:3"),
        finding("exploding-gradient", "b" * 70, "far too big", "[red]p[/red].py:9"),
    ),
    training_modes=("n/a",),
)


@pytest.mark.parametrize("width", [None, 80, 120])
@pytest.mark.parametrize("color", [False, True])
def test_user_text_is_printed_as_typed_never_as_markup_or_emoji(width, color):
    text = ANSI.sub("", render("text", [EVIL, EVIL], width=width, color=color))
    for word in (EVIL.target, f"{MARKUP}.w", "[/]:smile:", "b" * 70, "odd/[/].py:3", "[red]p[/red].py:9",
                 "is raw [bold]x[/] :smile: [/]"):
        assert word in text, f"{word!r} missing:\n{text}"
    assert "😄" not in text
    if width:
        assert all(cell_len(line) <= width for line in text.splitlines()), text


def test_several_targets_blank_line_between_summary_with_entry_numbers_and_a_last_verdict():
    clean = Report(target="layers.py:Good", training_modes=("n/a",))
    text = render("text", [EVIL, clean, EVIL, TargetFailure("x.py:Missing", "no such file")])
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("gradcheck ")]
    assert len(headers) == 3 and all(lines[i - 1] == "" for i in headers[1:]), text
    assert f"gradcheck {EVIL.target} (entry 1)" in lines[headers[0]]
    assert f"gradcheck {EVIL.target} (entry 3)" in lines[headers[2]]
    summary = lines[lines.index("summary") + 1:]
    assert summary[0].split() == ["entry", "target", "result", "errors", "warnings"]
    assert [row.split()[:3] for row in summary[1:5]] == [
        ["1", EVIL.target, "failed"], ["2", "layers.py:Good", "ok"], ["3", EVIL.target, "failed"],
        ["4", "x.py:Missing", "could"],
    ]
    assert lines[-1] == "COULD NOT RUN 1 of 4 targets; 2 failed, 1 ok."
    assert "COULD NOT RUN x.py:Missing: no such file" in lines


def test_quiet_gives_each_of_several_targets_a_verdict_line():
    clean = Report(target="layers.py:Good", training_modes=("n/a",))
    lines = render("text", [clean, EVIL], quiet=True).splitlines()
    assert lines[0] == "OK layers.py:Good: 0 errors, 0 warnings; every weight call() uses is tracked and trainable."
    assert lines[1] == ""
    assert lines[2] == f"FAILED {EVIL.target}: 1 error, 1 warning."
    assert lines[3].split()[:3] == ["ERROR", "untracked-variable", f"{MARKUP}.w"]
    assert lines[-1] == "FAILED 1 of 2 targets."
