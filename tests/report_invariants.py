"""What every JSON report gradcheck prints must hold, whatever the layer: nothing left uncompared
without a reason, and no error that tells another error's root cause again.

tests/conftest.py applies `broken_invariants` to every JSON document a test's run of the command
prints, so every layer the suite checks (sample layers, Keras's and keras-hub's, the layers of
tests/data/) is walked without a run of its own; tests/fast/test_root_causes.py walks the stored
reports and shows that the walk sees what it is for.
"""

from __future__ import annotations

import itertools

# What the inventory and the reload say about how call() holds a tensor: a tensor is held one way,
# so a raw variable the reload loses is one untracked-variable error, and a weight call() replaces
# with a tensor one unused-variable error (reload-mismatch is kept for causes no other finding explains).
HOLDING = {"untracked-variable", "constant-tensor", "unused-variable", "variable-created-in-call", "reload-mismatch"}


def reports_in(document) -> list[dict]:
    """The reports of a JSON document: itself, or each checked target of a several-target run."""
    if not isinstance(document, dict):
        return []
    if "targets" in document:
        return [report for report in document["targets"] if isinstance(report, dict) and "findings" in report]
    return [document] if "findings" in document else []


def repeated_causes(report: dict) -> list:
    """The pairs of error findings in `report` that tell one cause twice."""
    errors = [f for f in report["findings"] if f["severity"] == "error" and not f["ignored"] and f["tensor"]]
    repeats = []
    for one, other in itertools.combinations(errors, 2):
        if one["tensor"] != other["tensor"]:
            continue
        if (
            one["code"] == other["code"]
            or (one["cause"] is not None and one["cause"] == other["cause"])
            or {one["code"], other["code"]} <= HOLDING
        ):
            repeats.append((one["tensor"], one["code"], other["code"]))
    return repeats


def skipped_without_reason(report: dict) -> list[str]:
    """The tensors and inputs whose finite-difference verdict is `skipped` with no reason given."""
    rows = [*report.get("variables", []), *report.get("inputs", [])]
    return [row["name"] for row in rows if row.get("numeric_verdict") == "skipped" and not row.get("numeric_skip_reason")]


def broken_invariants(document) -> list[str]:
    """Each way `document` breaks what every report must hold, in words (empty: none)."""
    broken = []
    for report in reports_in(document):
        target = report.get("target")
        for tensor, code, other in repeated_causes(report):
            broken.append(f"{target}: `{tensor}` has {code} and {other}, errors telling one cause twice")
        for name in skipped_without_reason(report):
            broken.append(f"{target}: `{name}` was not compared and no reason says why")
    return broken
