"""A Python that cannot be started again: exit 2 and one paragraph (what failed, the interpreter, the
OS's words, what to do), never a traceback, nothing left in the temporary folder.

gradcheck starts its fork server, its workers and its daemon with the interpreter it runs on
(sys.executable). Here that is the python of a virtual environment of the test's own (a copy, not
a link to the machine's interpreter), which the command itself makes unusable once it has started:
not executable for this user (as for a user such as nobody in a venv that is not theirs), or gone
(a virtual environment rebuilt while a run went on).
"""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")

SCALE = f"{ROOT / 'tests' / 'data' / 'hostile' / 'in_call.py'}:Scale"
BROKEN = ROOT / "tests" / "data" / "broken_tensorflow"  # a TensorFlow that aborts at import: no import paid
BREAK = {
    "not executable": ("os.chmod(sys.executable, 0o644)", "Permission denied", errno.EACCES),
    "gone": ("os.unlink(sys.executable)", "No such file or directory", errno.ENOENT),
}


def expected(python: Path, reason: str, number: int) -> str:
    return (
        "gradcheck: gradcheck could not start a Python process (it checks each layer in a process of its own): "
        f"running its interpreter {python} failed ({reason}, {errno.errorcode[number]}). The processes run the "
        f"Python gradcheck runs on (sys.executable): make sure that file still exists and that this user (uid "
        f"{os.getuid()}) may execute it and read the folders above it (ls -lL {python}), or run gradcheck from a "
        "Python environment this user can execute.\n"
    )


@pytest.fixture
def python(tmp_path) -> Path:
    """The python of a fresh virtual environment (a copy of the interpreter), with gradcheck and its
    packages on PYTHONPATH."""
    venv.create(tmp_path / "venv", with_pip=False, symlinks=False)
    return tmp_path / "venv" / "bin" / "python"


def _environment(tmp_path: Path, **variables) -> dict:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    path = os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"], *variables.pop("before", [])])
    environment = {**os.environ, "PYTHONPATH": path, "TMPDIR": str(tmp_path / "tmp"), **variables}
    environment.pop("GRADCHECK_DAEMON", None)  # conftest turns the daemon off for the other tests
    return environment


def _command(python: Path, before: str, arguments: list[str], environment: dict, cwd: Path, **options):
    """The gradcheck command run by `python`, which runs `before` first."""
    code = f"import os, sys; {before}; sys.argv[0] = 'gradcheck'; from gradcheck.cli.entry import run; run()"
    return subprocess.run(
        [str(python), "-c", code, *arguments], env=environment, cwd=cwd, capture_output=True, text=True, **options
    )


@pytest.mark.parametrize("how", sorted(BREAK))
def test_a_run_whose_python_cannot_be_started_exits_2_with_one_paragraph(how, python, tmp_path):
    breaking, reason, number = BREAK[how]
    completed = _command(
        python, breaking, [SCALE, "--input-shape", "4,5"], _environment(tmp_path), tmp_path, timeout=60
    )
    assert (completed.returncode, completed.stdout) == (2, ""), completed
    assert completed.stderr == expected(python, reason, number), completed.stderr
    assert os.listdir(tmp_path / "tmp") == []  # nor a capture file, nor a worker's folder


def test_check_isolated_raises_the_same_paragraph(python, tmp_path):
    code = (
        "import os, sys; os.chmod(sys.executable, 0o644)\n"
        "from gradcheck import GradcheckError, check\n"
        "try:\n"
        f"    check({SCALE!r}, input_shape=(4, 5), isolate=True)\n"
        "except GradcheckError as error:\n"
        "    print(error)\n"
    )
    completed = subprocess.run(
        [str(python), "-c", code], env=_environment(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert (completed.returncode, completed.stderr) == (0, ""), completed
    assert completed.stdout == expected(python, "Permission denied", errno.EACCES).removeprefix("gradcheck: ")


def test_a_daemon_that_cannot_be_started_exits_2_with_one_paragraph(python, tmp_path):
    runtime = tempfile.mkdtemp(prefix="gc-")  # short: a socket's path holds at most 107 bytes
    os.chmod(runtime, 0o700)
    environment = _environment(tmp_path, XDG_RUNTIME_DIR=runtime)
    try:
        completed = _command(python, BREAK["gone"][0], ["--daemon", "start"], environment, tmp_path, timeout=60)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert (completed.returncode, completed.stdout) == (2, ""), completed
    assert completed.stderr == expected(python, "No such file or directory", errno.ENOENT), completed.stderr


def test_a_daemon_that_cannot_start_a_fork_server_tells_its_client(python, tmp_path):
    """The daemon runs; then its Python stops being executable, and a run needs a fork server the
    daemon has not started yet (another TF_ variable): the daemon stays, says why in its log, and the
    run exits 2 with the paragraph a cold run gives."""
    runtime = tempfile.mkdtemp(prefix="gc-")
    os.chmod(runtime, 0o700)
    environment = _environment(tmp_path, XDG_RUNTIME_DIR=runtime, before=[str(BROKEN)])
    started = _command(python, "pass", ["--daemon", "start"], environment, tmp_path, timeout=60)
    pid = int(re.search(r"\(pid (\d+)\)", started.stdout).group(1))
    try:
        code = "import sys; sys.stdin.readline(); sys.argv[0] = 'gradcheck'; from gradcheck.cli.entry import run; run()"
        client = subprocess.Popen(
            [str(python), "-c", code, SCALE, "--input-shape", "4,5"],
            env={**environment, "TF_GRADCHECK_TEST_SERVER": "another"},
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.chmod(python, 0o644)  # the client and the daemon are running: their Python was started
        stdout, stderr = client.communicate("\n", timeout=60)
        assert (client.returncode, stdout) == (2, ""), stderr
        assert stderr == expected(python, "Permission denied", errno.EACCES), stderr
        log = next(Path(runtime, "gradcheck").glob("*.log")).read_text()
        assert " could not start a fork server: gradcheck could not start a Python process " in log, log
        assert Path(f"/proc/{pid}").exists()  # the daemon stays
        assert os.listdir(tmp_path / "tmp") == []
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        shutil.rmtree(runtime, ignore_errors=True)
