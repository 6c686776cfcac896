"""Renderers on hand-built Reports, without TensorFlow: GitHub annotations, JUnit XML, JSON, text."""

import io
import json
import xml.etree.ElementTree as ET

from gradcheck.render import github as render_github, json as render_json, junit as render_junit, text as render_text
from gradcheck.report import Report, TargetFailure, TensorInfo, finding

BROKEN = Report(
    target="layers.py:Broken",
    variables=(TensorInfo(name="w", kind="untracked", shape=(3,), dtype="float32", created_at="layers.py:18"),),
    findings=(
        finding(
            "untracked-variable",
            "w",
            "`w` is a raw tf.Variable, 100% untracked.\nMake it with add_weight.",
            "layers.py:18",
        ),
        finding("zero-gradient", "b", "`b` gets a zero gradient: a, b, c", "pkg/a,b.py:7"),
        finding("stochastic-output", None, "Two calls differ."),
    ),
    training_modes=("n/a",),
    versions={"tensorflow": "2.21.0", "keras": "3.15.1", "python": "3.11.7"},
)
CLEAN = Report(target="layers.py:Good", training_modes=("n/a",))
FAILED = TargetFailure("layers.py:Missing", "`layers.py` has no `Missing`. Check the name after the colon.")


def test_github_error_has_file_line_title_and_escaped_message():
    lines = render_github.render([BROKEN]).splitlines()
    assert lines[0] == (
        "::error file=layers.py,line=18,title=untracked-variable::layers.py:Broken: "
        "`w` is a raw tf.Variable, 100%25 untracked.%0AMake it with add_weight."
    )


def test_github_escapes_comma_and_colon_in_properties():
    lines = render_github.render([BROKEN]).splitlines()
    assert (
        lines[1]
        == "::warning file=pkg/a%2Cb.py,line=7,title=zero-gradient::layers.py:Broken: `b` gets a zero gradient: a, b, c"
    )


def test_github_finding_without_location_has_no_file_or_line():
    lines = render_github.render([BROKEN]).splitlines()
    assert lines[2] == "::notice title=stochastic-output::layers.py:Broken: Two calls differ."


def test_github_target_failure_is_an_error_and_every_target_gets_a_verdict():
    text = render_github.render([BROKEN, CLEAN, FAILED])
    assert "::error title=gradcheck could not run::layers.py:Missing: `layers.py` has no `Missing`." in text
    assert text.endswith(
        "gradcheck: FAILED layers.py:Broken: 1 error, 1 warning\n"
        "gradcheck: OK layers.py:Good: 0 errors, 0 warnings\n"
        "gradcheck: could not run layers.py:Missing\n"
    )


def test_github_property_escaping_rules():
    assert render_github.escape_property("a%b\r\nc:d,e") == "a%25b%0D%0Ac%3Ad%2Ce"
    assert render_github.escape_data("a%b\r\nc:d,e") == "a%25b%0D%0Ac:d,e"


def test_junit_one_testcase_per_finding_and_per_clean_or_broken_target():
    root = ET.fromstring(render_junit.render([BROKEN, CLEAN, FAILED]))
    assert root.tag == "testsuites"
    assert [root.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["5", "1", "1", "0"]
    assert [s.get("name") for s in root.findall("testsuite")] == [
        "layers.py:Broken",
        "layers.py:Good",
        "layers.py:Missing",
    ]
    cases = root.findall("testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("layers.py:Broken", "untracked-variable w"),
        ("layers.py:Broken", "zero-gradient b"),
        ("layers.py:Broken", "stochastic-output"),
        ("layers.py:Good", "no findings"),
        ("layers.py:Missing", "could not run"),
    ]
    failures = cases[0].findall("failure")
    assert [(f.get("type"), f.get("message")) for f in failures] == [
        ("untracked-variable", "`w` is a raw tf.Variable, 100% untracked.\nMake it with add_weight.")
    ]
    assert "at layers.py:18" in failures[0].text
    assert [child.tag for child in cases[1]] == ["system-out"]  # a warning passes under --fail-on error
    assert "WARNING zero-gradient `b` at pkg/a,b.py:7" in cases[1].find("system-out").text
    assert list(cases[3]) == []
    assert cases[4].find("error").get("type") == "could-not-run"
    assert "has no `Missing`" in cases[4].find("error").get("message")


def test_junit_follows_fail_on_and_skips_ignored_findings():
    import dataclasses

    ignored = dataclasses.replace(
        BROKEN.findings[0], ignored=True, ignore_reason="kept on purpose", ignored_by="comment at layers.py:18"
    )
    report = dataclasses.replace(BROKEN, findings=(ignored, *BROKEN.findings[1:]))
    root = ET.fromstring(render_junit.render([report], fail_on="warning"))
    cases = root.findall("testsuite/testcase")
    assert cases[0].find("skipped").get("message") == "ignored by comment at layers.py:18: kept on purpose"
    assert cases[1].find("failure").get("type") == "zero-gradient"
    assert cases[2].find("failure") is None
    assert [root.get(k) for k in ("tests", "failures", "skipped")] == ["3", "1", "1"]


def test_junit_names_two_findings_of_one_code_and_tensor_apart_by_location():
    twice = Report(
        target="t.py:L",
        findings=(finding("zero-gradient", "k", "a", "t.py:3"), finding("zero-gradient", "k", "b", "t.py:9")),
    )
    names = [c.get("name") for c in ET.fromstring(render_junit.render([twice])).iter("testcase")]
    assert names == ["zero-gradient k (t.py:3)", "zero-gradient k (t.py:9)"]


def test_junit_starts_with_an_xml_declaration():
    assert render_junit.render([CLEAN]).startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')


def test_json_of_several_targets_keeps_failures():
    document = json.loads(render_json.render([BROKEN, FAILED]))
    assert document["ok"] is False
    assert [t["target"] for t in document["targets"]] == ["layers.py:Broken", "layers.py:Missing"]
    assert document["targets"][1]["error"].startswith("`layers.py` has no")


def test_text_quiet_prints_a_verdict_and_the_warnings_and_errors_of_each_target():
    lines = render_text.render([BROKEN, CLEAN], quiet=True).splitlines()
    assert lines[0] == "FAILED layers.py:Broken: 1 error, 1 warning."  # whose findings follow, and its verdict
    assert lines[1].split() == ["ERROR", "untracked-variable", "w", "layers.py:18"]
    assert lines[4].split() == ["WARNING", "zero-gradient", "b", "pkg/a,b.py:7"]
    assert lines[-3:] == ["OK layers.py:Good: 0 errors, 0 warnings.", "", "FAILED 1 of 2 targets."]
    assert not any("summary" in line or "tensor" in line or "stochastic-output" in line for line in lines)


def test_text_quiet_of_one_target_prints_only_its_findings():
    lines = render_text.render([BROKEN], quiet=True).splitlines()
    assert lines[0].split() == ["ERROR", "untracked-variable", "w", "layers.py:18"]
    assert not any("OK" in line or "FAILED" in line or "INFO" in line for line in lines)
    assert render_text.render([CLEAN], quiet=True) == ""


def test_text_no_color_has_no_escape_codes_even_when_forced(monkeypatch):
    from gradcheck.render import terminal_settings

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert terminal_settings(io.StringIO())["color"] is False
    assert "\x1b[" not in render_text.render([BROKEN], color=False)
    monkeypatch.delenv("NO_COLOR")
    assert terminal_settings(io.StringIO())["color"] is True  # the control: FORCE_COLOR alone colours a pipe
    assert "\x1b[" in render_text.render([BROKEN], color=True)
