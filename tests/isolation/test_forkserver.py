"""Workers are forked from one process that has TensorFlow imported (forkserver.py), on Linux.

What must hold: every target gets a fresh worker, forked from the same server (TensorFlow is
imported once per command, not once per target); a worker sees the environment of the moment it
was forked; a server killed under a check is named as such and replaced, and the spare it had
forked for the next target is not used; and without fork (other systems) each worker is a Python
of its own. The checks go through check(isolate=True), the command's own supervisor. That the
server imports TensorFlow quietly, as a worker does, is tests/test_config.py's fresh command under --debug.
"""

import os
import re
import subprocess
import sys
import time

import pytest
from conftest import ROOT

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


def test_every_target_gets_a_fresh_worker_forked_from_the_same_server():
    check(SCALE, input_shape=(4, 5), isolate=True, **QUICK)
    server = forkserver._current
    issued = len(server._issued)
    with pytest.raises(GradcheckError, match=r"^The layer's code called os\._exit\(0\)"):
        check("tests/data/hostile/in_call.py:OsExitInCall", input_shape=(4, 5), isolate=True, **QUICK)
    assert check(SCALE, input_shape=(4, 5), isolate=True, **QUICK).ok
    assert check(SCALE, input_shape=(4, 5), isolate=True, **QUICK).ok
    assert forkserver._current is server and server.alive
    tokens = server._issued[issued:]
    assert len(tokens) == 3  # one worker per target, none kept for the next one
    pids = [server._pids[token] for token in tokens]
    assert len(set(pids)) == 3
    server.drain(1.0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(token in server._ended for token in tokens):
        server.drain(0.1)  # each worker ends by itself once its result is sent
    assert [server._ended.get(token) for token in tokens] == [0, 0, 0]


def test_a_worker_sees_the_environment_of_the_moment_it_was_forked(monkeypatch):
    check(SCALE, input_shape=(4, 5), isolate=True, **QUICK)
    server = forkserver._current
    monkeypatch.setenv("GRADCHECK_TEST_WIDTH", "3")  # after the server started
    report = check("tests/data/environment_layer.py:WidthFromEnvironment", input_shape=(4, 5), isolate=True, **QUICK)
    assert [v.shape for v in report.variables if v.kind == "trainable"] == [(5, 3)]
    assert forkserver._current is server  # not a variable TensorFlow reads at import: no new server


FROZEN = "tests/data/environment_layer.py:WidthFromFrozenObjects"


def test_a_worker_never_walks_tensorflows_objects_in_its_collections():
    """Each target starts with clear_session()'s gc.collect(): with TensorFlow's ~270,000 objects
    frozen by the server before it forks, that is cheap (bench/worker_start.py)."""
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


def test_a_server_killed_under_a_check_is_named_and_replaced_and_its_spare_is_not_used():
    """One kill (each costs the replacement's TensorFlow import): while the server has a spare
    forked for the next target, as the out-of-memory killer could. The check under way is named as
    ended with the server; the spare died with it and is not handed the next target, which a
    worker of a new server checks."""
    from gradcheck.options import make_options

    options = make_options(input_shape=["4,5"], **QUICK)
    check(SCALE, input_shape=(4, 5), isolate=True, **QUICK)
    server = forkserver._current
    issued = len(server._issued)
    killer, after = supervisor.check_targets(
        [("tests/data/hostile/in_call.py:KillsItsParent", options), (SCALE, options)], workers=1
    )
    spare = 1 if supervisor._cpus() > 1 else 0  # a spare is forked beside the check where a CPU is free
    assert len(server._issued) == issued + 1 + spare
    # The stage varies: a server with TensorFlow loaded takes some milliseconds to end, and the
    # worker (ended by the kernel as it does) gets that far.
    assert re.match(
        r"gradcheck's fork server, the process the worker was forked from, was ended by SIGKILL while "
        r"[a-z0-9() ]+, and the worker with it\. The kernel's out-of-memory killer sends SIGKILL, and so "
        r"does code that signals its parent \(os\.kill\(os\.getppid\(\), \.\.\.\)\)",
        killer.result.message,
    ), killer.result.message
    assert after.result.ok
    assert not server.alive and forkserver._current is not server and forkserver._current.alive
    assert len(forkserver._current._issued) == 1  # the second target's worker, from the new server


def test_without_fork_each_worker_is_a_python_of_its_own(monkeypatch):
    started = []
    start_child = supervisor.start_child

    def recorded(*args, **kwargs):
        started.append((start_child(*args, **kwargs), kwargs))
        return started[-1][0]

    monkeypatch.setattr(forkserver, "AVAILABLE", False)
    monkeypatch.setattr(supervisor, "start_child", recorded)
    report = check(FROZEN, input_shape=(4, 5), isolate=True, **QUICK)
    assert [v.shape for v in report.variables if v.kind == "trainable"] == [(5, 1)]  # frozen here too
    [(process, keywords)] = started
    assert process.args[:2] == [sys.executable, "-c"] and keywords == {"session": True}
    assert process.wait(10) == 0  # it ended by itself after its one target


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
