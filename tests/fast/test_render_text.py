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


MARKUP = "[red]x[/red]"


EVIL = Report(
    target="odd/[/]:smile:.py:L[red]x[/red]",
    variables=(
        TensorInfo(
            name=f"{MARKUP}.w", kind="untracked", shape=(3,), dtype="float32", gradient_ratio=0.1, gradient_status="ok"
        ),
        TensorInfo(name="[/]:smile:", kind="constant", shape=(2, 2), dtype="float32", gradient_status="none"),
        TensorInfo(
            name="b" * 70,
            kind="trainable",
            shape=(4,),
            dtype="float32",
            gradient_ratio=1e5,
            gradient_status="exploding",
            numeric_verdict="mismatch",
            numeric_error=0.5,
        ),
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
    for word in (
        EVIL.target,
        f"{MARKUP}.w",
        "[/]:smile:",
        "b" * 70,
        "odd/[/].py:3",
        "[red]p[/red].py:9",
        "is raw [bold]x[/] :smile: [/]",
    ):
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
    summary = lines[lines.index("summary") + 1 :]
    assert summary[0].split() == ["entry", "target", "result", "errors", "warnings"]
    assert [row.split()[:3] for row in summary[1:5]] == [
        ["1", EVIL.target, "failed"],
        ["2", "layers.py:Good", "ok"],
        ["3", EVIL.target, "failed"],
        ["4", "x.py:Missing", "could"],
    ]
    assert lines[-1] == "COULD NOT RUN 1 of 4 targets; 2 failed, 1 ok."
    assert "COULD NOT RUN x.py:Missing: no such file" in lines


def test_quiet_gives_each_of_several_targets_a_verdict_line():
    clean = Report(target="layers.py:Good", training_modes=("n/a",))
    lines = render("text", [clean, EVIL], quiet=True).splitlines()
    assert lines[0] == "OK layers.py:Good: 0 errors, 0 warnings."
    assert lines[1] == ""
    assert lines[2] == f"FAILED {EVIL.target}: 1 error, 1 warning."
    assert lines[3].split()[:3] == ["ERROR", "untracked-variable", f"{MARKUP}.w"]
    assert lines[-1] == "FAILED 1 of 2 targets."


def test_one_target_on_several_backends_is_counted_as_its_runs():
    runs = [
        Report(target="layers.py:Good", training_modes=("n/a",), backend=backend)
        for backend in ("tensorflow", "jax", "torch")
    ]
    assert render("text", runs, quiet=True).splitlines()[-1] == "OK all 3 runs (1 target on 3 backends)."
    failing = [runs[0], TargetFailure("layers.py:Good", "no such thing", backend="jax")]
    assert render("text", failing, quiet=True).splitlines()[-1] == (
        "COULD NOT RUN 1 of 2 runs (1 target on 2 backends); 0 failed, 1 ok."
    )
    single = [Report(target=name, training_modes=("n/a",), backend="jax") for name in ("a.py:A", "b.py:B")]
    assert render("text", single, quiet=True).splitlines()[-1] == "OK all 2 targets."
