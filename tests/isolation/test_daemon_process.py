"""Real daemons (`gradcheck --daemon`) whose fork servers cannot import TensorFlow: a TensorFlow that
aborts at once (tests/data/broken_tensorflow) is first on PYTHONPATH, so no test here pays for an
import (they are not in the fast lane because they wait on processes for seconds). What is shown:
start, status and stop in one line each, a second start reporting the running daemon, the socket
and folder modes, another user's connection closed unread, the idle end, an out-of-date daemon
(gradcheck's files edited, TensorFlow upgraded) replaced, a socket path that is not a socket
refused, and a run through the daemon telling a server's death as a cold run does. The daemon's runs of real layers: test_daemon.py."""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT

from gradcheck.isolation import daemon_place

BROKEN = ROOT / "tests" / "data" / "broken_tensorflow"
SCALE = str(ROOT / "tests" / "data" / "hostile" / "in_call.py") + ":Scale"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the daemon is Linux's")


@dataclass
class Project:
    folder: Path
    environment: dict
    runtime: str
    pids: list = field(default_factory=list)

    def gradcheck(self, *args, cwd=None, **variables) -> subprocess.CompletedProcess:
        environment = {**self.environment, **variables}
        return subprocess.run(
            [sys.executable, "-m", "gradcheck", *args],
            cwd=cwd or self.folder,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, **variables) -> int:
        started = self.gradcheck("--daemon", **variables)
        assert started.returncode == 0 and started.stderr == "", started
        pid = int(re.search(r"\(pid (\d+)", started.stdout).group(1))
        self.pids.append(pid)
        return pid

    @property
    def place(self) -> daemon_place.Place:
        previous = os.environ.get("XDG_RUNTIME_DIR")
        os.environ["XDG_RUNTIME_DIR"] = self.runtime
        try:
            return daemon_place.place_for(str(self.folder), create=False)
        finally:
            if previous is None:
                del os.environ["XDG_RUNTIME_DIR"]
            else:
                os.environ["XDG_RUNTIME_DIR"] = previous


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _running(pid)


