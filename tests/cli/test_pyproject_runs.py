"""Several targets from pyproject.toml, checked by the real command: summaries, formats, a target that cannot run or hangs, the terminal."""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT, SAMPLES, line_of, run_cli

THREE_TARGETS = """
[project]
name = "someone-elses-package"

[[tool.gradcheck.targets]]
target = "layers/classic.py:SimpleDense"
input-shape = ["16,5"]
init = {units = 4}

[[tool.gradcheck.targets]]
target = "layers/untracked.py:RawVariable"
input-shape = ["16,5"]
input-dtype = ["float32"]
input-range = ["-1,1"]

[[tool.gradcheck.targets]]
target = "layers/classic.py:DenseWithActivation"
input-shape = ["16,5"]
init = {units = 4}
seed = 3
"""


@pytest.fixture
def project(tmp_path):
    """A folder holding pyproject.toml and copies of two sample files under layers/."""
    (tmp_path / "layers").mkdir()
    for name in ("classic.py", "untracked.py"):
        shutil.copy(SAMPLES / name, tmp_path / "layers" / name)
    (tmp_path / "pyproject.toml").write_text(THREE_TARGETS)
    return tmp_path


# --no-numeric in the tests of many targets and formats below: they are about those; tests/test_samples.py
# checks the same sample layers with finite differences.
def test_three_targets_text_summary_and_exit_1(project):
    result = run_cli(["--no-numeric"], cwd=project)
    assert result.exit_code == 1, result
    summary = result.stdout[result.stdout.index("summary") :].splitlines()
    assert [line.split()[:2] for line in summary[2:5]] == [
        ["layers/classic.py:SimpleDense", "ok"],
        ["layers/untracked.py:RawVariable", "failed"],
        ["layers/classic.py:DenseWithActivation", "ok"],
    ], result


def test_three_targets_github_annotation_on_the_broken_one(project):
    result = run_cli(["--format", "github", "--no-numeric"], cwd=project)
    assert result.exit_code == 1, result
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    line = line_of("self.w = tf.Variable(", "sample_layers/untracked.py")  # the copy in layers/ has the same lines
    # One cause, one finding: the reload that loses `w` is told in its untracked-variable error.
    assert errors == [
        f"::error file=layers/untracked.py,line={line},title=untracked-variable::layers/untracked.py:RawVariable: "
        f"`w` is a raw tf.Variable made at layers/untracked.py:{line}. Keras 3 does not track it: it is missing "
        "from layer.trainable_weights, so fit() never trains it and saving drops it. Make it with "
        "`self.add_weight(...)` in `build()`. The saved model loses its value: after from_config(get_config()) "
        "the layer's output differs by 4.3e-01 of its scale.",
    ], result


def test_three_targets_junit_to_a_file(project):
    result = run_cli(["--format", "junit", "--output", "report.xml", "--no-numeric"], cwd=project)
    assert result.exit_code == 1, result
    assert result.stdout == ""
    root = ET.parse(project / "report.xml").getroot()
    # A passing testcase per clean target, one per finding of the broken one (each a failure).
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "0")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [
        "layers/classic.py:SimpleDense",
        "layers/untracked.py:RawVariable",
        "layers/classic.py:DenseWithActivation",
    ]
    broken = suites[1].findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in broken] == [
        ("layers/untracked.py:RawVariable", "untracked-variable w"),
    ]
    assert [c.find("failure").get("type") for c in broken] == ["untracked-variable"]


def test_a_target_that_cannot_run_exits_2_and_the_others_are_still_checked(project):
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        text + '\n[[tool.gradcheck.targets]]\ntarget = "layers/classic.py:Nope"\ninput-shape = ["4,5"]\n'
    )
    result = run_cli(["--json", "--no-numeric"], cwd=project)
    assert result.exit_code == 2, result
    document = result.json()
    assert [t["ok"] for t in document["targets"]] == [True, False, True, False]
    assert "has no `Nope`" in document["targets"][3]["error"]
    assert "gradcheck: layers/classic.py:Nope: `classic.py` has no `Nope`" in result.stderr


def test_text_output_file_has_no_escape_codes(project):
    result = run_cli(["--output", "report.txt", "--no-numeric"], cwd=project)
    assert result.exit_code == 1, result
    written = (project / "report.txt").read_text()
    assert "untracked-variable" in written and "summary" in written
    assert "\x1b[" not in written


