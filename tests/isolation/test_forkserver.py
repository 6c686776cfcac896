"""Workers are forked from one process that has TensorFlow imported (forkserver.py), on Linux.

What must hold: a dead worker's replacement is a fork of the same server (TensorFlow is imported
once per command, not once per crash); a worker sees the environment of the moment it was forked;
a server killed under a check is named as such and replaced, and the idle workers it had forked
are not reused; and without fork (other systems) each worker is a Python of its own. The checks
go through check(isolate=True), the command's own supervisor. That the server imports TensorFlow
quietly, as a worker does, is tests/test_config.py's fresh command under --debug.
"""

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, process_stats

from gradcheck import GradcheckError, check
from gradcheck.isolation import forkserver, supervisor

pytestmark = pytest.mark.skipif(not forkserver.AVAILABLE, reason="the fork server is used on Linux")

SCALE = "tests/data/hostile/in_call.py:Scale"
# These tests read processes and variables, never a finite-difference or reload verdict: both are
# off, which takes a tiny layer's check from about 150 ms to 45 ms.
QUICK = {"numeric": False, "reload": False}


@pytest.fixture(autouse=True)
def _from_the_repository(monkeypatch):
    monkeypatch.chdir(ROOT)


def _end_idle_workers() -> None:
    """So the next check needs a new worker rather than reusing a warm one."""
    while supervisor._idle:
        supervisor._idle.pop().close(kill=True)


def _parent_of(pid: int) -> int:
    return int(process_stats()[pid][1])


def test_a_dead_workers_replacement_is_forked_from_the_same_server():
    check(SCALE, input_shape=(4, 5), isolate=True, **QUICK)
    server = forkserver._current
    _end_idle_workers()
    issued = len(server._issued)
    with pytest.raises(GradcheckError, match=r"^The layer's code called os\._exit\(0\)"):
        check("tests/data/hostile/in_call.py:OsExitInCall", input_shape=(4, 5), isolate=True, **QUICK)
    report = check(SCALE, input_shape=(4, 5), isolate=True, **QUICK)
    assert report.ok
    assert forkserver._current is server and server.alive
    assert len(server._issued) == issued + 2  # the one that exited, and its replacement
    worker = supervisor._idle[-1]
    assert _parent_of(worker.process.pid) == server.process.pid


def test_a_worker_sees_the_environment_of_the_moment_it_was_forked(monkeypatch):
    check(SCALE, input_shape=(4, 5), isolate=True, **QUICK)
    server = forkserver._current
    monkeypatch.setenv("GRADCHECK_TEST_WIDTH", "3")  # after the server started
    _end_idle_workers()
    report = check("tests/data/environment_layer.py:WidthFromEnvironment", input_shape=(4, 5), isolate=True, **QUICK)
    assert [v.shape for v in report.variables if v.kind == "trainable"] == [(5, 3)]
    assert forkserver._current is server  # not a variable TensorFlow reads at import: no new server


FROZEN = "tests/data/environment_layer.py:WidthFromFrozenObjects"


def test_a_worker_never_walks_tensorflows_objects_in_its_collections():
    """Each target starts with clear_session()'s gc.collect(): with TensorFlow's ~270,000 objects
    frozen by the server before it forks, that is cheap (bench/worker_start.py)."""
    _end_idle_workers()
    report = check(FROZEN, input_shape=(4, 5), isolate=True, **QUICK)
    assert [v.shape for v in report.variables if v.kind == "trainable"] == [(5, 1)]


def test_importing_tensorflow_in_this_process_does_not_call_for_a_new_server(monkeypatch):
    from gradcheck import runtime

    monkeypatch.delenv("KERAS_BACKEND", raising=False)  # as before this process imported TensorFlow
    check(SCALE, input_shape=(4, 5), isolate=True, **QUICK)
    server = forkserver._current
    runtime.quiet_environment()  # what check() in this process does as it imports TensorFlow
    check(SCALE, input_shape=(4, 5), isolate=True, **QUICK)
    assert forkserver._current is server


