"""No process a layer starts outlives its check (issue 30): each one, plain or daemonised, started in
the module, build() or call(), is ended when the check ends, and the report says so; one left by a
worker that died (os._exit, killed at --timeout) is ended by the worker's last act or its fork server.

The layers (tests/data/hostile/leftovers.py) append the pid of each process they leave to a file;
the real command runs them (in this process, its workers real processes), then each pid is looked up.
"""

import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from gradcheck.isolation import descendants

pytestmark = pytest.mark.skipif(not descendants.AVAILABLE, reason="processes are found through /proc (Linux)")

LEFTOVERS = "tests/data/hostile/leftovers.py"
QUICK = ["--input-shape", "4,5", "--no-numeric", "--no-reload", "--json"]


@pytest.fixture
def pids(tmp_path, monkeypatch):
    """The file the layers append `PID KIND` lines to; read back as [(pid, kind)]."""
    path = tmp_path / "pids"
    path.write_text("")
    monkeypatch.setenv("LEFTOVER_PIDS", str(path))

    def read() -> list[tuple[int, str]]:
        return [(int(pid), kind) for pid, kind in (line.split() for line in path.read_text().splitlines())]

    return read


def _state(pid: int) -> str | None:
    """The process's state letter ("Z": a zombie), or None when no process has the pid."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _runs_sleep(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")[0] == b"sleep"
    except OSError:
        return False


def assert_gone(pid: int, within: float = 2.0) -> None:
    """No `sleep` runs under `pid` any more, not even as a zombie (its pid may go to a new process)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and _state(pid) is not None and _runs_sleep(pid):
        time.sleep(0.02)
    assert _state(pid) is None or not _runs_sleep(pid), f"process {pid} is still there ({_state(pid)})"


CASES = {
    "plain, in the module": ("Scale", "plain"),
    "daemonised, in the module": ("Scale", "daemon"),
    "plain, in build()": ("PlainInBuild", None),
    "daemonised, in build()": ("DaemonInBuild", None),
    "plain, in call()": ("PlainInCall", None),
    "daemonised, in call()": ("DaemonInCall", None),
}


@pytest.mark.parametrize("name, at_import", list(CASES.values()), ids=list(CASES))
def test_a_process_the_layer_leaves_is_ended_and_reported(name, at_import, pids, monkeypatch):
    if at_import:
        monkeypatch.setenv("LEFTOVER_AT_IMPORT", at_import)
    result = run_cli([f"{LEFTOVERS}:{name}", *QUICK])
    assert result.exit_code == 0, result  # an info finding: the verdict is the layer's own
    left = pids()
    assert left and {kind for _, kind in left} == {at_import or ("daemon" if "Daemon" in name else "plain")}
    for pid, _ in left:
        assert_gone(pid, within=0.5)  # ended before the report was sent, not some time later
    count = len(left)
    shown = ", ".join(["`sleep 300`"] * min(count, 3)) + (f" and {count - 3} more" if count > 3 else "")
    [finding] = result.json()["findings"]
    assert finding == {
        "code": "processes-left-running",
        "severity": "info",
        "tensor": None,
        "location": None,
        "cause": None,
        "message": f"The layer's code left {count} process{'es' if count > 1 else ''} running when its check "
        f"ended: {shown}; gradcheck ended {'them' if count > 1 else 'it'}. A layer should end the processes it "
        "starts (wait for them, or terminate them): in training they would pile up, one for every build or "
        "call that starts one.",
        "ignored": False,
        "ignore_reason": None,
        "ignored_by": None,
        "backend": "tensorflow",
        "help": "gradcheck --explain processes-left-running",
    }


def test_a_layer_that_starts_nothing_gets_no_such_finding():
    result = run_cli([f"{LEFTOVERS}:Scale", *QUICK])
    assert result.exit_code == 0 and result.json()["findings"] == [], result


def test_a_daemon_left_by_a_worker_killed_at_its_time_limit_is_ended_by_the_fork_server(pids):
    result = run_cli([f"{LEFTOVERS}:DaemonThenHangs", *QUICK, "--timeout", "2"])
    assert result.exit_code == 2 and result.stderr.startswith("gradcheck: The check did not finish within 2 s"), result
    [(pid, kind)] = pids()
    assert kind == "daemon"
    assert_gone(pid)


def test_a_process_left_by_a_layer_that_calls_os_exit_is_ended(pids):
    result = run_cli([f"{LEFTOVERS}:PlainThenExits", *QUICK])
    assert result.exit_code == 2, result
    line = next(n for n, text in enumerate((ROOT / LEFTOVERS).read_text().splitlines(), 1) if "os._exit(3)" in text)
    assert result.stderr.startswith(
        f"gradcheck: The layer's code called os._exit(3) at {LEFTOVERS}:{line} while building and calling the layer."
    ), result
    [(pid, kind)] = pids()
    assert kind == "plain"
    assert_gone(pid)


def test_a_check_that_could_not_run_still_ends_and_names_what_was_left(pids, monkeypatch):
    monkeypatch.setenv("LEFTOVER_AT_IMPORT", "plain")
    result = run_cli([f"{LEFTOVERS}:PlainInBuild", "--input-shape", "4,5", "--init", "nonsense=1"])
    assert result.exit_code == 2, result
    [(pid, _)] = pids()  # the module's: the constructor failed before build() could start another
    assert_gone(pid)
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith(
        "gradcheck: PlainInBuild(nonsense=1) raised ValueError: Unrecognized keyword arguments"
    ), result
    assert first_line.endswith(
        "The layer's code left 1 process running when its check ended: `sleep 300`; gradcheck ended it."
    ), result
