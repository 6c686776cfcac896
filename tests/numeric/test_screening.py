"""The joint finite-difference screen (gradcheck/numeric/screening.py): it clears a correct layer in a few
passes, and an error in one small tensor among big ones still fails it and is named."""

import pytest
from conftest import ROOT

from gradcheck import check
from gradcheck.backends.tensorflow.forward import Forward
from gradcheck.numeric import first_order as numeric

LAYERS = "tests/data/screening_layers.py"
SHAPE = (4, 16, 64)


def line_of(text: str) -> int:
    lines = (ROOT / LAYERS).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


@pytest.fixture
def passes(monkeypatch):
    """Counts the probe-loss forward passes of the finite-difference check (a spy, not a stub)."""
    count = {"loss": 0}
    original = Forward.loss

    def counted(self, xs, tensors=None):
        count["loss"] += 1
        return original(self, xs, tensors)

    monkeypatch.setattr(Forward, "loss", counted)
    return count


def test_correct_layer_is_cleared_by_the_screen_in_six_passes(passes):
    report = check(f"{LAYERS}:Block", input_shape=SHAPE)
    rows = [*report.variables, *report.inputs]
    assert {r.name: r.numeric_verdict for r in rows if r.numeric_verdict} == {
        name: "ok" for name in ("w1", "b1", "w2", "b2", "norm.gamma", "norm.beta", "input")
    }, report
    assert all(r.numeric_error <= 1e-5 for r in rows if r.numeric_error is not None), report
    # 2 (the loss repeats: no hidden randomness) + 2 joint directions x 2; per tensor it was 7 x 6.
    assert passes["loss"] == 6
    assert report.findings == (), report


def test_planted_error_in_one_small_bias_is_still_a_mismatch_on_that_bias(passes):
    report = check(f"{LAYERS}:PlantedBlock", input_shape=SHAPE)
    errors = [(f.code, f.tensor, f.location) for f in report.findings if f.severity == "error"]
    assert errors == [("gradient-mismatch", "b1", f"{LAYERS}:{line_of('# here: planted')}")], report
    verdict = {r.name: r.numeric_verdict for r in [*report.variables, *report.inputs] if r.numeric_verdict}
    assert verdict == {
        "w1": "ok",
        "b1": "mismatch",
        "w2": "ok",
        "b2": "ok",
        "norm.gamma": "ok",
        "norm.beta": "ok",
        "input": "ok",
    }, report
    # The screen failed and halving it cleared the tensors that agree: fewer passes than every
    # tensor's own directions (6 + 7 x 6) would take, however many smaller steps b1 then gets.
    assert 6 + 2 * 2 * 2 < passes["loss"] < 6 + 7 * 2 * numeric.DIRECTIONS


def test_the_progress_count_moves_while_the_screen_looks(monkeypatch):
    """On a big layer the screen's look at every tensor is most of the check: the count must move
    during it, not jump from 0 to the end after it (the worker tells the CLI's bar these counts)."""
    from gradcheck import progress
    from gradcheck.numeric.screening import SCREEN_DIRECTIONS
    from gradcheck.options import make_options
    from gradcheck.pipeline import build_report

    monkeypatch.setattr(progress, "INTERVAL", 0.0)  # every count told, so each pass sees the latest
    heard: list = []
    seen_by_pass: list = []
    original = Forward.loss

    def loss(self, xs, tensors=None):  # a spy: the real pass runs
        seen_by_pass.append(heard[-1] if heard else None)
        return original(self, xs, tensors)

    monkeypatch.setattr(Forward, "loss", loss)
    options = make_options(input_shape=[",".join(map(str, SHAPE))], reload=False)
    report = build_report(f"{LAYERS}:Block", options, progress=lambda done, total: heard.append((done, total)))
    assert report.findings == (), report
    total = heard[0][1]
    # 7 tensors x 3 directions, and the screen's 2; the screen clears all, so the rest are skipped at once.
    assert total == 7 * numeric.DIRECTIONS + SCREEN_DIRECTIONS
    # Passes 1-2 check that the loss repeats; then each screen direction is a +/- pair of passes.
    assert seen_by_pass == [(0, total)] * 4 + [(1, total)] * 2, seen_by_pass
    assert heard[-1] == (total, total)
