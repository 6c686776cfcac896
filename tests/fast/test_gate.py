"""The gate on hand-built Reports and small files, without TensorFlow: comments found as Python reads
them, suppressions matched and judged, baseline entries that hold nothing that moves, bad rules refused."""

import dataclasses
import textwrap

import pytest
from click.testing import CliRunner

from gradcheck import GradcheckError
from gradcheck.cli import main
from gradcheck.codes import CODES
from gradcheck.gate import apply_gate
from gradcheck.gate.baseline import apply_baseline, entries_of, stable_message
from gradcheck.gate.sources import comments_in, forget_sources, scope_of
from gradcheck.options import make_options
from gradcheck.options.ignores import IgnoreRule, parse_ignores
from gradcheck.report import Report, TargetFailure, TensorInfo, exit_status, finding

SOURCE = textwrap.dedent(
    """\
    import tensorflow as tf

    HELP = "# gradcheck: ignore[none-gradient] inside a string is no comment"


    class Net:
        def call(self, x):
            a = tf.stop_gradient(x)  # gradcheck: ignore[none-gradient, input-gradient-none] — frozen stem
            b = x  # noqa: E501  # gradcheck: ignore[zero-gradient]
            c = x  # gradcheck: ignore
            d = x  # gradcheck: ignore[none-gradient
            e = x  # gradcheck: ignored, not a directive
            f = x  # gradcheck:ignore[nope, unused-ignore] typo
            g = tf.stop_gradient(
                x
            )  # gradcheck: ignore[none-gradient] wrapped by a formatter
            # gradcheck: ignore[zero-gradient] on a line of its own
            return a

        @staticmethod
        def helper():
            return 1


    def outer():
        class Inner:
            def method(self):
                return 2
    """
)


@pytest.fixture
def layers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "layers.py").write_text(SOURCE)
    forget_sources()
    return "layers.py"


def _line(text: str) -> int:
    [number] = [n for n, line in enumerate(SOURCE.splitlines(), 1) if text in line]
    return number


def test_comments_are_found_as_python_reads_them(layers):
    found = [(c.line, c.codes, c.reason, c.closed) for c in comments_in(layers)]
    assert found == [
        (_line("a = "), ("none-gradient", "input-gradient-none"), "frozen stem", True),
        (_line("b = "), ("zero-gradient",), None, True),
        (_line("c = "), (), None, True),
        (_line("d = "), (), None, False),
        (_line("f = "), ("nope", "unused-ignore"), "typo", True),
        (_line("wrapped by"), ("none-gradient",), "wrapped by a formatter", True),
        (_line("of its own"), ("zero-gradient",), "on a line of its own", True),
    ]
    covers = {c.line: c.covers for c in comments_in(layers)}
    assert covers[_line("a = ")] == (_line("a = "),)
    assert covers[_line("wrapped by")] == (_line("g = "), _line("g = ") + 1, _line("wrapped by"))
    assert covers[_line("of its own")] == (_line("of its own"),)


def test_scope_is_the_enclosing_function_or_class(layers):
    assert scope_of(f"layers.py:{_line('a = ')}") == "Net.call"
    assert scope_of(f"layers.py:{_line('@staticmethod')}") == "Net.helper"
    assert scope_of(f"layers.py:{_line('return 2')}") == "outer.Inner.method"
    assert scope_of("layers.py:1") == "<module>"
    assert scope_of("missing.py:3") is None and scope_of(None) is None


