"""One root cause, one finding: across the JSON report of every sample layer, every Keras and
keras-hub layer and every layer of tests/checks/test_causes_and_severity.py, no error repeats another's cause.

The reports are the stored copies in tests/data/snapshots/, which tests/checks/test_report_snapshots.py
holds equal to what the command prints today (from the runs tests/checks/test_samples.py,
test_keras_builtins.py, test_peer_layers.py and test_causes_and_severity.py make), so this walk needs no check
of its own and no TensorFlow.

Two errors on one tensor repeat a cause when they have the same code, the same `cause` (the op
and line that explain them), or both say how call() holds the tensor (report_invariants.HOLDING).
Every other JSON report a test prints is walked the same way as it is made (tests/conftest.py).
"""

import json

import pytest
from conftest import ROOT
from report_invariants import broken_invariants, repeated_causes

SNAPSHOTS = sorted((ROOT / "tests" / "data" / "snapshots").glob("*.json"))


def test_there_are_reports_to_walk():
    names = {path.stem for path in SNAPSHOTS}
    assert {"sample-untracked_RawVariable", "keras-Dense", "verdict-FrozenProjection"} <= names


@pytest.mark.parametrize("path", SNAPSHOTS, ids=[path.stem for path in SNAPSHOTS])
def test_no_error_repeats_another_errors_root_cause(path):
    document = json.loads(path.read_text())["document"]
    if document is None:
        pytest.skip("the target could not run: no findings")
    assert broken_invariants(document) == []


def test_the_walk_sees_the_repeats_it_is_for():
    def error(code, tensor, cause=None):
        return {"code": code, "severity": "error", "tensor": tensor, "cause": cause, "ignored": False}

    untracked_and_reloaded = {"findings": [error("untracked-variable", "w"), error("reload-mismatch", "w")]}
    assert repeated_causes(untracked_and_reloaded) == [("w", "untracked-variable", "reload-mismatch")]
    one_op = {
        "findings": [error("none-gradient", "w", "ArgMax at a.py:3"), error("backward-failed", "w", "ArgMax at a.py:3")]
    }
    assert repeated_causes(one_op) == [("w", "none-gradient", "backward-failed")]
    # Different tensors sharing a cause are one finding already (drawn as one); different causes
    # on one tensor are two problems.
    shared = {
        "findings": [error("none-gradient", "w", "ArgMax at a.py:3"), error("none-gradient", "b", "ArgMax at a.py:3")]
    }
    assert repeated_causes(shared) == []
    replaced = {"findings": [error("constant-tensor", "kernel"), error("unused-variable", "kernel")]}
    assert repeated_causes(replaced) == [("kernel", "constant-tensor", "unused-variable")]
    two = {"findings": [error("untracked-variable", "w"), error("gradient-mismatch", "w")]}
    assert repeated_causes(two) == []


def test_the_walk_sees_a_skip_without_reason_in_any_target_of_a_run():
    quiet = {"name": "kernel", "numeric_verdict": "skipped", "numeric_skip_reason": None}
    said = {"name": "bias", "numeric_verdict": "skipped", "numeric_skip_reason": "its path runs through tf.numpy_function"}
    report = {"target": "a.py:Net", "findings": [], "variables": [quiet, said], "inputs": []}
    run = {"ok": False, "targets": [{"target": "a.py:Broken", "ok": False, "error": "boom"}, report]}
    assert broken_invariants(run) == ["a.py:Net: `kernel` was not compared and no reason says why"]
