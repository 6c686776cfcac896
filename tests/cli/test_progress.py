"""Progress: the checks count their steps through a callback, the worker sends the counts to the
supervisor, and the CLI draws them on a terminal's stderr only, erased before the report."""

from __future__ import annotations

import ast
import builtins
import os

from conftest import ROOT

TARGET = "sample_layers/classic.py:DenseWithActivation"


FINITE_DIFFERENCES = "comparing gradients with finite differences"


SECOND_ORDER = "checking second derivatives"


# The modules that draw (the text and svg reports, and the progress lines); no check may import rich.
DRAWING_MODULES = {"render_text", "render_svg", "tensor_table", "progress_view"}


def _counts(activities, stage):
    return [(a.done, a.total) for a in activities if a.stage == stage and a.done is not None]


def test_a_real_check_sends_its_counts_through_the_supervisor():
    from gradcheck.isolation.supervisor import check_targets
    from gradcheck.options import make_options

    activities: list = []
    options = make_options(input_shape=["100,5"], init=["units=10"], order=2, reload=False)
    previous = os.getcwd()
    os.chdir(ROOT)
    try:
        [outcome] = check_targets([(TARGET, options)], progress=activities.append)
    finally:
        os.chdir(previous)
    assert outcome.result.ok, outcome
    assert {(a.index, a.target) for a in activities} == {(0, TARGET)}
    stages = [a.stage for a in activities if a.done is None and not a.ended]
    assert stages[0] == "starting the check"
    assert stages[-2:] == [FINITE_DIFFERENCES, SECOND_ORDER]
    for stage in (FINITE_DIFFERENCES, SECOND_ORDER):
        counts = _counts(activities, stage)
        total = counts[0][1]
        assert total > 0 and counts[0] == (0, total), (stage, counts)
        assert all(t == total and 0 <= d <= total for d, t in counts), (stage, counts)
        assert [d for d, _ in counts] == sorted(d for d, _ in counts), (stage, counts)
        assert counts[-1] == (total, total), (stage, counts)
    assert [a.ended for a in activities] == [False] * (len(activities) - 1) + [True]


def test_the_checks_never_import_rich():
    """Statically for every module, and on a real run in this process, whatever Keras imports."""
    for path in sorted((ROOT / "gradcheck").glob("*.py")):
        imported = {
            name.split(".")[0]
            for node in ast.walk(ast.parse(path.read_text()))
            for name in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
        }
        assert "rich" not in imported or path.stem in DRAWING_MODULES, path.name

    from gradcheck.options import make_options
    from gradcheck.pipeline import build_report

    importers: list = []
    original = builtins.__import__

    def recording(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__", "")
        if level == 0 and name.split(".")[0] == "rich" and importer.startswith("gradcheck"):
            importers.append(importer)
        return original(name, globals, locals, fromlist, level)

    counts: list = []
    options = make_options(input_shape=["100,5"], init=["units=10"], reload=False)
    builtins.__import__ = recording
    try:
        report = build_report(str(ROOT / TARGET), options, progress=lambda done, total: counts.append((done, total)))
    finally:
        builtins.__import__ = original
    assert report.ok
    assert importers == []
    assert counts[0][0] == 0 and counts[-1][0] == counts[-1][1] > 0, counts


def test_order_2_counts_once_over_both_training_modes():
    """A layer with two distinct training modes: the second-derivative stage is one count from 0 to
    its total, not a count that starts again at 0 for the second mode."""
    from gradcheck.options import make_options
    from gradcheck.pipeline import build_report

    events: list = []
    stage = ["none"]
    report = build_report(
        str(ROOT / "tests/data/second_order_layers.py") + ":TrainingScaled",
        make_options(input_shape="4,5", order=2, reload=False),
        stage=lambda phrase: stage.__setitem__(0, phrase),
        progress=lambda done, total: events.append((stage[0], done, total)),
    )
    assert report.training_modes == ("true", "false") and report.ok, report
    counts = [(done, total) for phrase, done, total in events if phrase == "checking second derivatives"]
    assert counts[0][0] == 0 and counts[-1][0] == counts[-1][1] > 0, counts
    assert all(a[0] <= b[0] and b[0] <= b[1] for a, b in zip(counts, counts[1:])), counts
    assert len({total for _, total in counts}) == 1, counts