@pytest.fixture
def project(tmp_path):
    runtime = tempfile.mkdtemp(prefix="gc-")  # short: a socket's path holds at most 107 bytes
    os.chmod(runtime, 0o700)
    folder = tmp_path / "project"
    (folder / "sub").mkdir(parents=True)
    (folder / "pyproject.toml").write_text("")
    path = os.pathsep.join(filter(None, [str(BROKEN), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "XDG_RUNTIME_DIR": runtime, "PYTHONPATH": path}
    environment.pop("GRADCHECK_DAEMON", None)  # conftest turns the daemon off for the other tests
    made = Project(folder, environment, runtime)
    yield made
    for pid in made.pids:  # the daemons this test started, whatever it left
        if _running(pid):
            os.kill(pid, signal.SIGTERM)
            assert _gone(pid)
    shutil.rmtree(runtime, ignore_errors=True)


def test_start_status_and_stop_each_answer_in_one_line(project):
    pid = project.start()
    place = project.place
    assert stat.S_IMODE(os.stat(place.folder).st_mode) == 0o700
    assert stat.S_ISSOCK(os.lstat(place.socket).st_mode) and stat.S_IMODE(os.lstat(place.socket).st_mode) == 0o600
    again = project.gradcheck("--daemon")
    assert again.returncode == 0 and again.stderr == ""
    assert re.fullmatch(
        rf"gradcheck's daemon already runs for {re.escape(str(project.folder))} \(pid {pid}, since \d\d:\d\d, idle "
        r"\d+ seconds?, ends after 20 minutes idle; fork servers: [a-z ,]+\); `gradcheck --daemon stop` ends it\.\n",
        again.stdout,
    ), again.stdout
    status = project.gradcheck("--daemon", "status", cwd=project.folder / "sub")  # the project's, from below
    assert status.returncode == 0 and status.stdout.startswith(
        f"gradcheck's daemon runs for {project.folder} (pid {pid}, since "
    ), status
    assert status.stdout.endswith(f"; its log: {place.log}.\n"), status.stdout
    assert (
        Path(place.log)
        .read_text()
        .split("\n")[0]
        .endswith(f" started for {project.folder} (pid {pid}, {sys.executable}); ends after 1200 s idle")
    )
    stopped = project.gradcheck("--daemon", "stop")
    assert (stopped.returncode, stopped.stdout) == (
        0,
        f"gradcheck's daemon for {project.folder} (pid {pid}) was stopped.\n",
    )
    assert not _running(pid) and not os.path.lexists(place.socket)
    none = project.gradcheck("--daemon", "status")
    assert (none.returncode, none.stdout, none.stderr) == (1, f"No gradcheck daemon runs for {project.folder}.\n", "")


def test_a_run_through_the_daemon_tells_what_a_cold_run_tells(project):
    """A fork server that dies importing TensorFlow, with what it wrote: relayed byte for byte."""
    pid = project.start()
    cold = project.gradcheck(SCALE, "--input-shape", "4,5", GRADCHECK_DAEMON="off")
    warm = project.gradcheck(SCALE, "--input-shape", "4,5")
    assert cold.returncode == 2 and "was ended by SIGABRT before it could start one" in cold.stderr, cold
    assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    log = Path(project.place.log).read_text()
    assert re.search(r" the fork server \d+ had ended \(by SIGABRT\)\n", log), log  # and the daemon stayed
    assert _running(pid)


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_another_users_connection_is_closed_unread(project):
    """A child that becomes nobody (65534) connects: through the private folder it cannot; with the
    folder and socket opened to everyone, the daemon asks the kernel who it is and closes it."""
    pid = project.start()
    place = project.place

    def connect_as_nobody() -> str:
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                os.setgid(65534)
                os.setuid(65534)
                connected = socket.socket(socket.AF_UNIX)
                connected.settimeout(10)
                connected.connect(place.socket)
                seen = f"read {connected.recv(100)!r}"
            except OSError as error:
                seen = type(error).__name__
            os.write(writer, seen.encode())
            os._exit(0)
        os.close(writer)
        os.waitpid(child, 0)
        with os.fdopen(reader) as told:
            return told.read()

    assert connect_as_nobody() == "PermissionError"
    for path, mode in ((project.runtime, 0o711), (place.folder, 0o711), (place.socket, 0o777)):
        os.chmod(path, mode)
    try:
        assert connect_as_nobody() == "read b''"
    finally:
        for path, mode in ((project.runtime, 0o700), (place.folder, 0o700), (place.socket, 0o600)):
            os.chmod(path, mode)
    assert re.search(
        r" refused a connection from uid 65534 \(pid \d+\): not this daemon's user\n", Path(place.log).read_text()
    )
    assert project.gradcheck("--daemon", "status").returncode == 0 and _running(pid)


def test_the_daemon_ends_after_its_idle_time_and_removes_its_socket(project):
    pid = project.start(GRADCHECK_DAEMON_IDLE="0.5")
    assert _gone(pid)
    log = Path(project.place.log).read_text()
    assert " idle for 0.5 s: ending\n" in log and log.endswith(" ended\n"), log
    assert not os.path.lexists(project.place.socket)


def test_an_out_of_date_daemon_is_replaced_at_start_and_by_a_run(project, tmp_path):
    """Its gradcheck's files changed: on a copy of the package, which the daemon runs too."""
    shutil.copytree(ROOT / "gradcheck", tmp_path / "copy" / "gradcheck", ignore=shutil.ignore_patterns("__pycache__"))
    copy = os.pathsep.join([str(tmp_path / "copy"), project.environment["PYTHONPATH"]])
    old = project.start(PYTHONPATH=copy)
    with open(tmp_path / "copy" / "gradcheck" / "codes.py", "a") as edited:
        edited.write("# edited\n")
    started = project.gradcheck("--daemon", PYTHONPATH=copy)
    new = int(re.search(r"\(pid (\d+)\)", started.stdout).group(1))
    project.pids.append(new)
    assert started.stdout == (
        f"gradcheck's daemon started for {project.folder} (pid {new}), replacing pid {old}, which was out of date "
        "(gradcheck's files have changed since it started): runs here now fork their workers from it. It ends "
        "after 20 minutes idle, or with `gradcheck --daemon stop`.\n"
    ), started
    assert _gone(old)
    with open(tmp_path / "copy" / "gradcheck" / "codes.py", "a") as edited:
        edited.write("# edited again\n")
    run = project.gradcheck(SCALE, "--input-shape", "4,5", "--debug", PYTHONPATH=copy)
    lines = run.stderr.splitlines()
    newest = int(re.search(r"replaced by pid (\d+)\.", lines[0]).group(1))
    project.pids.append(newest)
    assert lines[:2] == [
        f"gradcheck: the daemon (pid {new}) was out of date (gradcheck's files have changed since it started): "
        f"replaced by pid {newest}.",
        f"gradcheck: the workers are forked by the daemon of {project.folder} (pid {newest}).",
    ], run.stderr
    assert _gone(new) and _running(newest)


def test_an_upgraded_tensorflow_replaces_the_daemon_at_the_next_run(project, tmp_path):
    """Its dist-info renamed, as pip leaves it after an upgrade, in a user site of the test's own
    (PYTHONUSERBASE), which the daemon's fingerprint and the client's both list (tensorflow-cpu,
    another distribution of TensorFlow: the environment's own tensorflow entry stays as it is)."""
    base = tmp_path / "userbase"
    packages = base / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (packages / "tensorflow_cpu-2.21.0.dist-info").mkdir(parents=True)
    old = project.start(PYTHONUSERBASE=str(base))
    os.rename(packages / "tensorflow_cpu-2.21.0.dist-info", packages / "tensorflow_cpu-2.21.1.dist-info")
    run = project.gradcheck(SCALE, "--input-shape", "4,5", "--debug", PYTHONUSERBASE=str(base))
    lines = run.stderr.splitlines()
    newest = int(re.search(r"replaced by pid (\d+)\.", lines[0]).group(1))
    project.pids.append(newest)
    assert lines[:2] == [
        f"gradcheck: the daemon (pid {old}) was out of date (the installed packages have changed "
        f"(tensorflow_cpu-2.21.0 is now tensorflow_cpu-2.21.1)): replaced by pid {newest}.",
        f"gradcheck: the workers are forked by the daemon of {project.folder} (pid {newest}).",
    ], run.stderr
    assert _gone(old) and _running(newest)


def test_a_socket_path_that_is_not_a_socket_is_refused(project):
    os.mkdir(os.path.join(project.runtime, "gradcheck"), 0o700)
    place = project.place
    Path(place.socket).write_text("planted")
    refused = project.gradcheck("--daemon")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"gradcheck: {place.socket} is not a socket; it was not used as gradcheck's daemon socket. Remove it.\n"
    )
    assert Path(place.socket).read_text() == "planted"  # nothing of the user's changed
