"""One verdict rule: every printed verdict says FAILED exactly when the exit status is 1."""

import pytest

from gradcheck.render import render
from gradcheck.report import Report, TargetFailure, exit_status, fails, finding

ERRORS = Report(target="a.py:Errors", findings=(finding("unused-variable", "b", "never read", "a.py:3"),))


WARNINGS = Report(target="a.py:Warnings", findings=(finding("zero-gradient", "k", "zero", "a.py:5"),))


INFOS = Report(target="a.py:Infos", findings=(finding("stochastic-output", None, "differs"),))


CLEAN = Report(target="a.py:Clean")


BROKEN = TargetFailure("a.py:Missing", "no such name")


CASES = {
    "errors": [ERRORS],
    "warnings": [WARNINGS],
    "infos": [INFOS],
    "clean": [CLEAN],
    "errors+clean": [ERRORS, CLEAN],
    "warnings+infos": [WARNINGS, INFOS],
    "warnings+could-not-run": [WARNINGS, BROKEN],
    "clean+could-not-run": [CLEAN, BROKEN],
}


def _last_line(text: str) -> str:
    return text.rstrip("\n").split("\n\n")[-1].replace("\n", " ")


@pytest.mark.parametrize("fail_on", ["error", "warning"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_text_and_markdown_verdicts_match_the_exit_status(case, fail_on):
    results = CASES[case]
    status = exit_status(results, fail_on)
    for width in (None, 80):
        last = _last_line(render("text", results, fail_on=fail_on, width=width))
        assert last.startswith("FAILED") == (status == 1), (case, fail_on, last)
        assert last.startswith("OK") == (status == 0), (case, fail_on, last)
        assert last.startswith("COULD NOT RUN") == (status == 2), (case, fail_on, last)
    markdown = render("markdown", results, fail_on=fail_on)
    assert markdown.startswith("## ") and ("FAILED" in markdown.splitlines()[0]) == (status == 1), markdown


@pytest.mark.parametrize("fail_on", ["error", "warning"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_targets_verdict_and_github_verdict_follow_fail_on(case, fail_on):
    results = CASES[case]
    github = render("github", results, fail_on=fail_on)
    for result in results:
        if isinstance(result, TargetFailure):
            continue
        word = "FAILED" if exit_status([result], fail_on) == 1 else "OK"
        assert fails(result, fail_on) == (word == "FAILED")
        assert f"gradcheck: {word} {result.target}:" in github
        lines = render("text", results, fail_on=fail_on, quiet=True).splitlines()
        if len(results) > 1:
            assert any(line.startswith(f"{word} {result.target}: ") for line in lines), lines


def test_warnings_only_with_fail_on_warning_is_failed_and_says_why():
    text = render("text", [WARNINGS], fail_on="warning")
    assert _last_line(text) == "FAILED a.py:Warnings: 0 errors, 1 warning (--fail-on warning)."
    text = render("text", [WARNINGS])
    assert (
        _last_line(text) == "OK a.py:Warnings: 0 errors, 1 warning (warnings fail the run only with --fail-on warning)."
    )


def test_report_ok_is_the_error_rule():
    assert (ERRORS.ok, WARNINGS.ok, INFOS.ok, CLEAN.ok) == (False, True, True, True)
    assert all(r.ok == (not fails(r, "error")) for r in (ERRORS, WARNINGS, INFOS, CLEAN))
