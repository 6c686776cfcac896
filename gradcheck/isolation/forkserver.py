"""Start worker processes by forking one that has TensorFlow imported, rather than importing it again.

A worker's start is mostly `import tensorflow, keras` (about 5 CPU-seconds here). A run starts a
fresh worker for every target whose worker died (an exit, a crash, a time limit) and one per job
with --jobs N, and check(isolate=True) does so for each such target of a session. The fork server
is a process the supervisor starts once: it imports TensorFlow, Keras and gradcheck's own modules
and then only forks, so each further worker costs a fork.

It never runs the code under check and never runs a TensorFlow op, so each fork starts as clean as a
fresh interpreter: no user module imported, no TensorFlow runtime (its thread pools are made at the
first op, in the worker). Forking a process that has TensorFlow loaded is not safe on macOS, so
the server is used on Linux only; elsewhere supervisor.py starts each worker with its own interpreter.

    supervisor -> server   ("fork", token, capture path, environment, attributes or None) then the
                           worker's pipe end (SCM_RIGHTS); capture path: the file for the worker's fd 1
                           and 2, in the folder the supervisor made for it, which is also the worker's
                           temporary folder (capture.py); attributes: what a daemon's client has
                           besides its environment (umask, limits: inherited.py)
                           ("signal", token, signal number)
    server -> supervisor   ("forked", token, pid)  ("ended", token, returncode as Popen gives it)

The server ends when the supervisor's end of its pipe closes, and ends its workers with it. It is
a child subreaper, as each worker is (descendants.py): when a worker dies without ending what its
layer started (os._exit, a crash, a worker killed at its time limit), those processes are handed
to the server, which kills them. Each worker is the leader of a session of its own, so a layer that
signals its process group (`os.killpg(0, ...)`) reaches only its own worker and what it started.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import Connection, Pipe, wait
from multiprocessing.reduction import recv_handle, send_handle

from . import descendants, inherited
from .capture import UnnamedFile, temporary_folder_of
from .launch import start_child

AVAILABLE = sys.platform.startswith("linux")
_real_exit = os._exit  # the worker replaces os._exit with one that reports its caller (worker.py)


def returncode(status: int) -> int:
    """A waitpid status as Popen.returncode gives it: the exit status, or minus the signal number."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


