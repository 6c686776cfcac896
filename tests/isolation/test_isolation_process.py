"""The command's process-level ends (issue 8), each through the real command or a real worker:
a timeout that must stop a graph loop or a hang the check could swallow, Ctrl-C and SIGTERM, a
closed stdout, and check(isolate=True). (That the supervisor never imports TensorFlow is shown by
tests/test_config.py's fresh command in a terminal.)

Split from test_isolation.py so that xdist (`--dist loadfile`) runs these slow, mostly waiting
tests beside the others rather than after them.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, char_device, process_stats, run_cli

HOSTILE = ROOT / "tests" / "data" / "hostile"
H = "tests/data/hostile"
SCRIPT = Path(sys.executable).parent / "gradcheck"


def line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_never_ending_graph_loop_is_stopped_by_the_timeout():
    # A warm worker, so the check is timed and not an import (its verdicts are not read).
    run_cli([f"{H}/in_call.py:Scale", "--input-shape", "4,5", "--no-numeric", "--no-reload"])
    started = time.monotonic()
    result = run_cli([f"{H}/in_call.py:WhileForever", "--input-shape", "4,5", "--timeout", "1"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, result
    assert result.stderr == (
        "gradcheck: The check did not finish within 1 s; it was stopped while building and calling the layer "
        "(the layer may hang in build() or call()). Check the layer for an endless loop, or allow more time "
        "with --timeout SECONDS.\n"
    ), result
    assert elapsed < 17, elapsed  # 1 s of check (a loop that spins), the kill, and slack for a loaded machine


def test_a_hang_in_the_float64_copy_cannot_be_swallowed_by_a_fallback():
    result = run_cli([f"{H}/in_call.py:HangsInFloat64Copy", "--input-shape", "4,5", "--timeout", "2", "--json"])
    assert result.exit_code == 2 and result.stdout == "", result
    # The stage is "comparing gradients with finite differences" on an idle machine; under load
    # the 2 s may run out before the check gets there.
    assert result.stderr.startswith("gradcheck: The check did not finish within 2 s; it was stopped while "), result


def _signals_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def _descendants(pid: int) -> list[int]:
    """The processes under `pid`: on Linux the fork server, and the workers forked from it."""
    parents = {child: int(fields[1]) for child, fields in process_stats().items()}
    found, level = [], [pid]
    while level:
        level = [child for child, parent in parents.items() if parent in level]
        found += level
    return found


def _running(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker through /proc")
@pytest.mark.parametrize(
    "signum, status, word, moment",
    [
        (signal.SIGINT, 130, "interrupted", "the check"),
        # In a run's first seconds the fork server is still importing TensorFlow and reads no
        # request: the command must not wait for it (it used to take 3 s to end).
        (signal.SIGTERM, 143, "terminated (SIGTERM)", "the import"),
    ],
)
def test_interrupt_ends_the_workers_and_writes_no_report(tmp_path, tmp_path_factory, signum, status, word, moment):
    report = tmp_path / "report.json"
    report.write_text("the previous report\n")
    mark = tmp_path_factory.mktemp("mark") / "in-call"  # made by the layer once its call() runs
    process = subprocess.Popen(
        [str(SCRIPT), "tests/data/bad_layers.py:Hangs", "--input-shape", "4,5", "--json", "--output", str(report)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HANG_MARK": str(mark)},
        # As a terminal's foreground command gets it: a suite started in the background by a
        # non-interactive shell runs with SIGINT and SIGQUIT ignored, and its children inherit that.
        preexec_fn=_signals_as_in_a_terminal,
    )
    deadline = time.monotonic() + 120
    # The fork server, and (for the check) the worker it forks once TensorFlow is imported.
    wanted = 2 if moment == "the check" else 1
    while time.monotonic() < deadline and len(_descendants(process.pid)) < wanted:
        time.sleep(0.05)
    workers = _descendants(process.pid)
    assert len(workers) >= wanted, "no worker process started"
    while moment == "the check" and time.monotonic() < deadline and not mark.exists():
        time.sleep(0.02)  # the check under way: the worker loads the layer, which hangs in call()
    assert moment != "the check" or mark.exists(), "the layer's call() never ran"
    signalled = time.monotonic()
    process.send_signal(signum)
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        masks = [
            line for line in Path(f"/proc/{process.pid}/status").read_text().splitlines() if line.startswith("Sig")
        ]
        process.kill()
        process.communicate()
        raise AssertionError(f"the command did not end after the signal: {masks}") from None
    ended = time.monotonic() - signalled
    assert process.returncode == status, stderr
    assert stderr == f"gradcheck: {word}; the checks were stopped and no report was written.\n"
    assert stdout == ""
    assert report.read_text() == "the previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temporary file left
    assert ended < 2, ended  # a tenth of a second here; slack for a loaded machine
    deadline = time.monotonic() + 1  # the server's workers die with it (PR_SET_PDEATHSIG)
    while time.monotonic() < deadline and [pid for pid in workers if _running(pid)]:
        time.sleep(0.05)
    assert not [pid for pid in workers if _running(pid)]


def _caught_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    return 0


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="watches the command's signal handlers through /proc")
@pytest.mark.parametrize(
    "signum, status, word, stderr_full",
    [
        (signal.SIGINT, 130, "interrupted", False),
        # On a stderr that takes nothing, the message is lost but the status is still SIGTERM's.
        (signal.SIGTERM, 143, "terminated (SIGTERM)", True),
    ],
)
def test_a_signal_in_the_first_moments_ends_with_its_status(tmp_path, signum, status, word, stderr_full):
    """Sent as soon as the command's first code has run (its handler for SIGTERM is in place: the
    interpreter installs none), while it is still importing click and reading its options: it used
    to be click's "Aborted!" with status 1, or a KeyboardInterrupt traceback. Cheap: it ends before
    TensorFlow is imported (or, if the signal comes later, kills the fork server importing it)."""
    stderr = open(char_device(tmp_path, "full", 7), "w") if stderr_full else subprocess.PIPE
    process = subprocess.Popen(
        [str(SCRIPT), "tests/data/bad_layers.py:Hangs", "--input-shape", "4,5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        preexec_fn=_signals_as_in_a_terminal,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _caught_signals(process.pid) & (1 << (signal.SIGTERM - 1)):
        time.sleep(0.001)
    process.send_signal(signum)
    started = _descendants(process.pid)  # a fork server, if the command had got that far
    stdout, err = process.communicate(timeout=60)
    if stderr_full:
        stderr.close()
    assert process.returncode == status, err
    assert stdout == ""
    assert err == (None if stderr_full else f"gradcheck: {word}; the checks were stopped and no report was written.\n")
    assert not [pid for pid in started if _running(pid)]


# A stdout that cannot encode the report, or that closes while the checks run, is tests/test_api.py's
# (write_output), and the real command's clean stderr tests/test_config.py's fresh command in a terminal.

CLOSED_STDOUT = (
    "gradcheck: stdout was closed before the report was written (the reading end of a pipe ended). Let the "
    "reader take the whole report, or write it to a file with --output FILE.\n"
)


def test_a_stdout_closed_before_the_run_exits_2_at_once_without_checking():
    """As `gradcheck ... | head -0` when the reader is gone first: the pipe is closed before the command
    starts. Had it checked the layer, which hangs in call(), the message would be --timeout's."""
    reading, writing = os.pipe()
    os.close(reading)
    try:
        completed = subprocess.run(
            [str(SCRIPT), "tests/data/bad_layers.py:Hangs", "--input-shape", "4,5", "--timeout", "5"],
            cwd=ROOT,
            stdout=writing,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(writing)
    assert (completed.returncode, completed.stderr) == (2, CLOSED_STDOUT), completed


def test_a_command_started_without_stdout_exits_2_at_once():
    """`gradcheck ... >&-`: Python has no sys.stdout (it used to fail on `None.isatty`, status 1)."""
    completed = subprocess.run(
        [str(SCRIPT), "tests/data/bad_layers.py:Hangs", "--input-shape", "4,5", "--timeout", "5"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.close(1),
    )
    assert completed.returncode == 2, completed
    assert completed.stderr == (
        "gradcheck: stdout is closed (the command was started without one, as `>&-` does), so the report has "
        "nowhere to go. Send stdout to a file or a pipe, or write the report with --output FILE.\n"
    )


def test_a_full_stdout_is_exit_2_with_one_paragraph(tmp_path):
    with open(char_device(tmp_path, "full", 7), "w") as full:
        completed = subprocess.run(
            [str(SCRIPT), f"{H}/in_call.py:Scale", "--input-shape", "4,5", "--no-numeric", "--no-reload"],
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert completed.returncode == 2, completed
    assert completed.stderr == (
        "gradcheck: The report could not be written to stdout (No space left on device). Send stdout somewhere "
        "that can take it, or write the report to a file with --output FILE.\n"
    )


def test_a_message_a_full_stderr_cannot_take_makes_the_status_2_and_the_report_is_still_written(tmp_path):
    """--debug shows what the layer printed, on stderr: on a full device that message is lost, which
    the status says (the layer itself passes), and nothing crashes on it (it used to be status 1)."""
    with open(char_device(tmp_path, "full", 7), "w") as full:
        completed = subprocess.run(
            [str(SCRIPT), f"{H}/printing.py:Chatty", "--input-shape", "4,5", "--no-numeric", "--no-reload"]
            + ["--json", "--debug"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=full,
            text=True,
            timeout=120,
        )
    assert completed.returncode == 2, completed
    assert json.loads(completed.stdout)["ok"] is True


def test_check_in_process_turns_an_exit_into_an_error():
    from gradcheck import GradcheckError, check

    line = line_of(HOSTILE / "in_call.py", "sys.exit(0)")
    with pytest.raises(GradcheckError) as raised:
        check(f"{H}/in_call.py:SysExitInCall", input_shape=(4, 5))
    assert str(raised.value).startswith(
        f"The layer's code called sys.exit(0) at {H}/in_call.py:{line} while building and calling"
    )


def test_check_isolated_survives_os_exit_and_stops_a_graph_loop():
    from gradcheck import GradcheckError, check

    with pytest.raises(GradcheckError) as raised:
        check(f"{H}/in_call.py:OsExitInCall", input_shape=(4, 5), isolate=True)
    assert str(raised.value).startswith("The layer's code called os._exit(0) at")
    with pytest.raises(GradcheckError) as raised:
        check(f"{H}/in_call.py:WhileForever", input_shape=(4, 5), isolate=True, timeout=1)
    assert str(raised.value).startswith(
        "The check did not finish within 1 s; it was stopped while building and calling the layer"
    )


def test_assert_trainable_passes_isolate_through():
    from gradcheck import GradcheckError
    from gradcheck.testing import assert_trainable

    report = assert_trainable(f"{H}/in_call.py:Scale", input_shape=(4, 5), isolate=True)
    assert report.ok and [v.name for v in report.variables] == ["scale"]
    with pytest.raises(GradcheckError, match="isolate=True"):
        assert_trainable(object(), input_shape=(4, 5), isolate=True)
