"""The gate over one target checked on several backends: a pyproject rule that one backend's
finding uses is used, and a rule no backend uses is said unused once, not once per backend."""

from gradcheck.gate import apply_gate
from gradcheck.options.ignores import parse_ignores
from gradcheck.report import Report, finding


def reports(*findings_per_backend):
    return [
        Report(target="m.py:L", backend=backend, findings=tuple(found))
        for backend, found in zip(("tensorflow", "jax"), findings_per_backend)
    ]


MISMATCH = finding("gradient-mismatch", "input", "The gradient of `input` disagrees.", None)


def unused(results):
    return [(r.backend, f.code) for r in results for f in r.findings if f.code == "unused-ignore"]


def test_a_rule_used_on_one_backend_is_used():
    rules = parse_ignores(["gradient-mismatch:input"], "pyproject.toml")
    results = apply_gate(reports([MISMATCH], []), [rules, rules], [[], []])  # one entry, two backends
    assert unused(results) == []
    assert results[0].findings[0].ignored and results[0].findings[0].ignored_by.startswith("pyproject.toml")


def test_a_rule_no_backend_uses_is_unused_once():
    rules = parse_ignores(["zero-gradient"], "pyproject.toml")
    assert unused(apply_gate(reports([], []), [rules, rules], [[], []])) == [("tensorflow", "unused-ignore")]


def test_two_entries_each_judge_their_own_rules():
    first, second = (
        parse_ignores(["gradient-mismatch"], "pyproject.toml"),
        parse_ignores(["gradient-mismatch"], "pyproject.toml"),
    )
    results = apply_gate(reports([MISMATCH], []), [first, second], [[], []])  # two entries, one backend each
    assert unused(results) == [("jax", "unused-ignore")]