class ForkServer:
    """The supervisor's end of one fork server process."""

    def __init__(self, command: list[str], environment: dict[str, str]) -> None:
        self.environment = environment
        self.control, server_end = Pipe()
        self._tokens = itertools.count()
        self._issued: list[int] = []
        self._pids: dict[int, int] = {}  # token -> pid, once forked
        self._ended: dict[int, int] = {}  # token -> returncode
        self.orphaned: set[int] = set()  # tokens whose worker ended with the server: the server's returncode
        # What the server itself writes: nothing, unless its import crashes it (a TensorFlow built
        # for instructions this CPU lacks says so, then aborts). Shown with the checks it took down.
        self.capture = UnnamedFile("gradcheck-server-")  # nothing to leave behind (capture.py)
        try:
            self.process = start_child(command, server_end.fileno(), self.capture.fd, environment)
        except BaseException:  # its Python cannot be started (launch.py)
            self.control.close()
            self.capture.close()
            raise
        finally:
            server_end.close()

    @property
    def alive(self) -> bool:
        return not self.control.closed and self.process.poll() is None

    @property
    def receiver_pid(self) -> int:
        """The process a worker's pipe end is handed to (send_handle): this server."""
        return self.process.pid

    def start(
        self, capture_path: str, worker_end: Connection, environment: dict[str, str], attributes: dict | None = None
    ) -> ForkedProcess:
        """Ask for a worker whose fd 1 and 2 append to `capture_path`, which serves `worker_end` and
        whose os.environ is `environment` (and umask and limits `attributes`, else the server's)."""
        token = next(self._tokens)
        self._issued.append(token)
        try:
            self.control.send(("fork", token, capture_path, environment, attributes))
            send_handle(self.control, worker_end.fileno(), self.receiver_pid)
        except OSError:
            self._lost()
        return ForkedProcess(self, token)

    def drain(self, timeout: float = 0.0) -> None:
        """Take in what the server has said, waiting up to `timeout` seconds for the first message."""
        try:
            while not self.control.closed and self.control.poll(timeout):
                kind, token, value = self.control.recv()
                (self._pids if kind == "forked" else self._ended)[token] = value
                timeout = 0.0
        except (EOFError, OSError):
            self._lost()

    def _lost(self) -> None:
        """The server is gone (killed, out of memory): so are its workers, which watch their parent."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5.0)
        status = self.process.returncode
        for token in self._issued:
            if token not in self._ended:
                self._ended[token] = status if status is not None and status < 0 else 1
                self.orphaned.add(token)
        self.control.close()

    def send_signal(self, token: int, number: int) -> None:
        # The server signals only a worker it has not yet reaped, so a reused pid is never hit.
        with contextlib.suppress(OSError, ValueError):
            self.control.send(("signal", token, number))

    def output(self, limit: int, token: int | None = None) -> str:
        """The end of what the server wrote to its stdout and stderr (its own, not a worker's)."""
        return self.capture.tail(limit)

    def daemon_log(self, token: int) -> str | None:
        """The log of the daemon that ended under the worker `token` (daemon_client.py); never here."""
        return None

    def close(self) -> None:
        """End the server, and with it its workers (the kernel kills each as the server dies).

        Killed rather than asked: it holds nothing to save, and while it imports TensorFlow it
        reads no pipe, so asking would keep a Ctrl-C in the first seconds of a run waiting.
        """
        self.control.close()
        if self.process.poll() is None:
            descendants.kill_tree(self.process.pid)  # what its workers started, its workers, the server
            with contextlib.suppress(OSError):
                self.process.kill()
        self.process.wait()
        self._lost()
        self.capture.close()


class ForkedProcess:
    """A worker forked by the server, with the part of subprocess.Popen's interface supervisor.py uses."""

    def __init__(self, server: ForkServer, token: int) -> None:
        self.server, self.token = server, token

    @property
    def returncode(self) -> int | None:
        return self.server._ended.get(self.token)

    @property
    def pid(self) -> int | None:
        """The worker's process id, once the server has said it forked it."""
        self.server.drain()
        return self.server._pids.get(self.token)

    @property
    def ended_with_server(self) -> bool:
        """Whether the server died under this worker (then returncode is the server's)."""
        return self.token in self.server.orphaned

    @property
    def daemon_log(self) -> str | None:
        """The log of a daemon that ended under this worker (daemon_client.py), else None."""
        return self.server.daemon_log(self.token)

    @property
    def forked(self) -> bool:
        """Whether the server said it forked this worker (a server that died importing never did)."""
        return self.token in self.server._pids

    def poll(self) -> int | None:
        self.server.drain()
        return self.returncode

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired("gradcheck worker", timeout)
            self.server.drain(min(left, 0.1))
        return self.returncode  # type: ignore[return-value]  # poll() just saw it set

    def terminate(self) -> None:
        self.server.send_signal(self.token, signal.SIGTERM)

    def kill(self) -> None:
        self.server.send_signal(self.token, signal.SIGKILL)


# Variables that TensorFlow, Keras or Python read while they import: the server imported them under
# the values it started with, so a change to one of these needs a new server. Any other variable
# (PYTEST_CURRENT_TEST changes with every test) is simply handed to each worker as it is forked.
_READ_AT_IMPORT = ("TF_", "KERAS_", "CUDA_", "XLA_", "PYTHON", "LD_", "OMP_", "KMP_", "MKL_", "OPENBLAS_", "HOME")

# One server per Keras backend: Keras reads KERAS_BACKEND once, at import, so a server imports one
# framework, and a run over several backends forks each backend's workers from that backend's server.
_servers: dict[str, ForkServer] = {}
_current: ForkServer | None = None  # the one a worker was last forked from (the tests look at it)


def server_for(command: list[str], environment: dict[str, str]) -> ForkServer | None:
    """The server to fork workers for `environment` from (None where forking is not used), started
    with `command` if there is none yet for its backend, or a new one if the old one died or
    imported under other values."""
    if not AVAILABLE:
        return None
    backend = environment.get("KERAS_BACKEND", "")
    current = _servers.get(backend)
    if current is not None and (
        not current.alive or _imported_under(current.environment) != _imported_under(environment)
    ):
        current.close()
        del _servers[backend]
    if backend not in _servers:
        _servers[backend] = ForkServer(command, environment)
    global _current
    _current = _servers[backend]
    return _current


def close_server() -> None:
    """End every fork server (and with each its workers)."""
    global _current
    _current = None
    while _servers:
        _, server = _servers.popitem()
        server.close()


def _imported_under(environment: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in environment.items() if name.startswith(_READ_AT_IMPORT)}


# --- the server process ---------------------------------------------------------------------------


def serve() -> None:
    """Import what every worker needs, then fork workers as asked until the supervisor's pipe closes.

    sys.argv[1] is the file descriptor of the server's end of its pipe.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle (worker.py)
    descendants.become_subreaper()  # a dead worker's leftovers come here, to be ended (_end_orphans)
    control = Connection(int(sys.argv[1]))
    gc.disable()  # no collections scattered through the import (prepare() collects once, then freezes)
    from .worker import prepare

    # Its stderr is a file the supervisor shows only if the server dies: a crash in the import
    # leaves its words there. Once imported, what the import wrote (log lines) is dropped.
    prepare(hide_stderr=False)  # ends with gc.freeze(): the forks' collections never walk (or copy) these objects
    with contextlib.suppress(OSError):
        os.ftruncate(2, 0)
        os.lseek(2, 0, os.SEEK_SET)  # fd 1 shares the offset: both are the one file
    # SIGCHLD wakes the loop through this pipe, so a worker's end is told at once.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda number, frame: None)
    children: dict[int, int] = {}  # pid -> token
    tokens: dict[int, int] = {}  # token -> pid
    try:
        while True:
            ready = wait([control, wake_read])
            _reap(control, children, tokens)
            if wake_read in ready:  # a child ended: a worker, or something a worker left
                os.read(wake_read, 512)
                _end_orphans(children)
            if control not in ready:
                continue
            try:
                request = control.recv()
            except (EOFError, OSError):
                break
            if request[0] == "fork":
                _, token, capture_path, environment, attributes = request
                worker_fd = recv_handle(control)
                pid = _fork(worker_fd, (capture_path, environment, attributes), control, (wake_read, wake_write))
                children[pid], tokens[token] = token, pid
                control.send(("forked", token, pid))
            elif request[0] == "signal" and request[1] in tokens:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(tokens[request[1]], request[2])
    finally:
        if descendants.AVAILABLE:  # the workers, and whatever their layers started
            descendants.kill_tree(os.getpid(), include_root=False)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _real_exit(0)  # skip TensorFlow's teardown, as the worker does


def _fork(worker_fd: int, asked: tuple, control: Connection, wake: tuple[int, int]) -> int:
    capture_path, environment, attributes = asked
    pid = os.fork()
    if pid:
        os.close(worker_fd)
        return pid
    try:  # in the new worker
        _end_with_parent()
        os.setsid()  # a session and process group of its own (see the module's docstring)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in wake:
            os.close(fd)
        control.close()
        capture = os.open(capture_path, os.O_WRONLY | os.O_APPEND)
        os.dup2(capture, 1)
        os.dup2(capture, 2)
        os.close(capture)
        from ..runtime import quiet_environment
        from .worker import serve_connection

        os.environ.clear()
        os.environ.update(environment)
        quiet_environment()
        # Its temporary files go to its folder, which the supervisor removes however it ends (capture.py).
        tempfile.tempdir = temporary_folder_of(capture_path)
        if attributes is not None:
            inherited.apply(attributes)
        gc.enable()

        serve_connection(Connection(worker_fd))  # ends the process itself
    except BaseException:
        traceback.print_exc()  # into the capture, shown with the target's failure
    _real_exit(1)


def _end_with_parent() -> None:
    """Have the kernel kill this worker the moment the server dies (a Linux prctl), so the layer's
    code stops where it was rather than at the worker's next once-a-second look (worker.py)."""
    parent = os.getppid()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the prctl took hold
        _real_exit(1)


def _reap(control: Connection, children: dict[int, int], tokens: dict[int, int]) -> None:
    """Wait for every child that ended (adopted orphans too); tell the supervisor of its workers'."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        token = children.pop(pid, None)
        if token is not None:
            del tokens[token]
            with contextlib.suppress(OSError):
                control.send(("ended", token, returncode(status)))


def _end_orphans(children: dict[int, int]) -> None:
    """Kill what a worker that just ended left behind: its orphans were handed to this server (a
    subreaper), so they are the children that are not workers, with everything under them. The
    worker is gone; nobody is left to report them, and no grace is given."""
    if not descendants.AVAILABLE:
        return
    for _ in range(50):
        orphans = [pid for pid in descendants.children_of(os.getpid()) if pid not in children]
        if not orphans:
            return
        for orphan in orphans:  # waited for by _reap, at the SIGCHLD their ends send
            descendants.kill_tree(orphan)
        time.sleep(0.005)