def test_a_file_that_is_not_a_regular_readable_python_file_gives_nothing(tmp_path, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    os.mkfifo("pipe.py")  # reading it would block for ever
    (tmp_path / "broken.py").write_text('x = 1  # gradcheck: ignore[zero-gradient]\ny = """never closed\n')
    forget_sources()
    assert comments_in("pipe.py") == [] and scope_of("pipe.py:1") is None
    assert [c.codes for c in comments_in("broken.py")] == [("zero-gradient",)]  # what was read before the error
    assert scope_of("broken.py:1") is None


def test_stable_message_drops_locations_and_numbers_but_keeps_names():
    message = (
        "`w` made at pkg/a.py:18 is cut by a cast to int32 at b.py:7; ratio 1.8e-14 below 1e-07, worst [0, 1] -0.32"
    )
    assert stable_message(message) == (
        "`w` made at <location> is cut by a cast to int32 at <location>; ratio # below #, worst [#, #] #"
    )


def _report(target="layers.py:Net", findings=(), variables=()):
    return Report(target=target, findings=tuple(findings), variables=tuple(variables), training_modes=("n/a",))


def test_inline_comments_match_the_findings_line_or_its_tensors_creation_line(layers):
    line_a, line_b = _line("a = "), _line("b = ")
    report = _report(
        findings=[
            finding("none-gradient", "w", "cut", f"layers.py:{line_a}"),
            finding("zero-gradient", "k", "dead", "layers.py:99"),  # its tensor was made on line b
            finding("none-gradient", "k", "cut", "layers.py:99"),  # not a code of line b's comment
            finding("none-gradient", "v", "cut", f"layers.py:{_line('g = ')}"),  # the wrapped statement's comment
        ],
        variables=[
            TensorInfo(name="k", kind="trainable", shape=(3,), dtype="float32", created_at=f"layers.py:{line_b}")
        ],
    )
    [gated] = apply_gate([report], [()])
    ignored = [
        (f.code, f.tensor, f.ignored, f.ignore_reason, f.ignored_by)
        for f in gated.findings
        if f.code in ("none-gradient", "zero-gradient")
    ]
    assert ignored == [
        ("none-gradient", "k", False, None, None),
        ("none-gradient", "v", True, "wrapped by a formatter", f"comment at layers.py:{_line('wrapped by')}"),
        ("none-gradient", "w", True, "frozen stem", f"comment at layers.py:{line_a}"),
        ("zero-gradient", "k", True, None, f"comment at layers.py:{line_b}"),
    ]
    gate = sorted(
        (f.code, f.location)
        for f in gated.findings
        if f.code in ("unused-ignore", "ignore-without-code", "unknown-ignore-code")
    )
    assert gate == sorted(
        [
            ("ignore-without-code", f"layers.py:{_line('c = ')}"),
            ("ignore-without-code", f"layers.py:{_line('d = ')}"),
            ("unknown-ignore-code", f"layers.py:{_line('f = ')}"),
            ("unused-ignore", f"layers.py:{line_a}"),  # input-gradient-none matched nothing
            ("unused-ignore", f"layers.py:{_line('of its own')}"),
        ]
    )
    assert exit_status([gated]) == 1  # the cut on k still counts


def test_rules_match_by_code_and_tensor_and_unused_ones_are_judged_once(layers):
    reports = [
        _report(
            "layers.py:A", [finding("zero-gradient", "k", "dead", None), finding("zero-gradient", "j", "dead", None)]
        ),
        _report("layers.py:B", [finding("none-gradient", "w", "cut", None)]),
    ]
    cli = (IgnoreRule("zero-gradient", "k"), IgnoreRule("nonfinite-gradient"))
    entry_b = IgnoreRule("none-gradient", "w", "held", source="pyproject.toml")
    stale_b = IgnoreRule("backward-failed", source="pyproject.toml")
    gated = apply_gate(reports, [cli, (*cli, entry_b, stale_b)], [[], []])
    a, b = gated
    assert [(f.tensor, f.ignored, f.ignored_by) for f in a.findings if f.code == "zero-gradient"] == [
        ("j", False, None),
        ("k", True, "--ignore zero-gradient:k"),
    ]
    assert [(f.code, f.message) for f in a.findings if f.code == "unused-ignore"] == [
        (
            "unused-ignore",
            "--ignore nonfinite-gradient matched no finding of any target of this run. Drop it from the command line.",
        )
    ]
    assert [(f.ignored_by, f.ignore_reason) for f in b.findings if f.code == "none-gradient"] == [
        ("pyproject.toml ignore none-gradient:w", "held")
    ]
    assert [f.message.split(" matched")[0] for f in b.findings if f.code == "unused-ignore"] == [
        'The pyproject.toml ignore rule "backward-failed"'
    ]
    quiet = apply_gate(
        reports, [(*cli, IgnoreRule("unused-ignore")), (*cli, entry_b, stale_b, IgnoreRule("unused-ignore"))], [[], []]
    )
    assert all(f.ignored for r in quiet for f in r.findings if f.code == "unused-ignore")


def test_comments_in_a_file_of_a_target_that_could_not_run_are_not_judged(layers):
    gated = apply_gate([TargetFailure("layers.py:Net", "boom")], [()], [["layers.py"]])
    assert gated == [TargetFailure("layers.py:Net", "boom")]


def test_baseline_matches_a_multiset_whatever_the_order_and_reports_fixed_entries(layers):
    first = _report(
        findings=[finding("zero-gradient", "k", "dead at layers.py:8, ratio 0.0", f"layers.py:{_line('a = ')}")] * 2
        + [finding("none-gradient", "w", "cut", f"layers.py:{_line('return 2')}")]
    )
    entries = entries_of([first])
    assert [(e.code, e.scope) for e in entries] == [
        ("none-gradient", "outer.Inner.method"),
        *[("zero-gradient", "Net.call")] * 2,
    ]
    reordered = dataclasses.replace(first, findings=first.findings[::-1][:2])  # one zero-gradient fixed
    [gated] = apply_baseline([reordered], list(reversed(entries)), "b.json")
    assert [(f.code, f.ignored) for f in gated.findings] == [
        ("none-gradient", True),
        ("zero-gradient", True),
        ("baseline-fixed", False),
    ]
    assert gated.findings[-1].tensor == "k" and exit_status([gated]) == 0
    other = apply_baseline([_report("layers.py:Other")], entries, "b.json")
    assert other[0].findings == ()  # entries of a target this run did not check are left alone


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("none-gradients", "'none-gradients' is not a finding code. The codes are: "),
        ("none-gradient:", "the tensor after the colon is empty"),
        ({"code": "zero-gradient", "why": "x"}, "has the unknown key 'why'"),
        ({"tensor": "k"}, "has no code"),
        (3, "is not a rule"),
    ],
)
def test_bad_rules_are_refused_with_the_codes_named(value, message):
    with pytest.raises(GradcheckError, match=None) as raised:
        parse_ignores([value], "pyproject.toml")
    assert message in str(raised.value)


