"""Runs of real layers through one daemon (`gradcheck --daemon`), shared by the module: its fork
server imports TensorFlow once (about 3 CPU-seconds), each run costs a fork and a check. Each run
is the installed command, as a user types it. What must hold: a warm run prints the cold run's
bytes and its command imports no framework; an edited layer file, or helper module it imports, is
checked as edited; the worker has its command's temporary folder, working folder, umask and
priority; --backend all is served by a fork server per backend with the cold report, and a failing
run exits 1, a bad option 2, as cold; a target that exits or crashes in its worker is told as in a
cold run and the daemon stays; Ctrl-C, SIGTERM or a kill of the command ends its worker and not the
daemon; and a daemon that dies mid-run is named in the message of the target it was checking (exit
2), the next command running cold. The daemon's folder, socket, users, idle end and replacement,
with no TensorFlow: test_daemon_process.py."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, process_stats, run_cli_shared

SCRIPT = Path(sys.executable).parent / "gradcheck"
SAMPLE = ["sample_layers/classic.py:DenseWithActivation", "--init", "units=4", "--input-shape", "16,5", "--json"]
QUICK = ["--input-shape", "4,5", "--no-numeric", "--no-reload"]  # a verdict nobody reads here
HOSTILE = "tests/data/hostile/in_call.py"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the daemon is Linux's")


@dataclass
class Daemon:
    pid: int
    environment: dict
    log: str

    def run(self, *args, **popen) -> subprocess.CompletedProcess:
        popen.setdefault("env", self.environment)
        popen.setdefault("cwd", ROOT)
        return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300, **popen)

    def workers(self) -> list[int]:
        """The processes under the daemon's fork servers: the workers (and what their layers started)."""
        parents = {pid: int(fields[1]) for pid, fields in process_stats().items() if fields[0] != "Z"}
        servers = [pid for pid, parent in parents.items() if parent == self.pid]
        return [pid for pid, parent in parents.items() if parent in servers]


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _until(condition, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


@pytest.fixture(scope="module")
def daemon():
    runtime = tempfile.mkdtemp(prefix="gc-")  # short: a socket's path holds at most 107 bytes
    os.chmod(runtime, 0o700)
    environment = {**os.environ, "XDG_RUNTIME_DIR": runtime}
    environment.pop("GRADCHECK_DAEMON", None)  # conftest turns the daemon off for the other tests
    started = subprocess.run(
        [str(SCRIPT), "--daemon"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0, started
    pid = int(re.search(r"\(pid (\d+)\)", started.stdout).group(1))
    [log] = Path(runtime, "gradcheck").glob("*.log")
    yield Daemon(pid, environment, str(log))
    if _running(pid):
        os.kill(pid, signal.SIGTERM)
        assert _until(lambda: not _running(pid))
    shutil.rmtree(runtime, ignore_errors=True)


def test_a_warm_run_prints_the_cold_runs_bytes_and_its_command_imports_no_framework(daemon, tmp_path):
    cold = run_cli_shared(SAMPLE)  # in this process's own fork server (the sample's shared run)
    modules = tmp_path / "modules.txt"
    hook = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(modules)!r}, 'w').write(str(['tensorflow' in sys.modules, 'keras' in sys.modules])))\n"
        "from gradcheck.cli.entry import run\n"
        "run()\n"
    )
    warm = subprocess.run(
        [sys.executable, "-c", hook, *SAMPLE, "--debug"],
        cwd=ROOT,
        env=daemon.environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert warm.returncode == cold.exit_code == 0, warm
    assert warm.stdout == cold.stdout
    assert warm.stderr.startswith(f"gradcheck: the workers are forked by the daemon of {ROOT} (pid {daemon.pid}).\n")
    assert modules.read_text() == "[False, False]"


LAYER = """import keras


class Grows(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], {units}))

    def call(self, inputs):
        return inputs @ self.kernel
"""


def test_an_edited_layer_file_is_imported_again(daemon, tmp_path):
    layer = tmp_path / "growing.py"
    shapes = []
    for units in (3, 11):  # lengths differ too: an edit within the same second is still seen
        layer.write_text(LAYER.format(units=units))
        result = daemon.run(f"{layer}:Grows", *QUICK, "--json")
        assert result.returncode == 0, result
        shapes.append([v["shape"] for v in json.loads(result.stdout)["variables"]])
    assert shapes == [[[5, 3]], [[5, 11]]]


HELPED = """import keras

from widths import UNITS


class Helped(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], UNITS))

    def call(self, inputs):
        return inputs @ self.kernel
"""


def test_an_edited_helper_module_the_layer_imports_is_imported_again(daemon, tmp_path):
    (tmp_path / "helped.py").write_text(HELPED)
    shapes = []
    for units in (3, 11):
        (tmp_path / "widths.py").write_text(f"UNITS = {units}\n")
        result = daemon.run(f"{tmp_path / 'helped.py'}:Helped", *QUICK, "--json")
        assert result.returncode == 0, result
        shapes.append([v["shape"] for v in json.loads(result.stdout)["variables"]])
    assert shapes == [[[5, 3]], [[5, 11]]]


SEES = """import json, os, tempfile
import keras


class Sees(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 2))
        seen = [tempfile.gettempdir(), os.getcwd(), os.umask(0o022), os.getpriority(os.PRIO_PROCESS, 0)]
        with open(os.environ["SEEN"], "w") as told:
            json.dump(seen, told)

    def call(self, inputs):
        return inputs @ self.kernel
"""


def test_the_worker_has_the_commands_temporary_folder_working_folder_umask_and_priority(daemon, tmp_path):
    """Not the daemon's, which its fork server was started with (a cold run's worker inherits the
    command's); the working folder is the command's, a subfolder of the daemon's project. The
    temporary folder is the worker's own, made in the command's and removed after it (capture.py)."""
    (tmp_path / "sees.py").write_text(SEES)
    (tmp_path / "tmp").mkdir()
    seen = tmp_path / "seen.json"
    nice = os.getpriority(os.PRIO_PROCESS, 0)

    def as_started() -> None:
        os.umask(0o027)
        os.nice(2)

    result = daemon.run(
        f"{tmp_path / 'sees.py'}:Sees",
        *QUICK,
        "--debug",
        env={**daemon.environment, "SEEN": str(seen), "TMPDIR": str(tmp_path / "tmp")},
        preexec_fn=as_started,
        cwd=ROOT / "tests",
    )
    assert result.returncode == 0 and f"(pid {daemon.pid})" in result.stderr.splitlines()[0], result
    temporary, *rest = json.loads(seen.read_text())
    assert os.path.dirname(temporary) == str(tmp_path / "tmp") and os.path.basename(temporary).startswith("gradcheck-")
    assert rest == [str(ROOT / "tests"), 0o027, min(nice + 2, 19)]
    assert os.listdir(tmp_path / "tmp") == []


def test_every_backend_is_served_and_a_failing_or_misused_run_exits_as_a_cold_one(daemon):
    """--backend all: a fork server per backend in the daemon; the report and exit status 1 of the
    cold run (shared with test_samples.py). A bad option: the cold run's paragraph and exit 2."""
    args = ["sample_layers/portable.py:ArgmaxGate", "--input-shape", "16,5", "--backend", "all", "--json"]
    cold = run_cli_shared(args)
    warm = daemon.run(*args)
    assert (warm.returncode, cold.exit_code) == (1, 1), warm
    assert warm.stdout == cold.stdout and warm.stderr == "", warm.stderr
    status = daemon.run("--daemon", "status")
    assert "; fork servers: jax, tensorflow, torch);" in status.stdout, status.stdout
    bad = [*SAMPLE, "--input-shape", "16,x"]
    cold_bad = daemon.run(*bad, env={**daemon.environment, "GRADCHECK_DAEMON": "off"})
    warm_bad = daemon.run(*bad)
    assert (warm_bad.returncode, warm_bad.stdout, warm_bad.stderr) == (2, "", cold_bad.stderr), warm_bad
    assert cold_bad.returncode == 2 and cold_bad.stderr.startswith("gradcheck: "), cold_bad


def test_a_target_that_exits_or_crashes_is_told_as_in_a_cold_run_and_the_daemon_stays(daemon):
    line = next(n for n, text in enumerate((ROOT / HOSTILE).read_text().splitlines(), 1) if "os._exit(0)" in text)
    exited = daemon.run(f"{HOSTILE}:OsExitInCall", *QUICK)
    assert (exited.returncode, exited.stdout) == (2, ""), exited
    assert exited.stderr == (
        f"gradcheck: The layer's code called os._exit(0) at {HOSTILE}:{line} while building and calling the layer. "
        "An exit is never a pass: remove the call from the code being checked. The target was not checked.\n"
    )
    crashed = daemon.run(f"{HOSTILE}:Segfault", *QUICK)
    assert (crashed.returncode, crashed.stdout) == (2, ""), crashed
    assert crashed.stderr.startswith(
        "gradcheck: The worker checking it crashed (SIGSEGV) while building and calling the layer. The crash is "
        "in native code (TensorFlow or an extension the layer calls); the captured output holds the Python stack "
        f"at the crash. The target was not checked.\n----- output captured while checking {HOSTILE}:Segfault -----\n"
        "Fatal Python error: Segmentation fault"
    ), crashed.stderr
    after = daemon.run(f"{HOSTILE}:Scale", *QUICK, "--debug")
    assert after.returncode == 0 and f"(pid {daemon.pid})" in after.stderr.splitlines()[0], after
    assert _running(daemon.pid) and daemon.workers() == []


def _signals_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    "signum, status, word",
    [
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),
        (signal.SIGKILL, -signal.SIGKILL, None),  # the command killed outright: the daemon notices alone
    ],
)
def test_a_stopped_or_killed_command_ends_its_worker_and_not_the_daemon(daemon, tmp_path, signum, status, word):
    mark = tmp_path / "in-call"  # made by the layer once its call() runs
    command = subprocess.Popen(
        [str(SCRIPT), "tests/data/bad_layers.py:Hangs", *QUICK],
        cwd=ROOT,
        env={**daemon.environment, "HANG_MARK": str(mark)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_signals_as_in_a_terminal,
    )
    assert _until(mark.exists, 120), "the layer's call() never ran"
    [worker] = daemon.workers()
    command.send_signal(signum)
    stdout, stderr = command.communicate(timeout=60)
    assert command.returncode == status and stdout == ""
    if word:
        assert stderr == f"gradcheck: {word}; the checks were stopped and no report was written.\n"
    assert _until(lambda: not _running(worker), 10), "the worker outlived its command"
    assert _running(daemon.pid) and daemon.run("--daemon", "status").returncode == 0


def test_a_daemon_that_dies_mid_run_is_named_and_the_next_command_runs_cold(daemon, tmp_path):
    """Last: it kills the module's daemon."""
    mark = tmp_path / "in-call"
    command = subprocess.Popen(
        [str(SCRIPT), "tests/data/bad_layers.py:Hangs", *QUICK],
        cwd=ROOT,
        env={**daemon.environment, "HANG_MARK": str(mark)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert _until(mark.exists, 120), "the layer's call() never ran"
    [worker] = daemon.workers()
    os.kill(daemon.pid, signal.SIGKILL)
    stdout, stderr = command.communicate(timeout=60)
    assert (command.returncode, stdout) == (2, "")
    assert stderr == (
        "gradcheck: gradcheck's daemon (gradcheck --daemon), which forks the workers, ended while building and "
        f"calling the layer, and its workers with it. Its log may say why: {daemon.log}. The next targets and "
        "runs are checked without it until `gradcheck --daemon` starts a new one. The target was not checked.\n"
    )
    assert _until(lambda: not _running(worker), 10)
    gone = daemon.run("--daemon", "status")  # the dead daemon's socket is found and removed
    assert (gone.returncode, gone.stdout) == (1, f"No gradcheck daemon runs for {ROOT}.\n")
    assert not list(Path(daemon.log).parent.glob("*.sock"))
