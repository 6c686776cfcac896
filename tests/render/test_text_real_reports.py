"""The text report on real reports at 80 and 120 columns: every name and status whole, within the width.

Real reports come from the pipeline once per module (a fixture), with numeric=False except for
the one layer whose finite-difference verdicts are asserted to show whole."""

import re

import pytest
from rich.cells import cell_len

from gradcheck.render import render

TARGETS = [
    ("tests/data/report_layers.py:LongNames", {"input_shape": (4, 5)}),
    ("sample_layers/untracked.py:NestedBlocksModel", {"input_shape": (16, 5)}),
    (
        "sample_layers/gradients.py:TokenAndScale",
        {"input_shape": [(8, 5), (8, 5)], "input_dtype": ["int32", "float32"]},
    ),
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
    assert header == [
        "tensor",
        "kind",
        "shape",
        "gradient norm",
        "gradient",
        "status",
        "trains under fit()",
        "finite diff.",
    ]
    narrow = render("text", [raw], width=80).splitlines()
    assert re.split(r"\s{2,}", narrow[2]) == ["tensor", "kind", "shape", "gradient", "status", "trains", "finite diff."]


def test_off_a_terminal_lines_are_as_long_as_their_content(reports):
    long_names = reports[0]
    lines = render("text", [long_names]).splitlines()
    name = "encoder_block_with_a_descriptive_name.projection_kernel_with_a_long_name"
    row = next(line for line in lines if line.startswith(name))
    assert row.split()[2:4] == ["trainable", "5x3"]  # one line per tensor, nothing stacked
    message = next(line for line in lines if "is a raw tf.Variable" in line and "Keras 3 does not track it" in line)
    # One line, the reload's sentence included (one root cause, one finding).
    assert message.startswith(" " * 8) and message.rstrip().endswith("differs by 4.3e-01 of its scale.")
    assert all(line == line.rstrip() for line in lines)


def test_findings_wrap_with_a_hanging_indent(reports):
    lines = render("text", [reports[0]], width=80).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ERROR"))
    body = []  # the finding's continuation lines, up to the next finding or the blank line after the last
    for line in lines[start + 1 :]:
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
    assert legend == (
        "gradient: RMS(gradient) / max(RMS(tensor), 1) on a log scale, ◀ 1e-07 vanishing to exploding 1e+04 ▶"
    )
