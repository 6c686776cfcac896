"""Nothing gradcheck creates outlives its processes in the temporary folder, however they end: a worker
that ends with os._exit (so no atexit cleanup runs) or is killed with SIGKILL, a fork server killed
with SIGKILL, a daemon killed with SIGKILL (its log and lock stay in its runtime folder, by design).

Each test points TMPDIR at a folder of its own and lists it afterwards. The layers:
tests/data/hostile/temporary_files.py.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT

from gradcheck.isolation import daemon_place

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")

LAYERS = "tests/data/hostile/temporary_files.py"
BROKEN = ROOT / "tests" / "data" / "broken_tensorflow"  # a TensorFlow that aborts at import: no import paid


def _environment(temporary: Path, **variables) -> dict:
    environment = {**os.environ, "TMPDIR": str(temporary), **variables}
    environment.pop("GRADCHECK_DAEMON", None)  # conftest turns the daemon off for the other tests
    return environment


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """One real command over three targets (a fresh command: its own fork server, which the last one
    kills): AutoGraph's generated module in a worker that ends as usual, a worker killed with SIGKILL
    while the reload check saves the layer, then the fork server killed the same way."""
    project = tmp_path_factory.mktemp("project")
    temporary = tmp_path_factory.mktemp("tmp")
    targets = ["ConvertedByAutoGraph", "KillsItsWorkerWhileSaved", "KillsItsServerWhileSaved"]
    (project / "pyproject.toml").write_text(
        "".join(
            f'[[tool.gradcheck.targets]]\ntarget = "{ROOT / LAYERS}:{name}"\ninput-shape = ["4,3"]\n\n'
            for name in targets
        )
    )
    completed = subprocess.run(
        [sys.executable, "-m", "gradcheck", "--jobs", "1", "--no-numeric", "--json"],
        cwd=project,
        env=_environment(temporary, GRADCHECK_DAEMON="off"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return completed, temporary


def test_a_worker_that_ends_with_os_exit_leaves_no_autograph_module(killed_run):
    completed, temporary = killed_run
    first = json.loads(completed.stdout)["targets"][0]
    assert first["target"].endswith(":ConvertedByAutoGraph") and first["ok"] is True, completed
    assert sorted(os.listdir(temporary)) == [], completed


def test_a_worker_or_fork_server_killed_while_saving_leaves_nothing(killed_run):
    completed, temporary = killed_run
    assert completed.returncode == 2, completed
    assert completed.stderr.splitlines() == [
        f"gradcheck: {ROOT / LAYERS}:KillsItsWorkerWhileSaved: The worker checking it was killed (SIGKILL) while "
        "saving and reloading the layer. The kernel's out-of-memory killer ends a process this way: use a smaller "
        "--input-shape, or look at the layer's memory use. The target was not checked.",
        f"gradcheck: {ROOT / LAYERS}:KillsItsServerWhileSaved: gradcheck's fork server, the process the worker was "
        "forked from, was ended by SIGKILL while saving and reloading the layer, and the worker with it. The kernel's "
        "out-of-memory killer sends SIGKILL, and so does code that signals its parent (os.kill(os.getppid(), ...)): "
        "look at the layer's memory use and at what its code signals. The target was not checked.",
    ], completed.stderr
    assert sorted(os.listdir(temporary)) == [], completed  # no .keras folder, capture or server output


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _place(project: Path, runtime: str) -> daemon_place.Place:
    previous = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = runtime
    try:
        return daemon_place.place_for(str(project), create=False)
    finally:
        if previous is None:
            del os.environ["XDG_RUNTIME_DIR"]
        else:
            os.environ["XDG_RUNTIME_DIR"] = previous


def test_a_daemon_killed_with_sigkill_leaves_only_its_log_and_lock(tmp_path):
    """Its fork server (one that aborts importing TensorFlow here) wrote to a file without a name: the
    temporary folder stays empty. The socket goes at the next command that looks for the daemon;
    the log (what a user reads afterwards) and the lock (how a dead daemon is told from a starting
    one) are the daemon's files in its runtime folder, kept on purpose."""
    temporary, project = tmp_path / "tmp", tmp_path / "project"
    temporary.mkdir()
    project.mkdir()
    runtime = tempfile.mkdtemp(prefix="gc-")  # short: a socket's path holds at most 107 bytes
    os.chmod(runtime, 0o700)
    path = os.pathsep.join(filter(None, [str(BROKEN), os.environ.get("PYTHONPATH")]))
    environment = _environment(temporary, XDG_RUNTIME_DIR=runtime, PYTHONPATH=path)

    def gradcheck(*args) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "gradcheck", *args]
        return subprocess.run(command, cwd=project, env=environment, capture_output=True, text=True, timeout=60)

    started = gradcheck("--daemon", "start")
    pid = int(re.search(r"\(pid (\d+)\)", started.stdout).group(1))
    try:
        place = _place(project, runtime)
        deadline = time.monotonic() + 30
        while " started a fork server " not in Path(place.log).read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        while _running(pid):
            time.sleep(0.01)
        assert sorted(os.listdir(temporary)) == []
        files = [os.path.basename(p) for p in (place.lock, place.log, place.socket)]
        assert sorted(os.listdir(place.folder)) == sorted(files)
        status = gradcheck("--daemon", "status")
        assert (status.returncode, status.stdout) == (1, f"No gradcheck daemon runs for {project}.\n"), status
        assert sorted(os.listdir(place.folder)) == sorted(files[:2])  # the dead daemon's socket went
        assert sorted(os.listdir(temporary)) == []
    finally:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(runtime, ignore_errors=True)
