"""Progress: the checks count their steps through a callback, the worker sends the counts to the
supervisor, and the CLI draws them on a terminal's stderr only, erased before the report."""

from __future__ import annotations

import ast
import builtins
import os
import pty
import re
import subprocess
import sys

from conftest import ROOT

from gradcheck.progress import Progress

TARGET = "sample_layers/classic.py:DenseWithActivation"
FINITE_DIFFERENCES = "comparing gradients with finite differences"
SECOND_ORDER = "checking second derivatives"
# The modules that draw (the text and svg reports, and the progress lines); no check may import rich.
DRAWING_MODULES = {"render_text", "render_svg", "tensor_table", "progress_view"}


def test_progress_tells_the_total_at_once_and_the_last_count_however_fast_the_steps():
    heard: list = []
    progress = Progress(1000, lambda done, total: heard.append((done, total)), interval=60.0)
    for _ in range(1000):
        progress.advance()
    progress.close()
    assert heard == [(0, 1000), (1000, 1000)]


def test_progress_tells_every_interval_and_the_count_where_a_stage_stopped():
    heard: list = []
    progress = Progress(10, lambda done, total: heard.append((done, total)), interval=0.0)
    progress.advance()
    progress.skip(4)
    progress.close()
    assert heard == [(0, 10), (1, 10), (5, 10)]


def _counts(activities, stage):
    return [(a.done, a.total) for a in activities if a.stage == stage and a.done is not None]


def test_a_real_check_sends_its_counts_through_the_supervisor():
    from gradcheck.options import make_options
    from gradcheck.supervisor import check_targets

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

    from gradcheck.api import build_report
    from gradcheck.options import make_options

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


def test_a_terminal_sees_transient_progress_on_stderr_and_stdout_only_the_report(tmp_path):
    """The command as a person runs it: stderr a terminal (a pseudo-terminal here), stdout a pipe.
    A fresh command starts its worker (TensorFlow's import) for over a second, so a line is drawn.

    The same process shows that the supervisor never imports TensorFlow or Keras, not even to draw
    the report (only its workers do, issue 8): one fresh command for both, as each costs an import.
    """
    leader, follower = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TTY_", "FORCE_COLOR", "NO_COLOR"))}
    environment.update(TERM="xterm-256color", COLUMNS="100", TF_CPP_MIN_LOG_LEVEL="3")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    modules = tmp_path / "modules.txt"  # what the command had imported when it exited
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(modules)!r}, 'w').write(str(['tensorflow' in sys.modules, 'keras' in sys.modules])))\n"
        "from gradcheck.cli import main\n"
        "main()\n"
    )
    command = [sys.executable, "-c", code, TARGET]
    command += ["--init", "units=10", "--input-shape", "100,5", "--no-reload"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower, env=environment
    )
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command ended and closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    report = process.stdout.read().decode()  # type: ignore[union-attr]
    assert process.wait(timeout=300) == 0, (report, drawn)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn.decode(errors="replace"))
    assert "starting the check" in plain, drawn
    assert drawn.endswith(b"\x1b[2K"), drawn[-200:]  # the last line erased: nothing is left on the screen
    assert report.startswith(f"gradcheck {TARGET} ") and "\x1b" not in report and "starting" not in report, report
    assert modules.read_text() == "[False, False]"


def test_order_2_counts_once_over_both_training_modes():
    """A layer with two distinct training modes: the second-derivative stage is one count from 0 to
    its total, not a count that starts again at 0 for the second mode."""
    from gradcheck.api import build_report
    from gradcheck.options import make_options

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