def test_a_rules_tensor_may_hold_a_colon_and_check_takes_rules():
    [rule] = parse_ignores("none-gradient:params['a:b']")
    assert (rule.code, rule.tensor) == ("none-gradient", "params['a:b']")
    options = make_options(input_shape="8,5", ignore=["zero-gradient", {"code": "none-gradient", "reason": "held"}])
    assert [(r.code, r.reason, r.source) for r in options.ignore] == [
        ("zero-gradient", None, "check(ignore=...)"),
        ("none-gradient", "held", "check(ignore=...)"),
    ]


def test_an_unknown_ignore_code_exits_2_before_anything_runs():
    result = CliRunner().invoke(main, ["layers.py:X", "--input-shape", "8,5", "--ignore", "nope"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"gradcheck: --ignore nope: 'nope' is not a finding code. The codes are: {', '.join(sorted(CODES))}. "
        "Run gradcheck --explain CODE for what one means.\n"
    )


def test_a_reworded_message_keeps_its_entry_and_words_decide_only_between_equals(layers):
    where = f"layers.py:{_line('a = ')}"
    old = _report(findings=[finding("zero-gradient", "k", "dead", where), finding("zero-gradient", "k", "stuck", where)])
    entries = entries_of([old])
    # A newer gradcheck words one message differently: both findings still match, none is new.
    reworded = _report(findings=[finding("zero-gradient", "k", "stuck", where), finding("zero-gradient", "k", "dead now", where)])
    [gated] = apply_baseline([reworded], entries, "b.json")
    assert sorted((f.message, f.ignored) for f in gated.findings) == [("dead now", True), ("stuck", True)]
    # Another tensor, or a third finding on the same one, is new whatever its words.
    grown = _report(findings=[*reworded.findings, finding("zero-gradient", "k", "dead", where), finding("zero-gradient", "b", "dead", where)])
    [gated] = apply_baseline([grown], entries, "b.json")
    assert sorted((f.tensor, f.message, f.ignored) for f in gated.findings) == [
        ("b", "dead", False),
        ("k", "dead", True),
        ("k", "dead now", False),
        ("k", "stuck", True),
    ]