def test_a_fresh_command_in_a_terminal_draws_only_progress_and_gives_a_warm_workers_bytes(project, tmp_path_factory):
    """The command as a person runs it: a fresh process, from the folder holding pyproject.toml,
    stderr a terminal (a pseudo-terminal here), stdout a pipe. Each fresh command costs a TensorFlow
    import, so one shows all of these:
    - the terminal gets transient progress lines and, as --debug asks, each target's peak memory: the fork server's import lasts
      over a second, so a line is drawn; every line is erased as the checks end. TensorFlow's C++
      log lines (oneDNN, absl, cuda), which would stay on the screen, never come, not even as the
      worker's captured output, which --debug shows: the fork server imports TensorFlow under
      TF_CPP_MIN_LOG_LEVEL, and this shell sets none. Finite differences are on;
    - stdout gets the report only, byte for byte what the same arguments give in this process, whose
      worker has checked other layers before (and was forked with another hash seed);
    - the supervisor never imports TensorFlow or Keras, not even to draw the report (issue 8).
    The installed console script is what tests/test_isolation_process.py runs (Ctrl-C, SIGTERM, a
    closed stdout) and tests/test_forkserver.py (a server that dies importing TensorFlow).
    """
    import fcntl
    import pty
    import re
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # rows, columns
    unset = ("TF_CPP_MIN_LOG_LEVEL", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")
    environment = {k: v for k, v in os.environ.items() if k not in unset and not k.startswith("TTY_")}
    environment["TERM"] = "xterm-256color"
    modules = tmp_path_factory.mktemp("exit") / "modules.txt"  # what the command had imported when it exited
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(modules)!r}, 'w').write(str(['tensorflow' in sys.modules, 'keras' in sys.modules])))\n"
        "from gradcheck.cli import main\n"
        "main()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--debug"],
        cwd=project,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=environment,
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
    assert process.wait(timeout=300) == 1, (report, drawn)
    # --debug says each target's peak memory on a line of its own, the one line meant to stay.
    memory = re.compile(rb"gradcheck: layers/\w+\.py:\w+: peak memory of its worker [\d,]+ MB resident[^\r\n]*\r\n")
    assert len(memory.findall(drawn)) == 3, drawn
    drawn = memory.sub(b"", drawn)
    # Otherwise one line, redrawn in place (a carriage return, then erase-line) and never left for a new one: a
    # newline in what was drawn would be a line that stays, whatever wrote it.
    assert b"\n" not in drawn, drawn
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn.decode(errors="replace"))
    drawings = [piece for piece in plain.split("\r") if piece.strip()]
    assert all(re.match(r"\S layers/\w+\.py:\w+: [a-z]", line) for line in drawings), drawings  # spinner, target: stage
    assert "layers/classic.py:SimpleDense: starting the check " in drawings[0], drawings
    last = drawn.rstrip(b"\r").removesuffix(b"\x1b[?25h")  # the cursor shown again
    assert last.endswith(b"\x1b[2K"), drawn[-200:]  # the last line erased: nothing is left on the screen
    assert modules.read_text() == "[False, False]"
    summary = report[report.index("summary") :].splitlines()
    assert [line.split()[:2] for line in summary[2:5]] == [
        ["layers/classic.py:SimpleDense", "ok"],
        ["layers/untracked.py:RawVariable", "failed"],
        ["layers/classic.py:DenseWithActivation", "ok"],
    ], report
    warm = run_cli(["--debug"], cwd=project)
    assert report.encode() == warm.stdout.encode()


def test_a_hanging_target_times_out_and_the_next_is_still_checked(project):
    shutil.copy(ROOT / "tests" / "data" / "bad_layers.py", project / "layers" / "bad_layers.py")
    (project / "pyproject.toml").write_text(
        '[[tool.gradcheck.targets]]\ntarget = "layers/bad_layers.py:Hangs"\ninput-shape = ["4,5"]\ntimeout = 1\n\n'
        '[[tool.gradcheck.targets]]\ntarget = "layers/classic.py:SimpleDense"\ninput-shape = ["4,5"]\ninit = {units = 3}\n'
    )
    result = run_cli(["--json", "--no-numeric"], cwd=project)
    assert result.exit_code == 2, result
    assert [t["ok"] for t in result.json()["targets"]] == [False, True]
    assert "gradcheck: layers/bad_layers.py:Hangs: The check did not finish within 1 s" in result.stderr, result