def test_only_variables_read_at_import_need_a_new_server():
    base = {"PATH": "/usr/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": "/src"}
    same = forkserver._imported_under(base)
    assert forkserver._imported_under({**base, "PYTEST_CURRENT_TEST": "t.py::x (call)", "PATH": "/bin"}) == same
    for name in (
        "TF_ENABLE_ONEDNN_OPTS",
        "KERAS_HOME",
        "CUDA_VISIBLE_DEVICES",
        "PYTHONHASHSEED",
        "HOME",
        "OMP_NUM_THREADS",
    ):
        assert forkserver._imported_under({**base, name: "0"}) != same, name


def test_a_server_killed_under_a_check_is_named_and_replaced_and_its_idle_worker_is_not_reused():
    """One kill (each costs the replacement's TensorFlow import): while the server has a worker
    idle beside the one checking, as the out-of-memory killer could. The check under way is named
    as ended with the server; the idle worker died with it and is not handed the next target,
    which a new server checks."""
    from gradcheck.options import make_options

    options = make_options(input_shape=["4,5"], **QUICK)
    _end_idle_workers()
    outcomes = supervisor.check_targets([(SCALE, options), (SCALE, options)], workers=2)
    assert [outcome.result.ok for outcome in outcomes] == [True, True]
    server = forkserver._current
    idle = list(supervisor._idle)
    assert len(idle) == 2 and {_parent_of(w.process.pid) for w in idle} == {server.process.pid}
    with pytest.raises(GradcheckError) as raised:
        check("tests/data/hostile/in_call.py:KillsItsParent", input_shape=(4, 5), isolate=True, **QUICK)
    # The stage varies: a server with TensorFlow loaded takes some milliseconds to end, and the
    # worker (ended by the kernel as it does) gets that far.
    assert re.match(
        r"gradcheck's fork server, the process the worker was forked from, was ended by SIGKILL while "
        r"[a-z0-9() ]+, and the worker with it\. The kernel's out-of-memory killer sends SIGKILL, and so "
        r"does code that signals its parent \(os\.kill\(os\.getppid\(\), \.\.\.\)\)",
        str(raised.value),
    ), raised.value
    assert supervisor._idle == [idle[0]]  # the other one checked KillsItsParent and was closed
    report = check(SCALE, input_shape=(4, 5), isolate=True, **QUICK)
    assert report.ok
    assert not server.alive and forkserver._current is not server and forkserver._current.alive
    assert idle[0].process.poll() is not None  # it went with the server, and was not used
    worker = supervisor._idle[-1]
    assert worker not in idle and _parent_of(worker.process.pid) == forkserver._current.process.pid


def test_without_fork_each_worker_is_a_python_of_its_own(monkeypatch):
    monkeypatch.setattr(forkserver, "AVAILABLE", False)
    _end_idle_workers()
    report = check(FROZEN, input_shape=(4, 5), isolate=True, **QUICK)
    assert [v.shape for v in report.variables if v.kind == "trainable"] == [(5, 1)]  # frozen here too
    worker = supervisor._idle[-1]
    assert isinstance(worker.process, subprocess.Popen)
    assert worker.process.args[:2] == [sys.executable, "-c"] and _parent_of(worker.process.pid) == os.getpid()
    _end_idle_workers()  # later tests of this process get forked workers again


def test_a_server_that_dies_importing_tensorflow_says_so_with_its_output():
    """A TensorFlow that cannot start here (built for CPU instructions the machine lacks) writes why
    and aborts inside the server's import: the command names that, with what the server wrote. A
    fresh command, cheap here: its supervisor never imports TensorFlow, and this one aborts at once."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "data" / "broken_tensorflow")}
    script = os.path.join(os.path.dirname(sys.executable), "gradcheck")
    completed = subprocess.run(
        [script, SCALE, "--input-shape", "4,5"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 2 and completed.stdout == "", completed
    assert completed.stderr == (
        "gradcheck: gradcheck's fork server, the process that imports TensorFlow and Keras for the workers, was "
        "ended by SIGABRT before it could start one. TensorFlow or Keras cannot be imported in this environment (a "
        "TensorFlow built for CPU instructions this machine lacks ends this way); the captured output holds what "
        'the server wrote. Check that `python -c "import tensorflow, keras"` works with this Python. The target '
        "was not checked.\n"
        f"----- output captured while checking {SCALE} -----\n"
        "[gradcheck's fork server]\n"
        "The TensorFlow library was compiled to use instructions this CPU does not have.\n"
        "-----\n"
    ), completed.stderr
