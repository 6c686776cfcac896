"""How a worker's Python is started: its command line, the environment it imports under, the process.

The supervisor (supervisor.py) starts fork servers with these, and the daemon (daemon.py,
daemon_client.py) starts itself and its servers with the same, so a warm run imports TensorFlow
under what a cold run's worker would. Each is the interpreter gradcheck runs on (sys.executable):
when the system cannot run it (a file that is gone, or that this user may not execute), that is
one paragraph (GradcheckError), never a traceback.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys

from ..errors import GradcheckError
from ..runtime import QUIET_DEFAULTS, WORKER_DEFAULTS


def python_command(code: str) -> list[str]:
    # `-c` puts the working folder first on sys.path; loading.py adds it for a module target only,
    # as `python -m` would, so a file there cannot shadow a library.
    return [sys.executable, "-c", f"import sys; del sys.path[0]; {code}"]


def worker_environment(backend: str | None = None) -> dict[str, str]:
    """The environment a worker of this process gets (for `backend`, else the environment's)."""
    import gradcheck

    # The worker imports this very gradcheck, whatever the caller's sys.path made of it.
    home = os.path.dirname(os.path.dirname(os.path.abspath(gradcheck.__file__)))
    # With the defaults the worker imports TensorFlow under: the same whether or not this process
    # has imported it (check() sets them here), so that import does not call for a new fork server.
    environment = {**QUIET_DEFAULTS, **WORKER_DEFAULTS, **os.environ}
    if backend is not None:  # Keras reads it once, at import: the job's backend, its worker's import
        environment["KERAS_BACKEND"] = backend
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [home, environment.get("PYTHONPATH")]))
    return environment


SERVER = "from gradcheck.isolation.forkserver import serve; serve()"  # a fork server's code (python_command)


def start_child(
    command: list[str], passed: int, output: int, environment: dict[str, str], session: bool = False
) -> subprocess.Popen:
    """Start `command` (a Python) with the file descriptor `passed` kept open and given as its last
    argument, its fd 1 and 2 on `output` and no stdin: the fork server, or a worker where there is
    none (`session`: in a session and process group of its own, as a forked worker is)."""
    return start_python(
        [*command, str(passed)],
        pass_fds=[passed],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        env=environment,
        start_new_session=session,
    )


def start_python(arguments: list[str], **settings) -> subprocess.Popen:
    """subprocess.Popen(arguments, **settings) for a command of python_command's; GradcheckError
    (with what to do) when the system cannot start it."""
    try:
        return subprocess.Popen(arguments, **settings)
    except OSError as error:
        raise GradcheckError(unstartable_message(error, arguments[0])) from None


# The errors of an interpreter that cannot be run (execve's): gone, not executable for this user,
# not a program. Any other (EAGAIN, ENOMEM, EMFILE) is the system refusing a new process.
_INTERPRETER_ERRORS = {
    errno.ENOENT,
    errno.EACCES,
    errno.EPERM,
    errno.ENOEXEC,
    errno.ENOTDIR,
    errno.ELOOP,
    errno.ENAMETOOLONG,
    errno.EISDIR,
    errno.ETXTBSY,
}


def unstartable_message(error: OSError, interpreter: str) -> str:
    """The paragraph for a Python process gradcheck could not start: what failed, the OS's words, what to do."""
    reason = error.strerror or str(error)
    code = errno.errorcode.get(error.errno or 0)
    said = f"{reason}, {code}" if code else reason
    start = "gradcheck could not start a Python process (it checks each layer in a process of its own)"
    if error.errno not in _INTERPRETER_ERRORS:
        return (
            f"{start}: the system refused it ({said}). It is short of memory, processes (ulimit -u) or "
            "open files (ulimit -n): free some, or run fewer checks at once (--jobs 1), and run again."
        )
    if not interpreter:
        return (
            f"{start}: this Python does not know its own interpreter (sys.executable is empty, as in a "
            "program that embeds Python). Run gradcheck from a Python interpreter: the gradcheck "
            "command, or python -m gradcheck."
        )
    return (
        f"{start}: running its interpreter {interpreter} failed ({said}). The processes run the Python "
        f"gradcheck runs on (sys.executable): make sure that file still exists and that this user (uid "
        f"{os.getuid()}) may execute it and read the folders above it (ls -lL {interpreter}), or run "
        "gradcheck from a Python environment this user can execute."
    )
