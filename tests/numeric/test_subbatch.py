"""The finite-difference passes of a large batch run on its leading samples (gradcheck/numeric/subbatch.py):
a planted error is still a mismatch on its tensor, and a layer that needs its whole batch gets it.

The tests lower SUB_BATCH_ELEMENTS instead of using a realistic input (8x128x256 in
bench/realistic.py), so the same rule runs on layers that take a second."""

import pytest
from conftest import ROOT

from gradcheck import check
from gradcheck.backends.tensorflow.forward import Forward
from gradcheck.numeric import subbatch

LAYERS = "tests/data/screening_layers.py"
SHAPE = (8, 16, 64)  # 1,024 numbers per sample


def line_of(path: str, text: str) -> int:
    lines = (ROOT / path).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


@pytest.fixture
def batches(monkeypatch):
    """The batch size of every input the finite-difference loss passes see (a spy, not a stub)."""
    seen: list[int] = []
    original = Forward.loss

    def spied(self, xs, tensors=None):
        seen.append(int(xs[0].shape[0]))
        return original(self, xs, tensors)

    monkeypatch.setattr(Forward, "loss", spied)
    monkeypatch.setattr(subbatch, "SUB_BATCH_ELEMENTS", 2 * 1024)  # two samples' worth
    return seen


def verdicts(report) -> dict:
    return {r.name: r.numeric_verdict for r in [*report.variables, *report.inputs] if r.numeric_verdict}


def test_planted_error_is_found_on_the_leading_two_samples(batches):
    report = check(f"{LAYERS}:PlantedBlock", input_shape=SHAPE)
    errors = [(f.code, f.tensor, f.location) for f in report.findings if f.severity == "error"]
    assert errors == [("gradient-mismatch", "b1", f"{LAYERS}:{line_of(LAYERS, '# here: planted')}")], report
    assert verdicts(report) == {
        "w1": "ok",
        "b1": "mismatch",
        "w2": "ok",
        "b2": "ok",
        "norm.gamma": "ok",
        "norm.beta": "ok",
        "input": "ok",
    }, report
    assert batches and set(batches) == {2}, batches


def test_correct_layer_is_cleared_on_the_leading_samples(batches):
    report = check(f"{LAYERS}:Block", input_shape=SHAPE)
    assert set(verdicts(report).values()) == {"ok"}, report
    assert report.findings == (), report
    assert set(batches) == {2}, batches


def test_a_layer_that_needs_its_whole_batch_is_compared_on_it(batches):
    # call() reshapes with the batch size it was built with: two samples cannot go through it.
    report = check("tests/data/subbatch_layers.py:FixedBatch", input_shape=SHAPE)
    assert verdicts(report) == {"kernel": "ok", "input": "ok"}, report
    assert report.findings == (), report
    assert 8 in batches and 2 not in batches, batches


def test_a_batch_statistic_output_keeps_the_whole_batch(batches):
    # One output is per batch, not per sample: its projection cannot be cut to two samples.
    report = check("tests/data/subbatch_layers.py:WithBatchMean", input_shape=SHAPE)
    assert verdicts(report) == {"kernel": "ok", "input": "ok"}, report
    assert set(batches) == {8}, batches
