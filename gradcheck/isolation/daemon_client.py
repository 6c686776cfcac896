"""The command's side of the daemon (daemon.py): found, checked, used for a run, started, stopped, asked.

A run looks for its project's daemon (daemon_place.py) and, when one answers, has it fork the run's
workers (`attached`); everything else is a cold run, with the same output: no daemon, GRADCHECK_DAEMON
set to off, a folder or socket that is not the user's, a daemon run by another user (SO_PEERCRED),
one that does not answer, one whose workers could not be given this command's limits, a PYTHONPATH
or KERAS_HOME with a relative folder (a server elsewhere would resolve it from another folder). A
daemon that is out of date (daemon_key.py) is replaced by a fresh one, which the run then uses
(unless another run is using it). A dead daemon's socket is removed. Only `--debug` tells which of
these happened.

Nothing here imports a framework: the command's `--help`, usage errors and this path stay light.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection

from ..errors import GradcheckError, sentence
from . import daemon_key, daemon_place, forkserver, inherited
from .daemon_place import Place, Unusable
from .forkserver import ForkedProcess, ForkServer

ANSWER_WAIT = 5.0  # seconds a daemon has to answer; one that does not is not used
START_WAIT = 30.0  # seconds a starting daemon has to say it is ready
Note = Callable[[str], None]


class Link:
    """A connection to a daemon: pickled messages over its Unix socket (kept, to be half-closed)."""

    def __init__(self, connected: socket.socket, place: Place) -> None:
        self.socket, self.place = connected, place
        self.connection = Connection(os.dup(connected.fileno()))

    def ask(self, message: tuple) -> tuple:
        """Send `message` and return the daemon's answer; Unusable when it gives none in time."""
        try:
            self.connection.send(message)
            if self.connection.poll(ANSWER_WAIT):
                reply = self.connection.recv()
                if isinstance(reply, tuple) and reply and isinstance(reply[-1], (dict, int)):
                    return reply
        except (EOFError, OSError):
            pass
        self.close()
        raise Unusable(f"gradcheck's daemon at {self.place.socket} did not answer within {ANSWER_WAIT:g} seconds.")

    def wait_closed(self, limit: float, take: Callable[[tuple], None] = lambda message: None) -> None:
        """Read (and `take`) what the daemon sends until it closes its end, for `limit` seconds at most."""
        deadline = time.monotonic() + limit
        with contextlib.suppress(EOFError, OSError):
            while self.connection.poll(max(0.0, deadline - time.monotonic())):
                take(self.connection.recv())

    def close(self) -> None:
        self.connection.close()
        self.socket.close()


class DaemonServer(ForkServer):
    """A daemon's fork servers, as supervisor.py uses a fork server: workers asked for and signalled
    over the daemon's socket, their ends told back."""

    def __init__(self, link: Link, info: dict, attributes: dict) -> None:
        self.link = link
        self.control = link.connection
        self.environment: dict[str, str] = {}
        self.info, self.attributes = info, attributes
        self._tokens = itertools.count()
        self._issued: list[int] = []
        self._pids: dict[int, int] = {}
        self._ended: dict[int, int] = {}
        self.orphaned: set[int] = set()  # ended with their server: the daemon's, or the daemon itself
        self._outputs: dict[int, str] = {}  # what a server that died under a worker wrote
        self._with_daemon: set[int] = set()  # ended because the daemon did
        self.failure: str | None = None  # why the daemon could not start a fork server (launch.py)

    @property
    def alive(self) -> bool:
        return not self.control.closed

    @property
    def receiver_pid(self) -> int:
        return self.info["pid"]  # the daemon, which passes the pipe end on to its fork server

    def start(self, capture_path, worker_end, environment, attributes=None) -> ForkedProcess:
        # The command's umask, limits and priority, as a cold run's worker would inherit them.
        return super().start(capture_path, worker_end, environment, self.attributes)

    def drain(self, timeout: float = 0.0) -> None:
        try:
            while not self.control.closed and self.control.poll(timeout):
                self.take(self.control.recv())
                timeout = 0.0
        except (EOFError, OSError):
            self._lost()
        if self.failure is not None:  # raised once, as a cold run's supervisor raises it starting its server
            failure, self.failure = self.failure, None
            raise GradcheckError(failure)

    def take(self, message: tuple) -> None:
        if message[0] == "failed":
            self._ended[message[1]] = 2
            self.failure = str(message[2])
        elif message[0] == "forked":
            self._pids[message[1]] = message[2]
        elif message[0] == "ended":
            _, token, code, with_server, output = message
            self._ended[token] = code
            if with_server:
                self.orphaned.add(token)
                self._outputs[token] = output

    def _lost(self) -> None:
        """The daemon is gone, and its servers have ended its workers as they ended."""
        for token in self._issued:
            if token not in self._ended:
                self._ended[token] = -signal.SIGKILL
                self.orphaned.add(token)
                self._with_daemon.add(token)
        self.link.close()

    def close(self) -> None:
        """The run is over or stopped: the daemon kills this run's workers still running, then closes
        its end, which is waited for (a few seconds at most), so none outlives the command."""
        if not self.control.closed:
            with contextlib.suppress(OSError):
                self.link.socket.shutdown(socket.SHUT_WR)
            self.link.wait_closed(ANSWER_WAIT, self.take)
        for token in self._issued:
            self._ended.setdefault(token, -signal.SIGKILL)
        self.link.close()

    def output(self, limit: int, token: int | None = None) -> str:
        text = self._outputs.get(token, "") if token is not None else ""
        return text if len(text) <= limit else "[...]\n" + text[-limit:]

    def daemon_log(self, token: int) -> str | None:
        return self.info["log"] if token in self._with_daemon else None


@contextlib.contextmanager
def attached(note: Note | None = None) -> Iterator[DaemonServer | None]:
    """The project's daemon for one run (None: a cold run), closed after it. `note` is told, in a
    sentence, which daemon forks the workers or why none does (the command shows it under --debug)."""
    daemon = attach(note or (lambda text: None))
    try:
        yield daemon
    finally:
        if daemon is not None:
            daemon.close()


def attach(note: Note) -> DaemonServer | None:
    if not forkserver.AVAILABLE or daemon_place.disabled():
        return None
    try:
        project = daemon_place.project_root(os.getcwd())
        place = daemon_place.place_for(project, create=False)
        if place is None or not os.path.lexists(place.socket):
            note(f"gradcheck: no daemon runs for {project} (`gradcheck --daemon` starts one there).")
            return None
        relative = _relative_folder()
        if relative:
            note(f"gradcheck: not using the daemon: {relative}.")
            return None
        return _greet(place, note, replace=True)
    except Unusable as problem:
        note(f"gradcheck: not using the daemon: {problem}")
    except Exception as error:  # whatever else went wrong: the run is a cold one all the same
        note(f"gradcheck: not using the daemon: {type(error).__name__}: {sentence(str(error))}")
    return None


def _relative_folder() -> str | None:
    """A variable read at import that names a folder relative to the working folder: a server the
    daemon started elsewhere would resolve it from its own folder, so such a run is a cold one."""
    relative = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and not os.path.isabs(p)]
    if relative:
        return f"PYTHONPATH holds a relative folder ({relative[0]})"
    if "KERAS_HOME" in os.environ and not os.path.isabs(os.environ["KERAS_HOME"]):
        return f"KERAS_HOME is a relative folder ({os.environ['KERAS_HOME'] or 'empty'})"
    return None


def _greet(place: Place, note: Note, replace: bool) -> DaemonServer | None:
    link = connect(place)
    if link is None:
        note(f"gradcheck: a dead daemon's socket was removed ({place.socket}).")
        return None
    attributes = inherited.capture()
    reply = link.ask(("hello", daemon_key.fingerprint(), attributes))
    info = reply[-1]
    if reply[0] == "welcome":
        note(f"gradcheck: the workers are forked by the daemon of {place.project} (pid {info['pid']}).")
        return DaemonServer(link, info, attributes)
    link.close()
    if reply[0] == "refused":
        note(f"gradcheck: not using the daemon (pid {info['pid']}): {reply[1]}.")
        return None
    why = "; ".join(reply[1])
    if not replace or info["clients"]:
        note(f"gradcheck: not using the daemon (pid {info['pid']}), which is out of date ({why}) and busy.")
        return None
    stop_daemon(place)
    started, said = spawn(place, float(info["idle"]))
    note(f"gradcheck: the daemon (pid {info['pid']}) was out of date ({why}): replaced by pid {started or said}.")
    return _greet(place, note, replace=False) if started or said == "running" else None


def connect(place: Place) -> Link | None:
    """A connection to the daemon at `place`, or None when none listens (a dead one's socket is then
    removed). Raises Unusable for a socket that is not the user's, or a daemon run by another user."""
    if not os.path.lexists(place.socket):
        return None
    problem = daemon_place.socket_problem(place.socket)
    if problem:
        raise Unusable(problem)
    connected = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connected.settimeout(ANSWER_WAIT)
    try:
        connected.connect(place.socket)
    except (ConnectionRefusedError, FileNotFoundError):
        connected.close()
        _remove_leftover(place)
        return None
    except OSError as error:
        connected.close()
        raise Unusable(f"gradcheck's daemon at {place.socket} could not be reached ({error}).") from None
    pid, uid = daemon_place.peer(connected)
    if uid != os.getuid():
        connected.close()
        raise Unusable(f"the process behind {place.socket} (pid {pid}) runs as uid {uid}, not as you; it was not used.")
    connected.settimeout(None)
    return Link(connected, place)


def _remove_leftover(place: Place) -> None:
    """Remove a dead daemon's socket: dead when nothing holds the project's lock (a daemon holds it for life)."""
    import fcntl

    lock = daemon_place.open_lock(place)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # a daemon is starting: its socket comes in a moment
    finally:
        if daemon_place.socket_problem(place.socket) is None:
            with contextlib.suppress(OSError):
                os.unlink(place.socket)
        os.close(lock)


def spawn(place: Place, idle: float) -> tuple[int | None, str]:
    """Start a daemon for `place` in the background: (its pid, "") once it listens, (None, "running")
    when another holds the lock, else (None, what it said)."""
    from .launch import python_command, start_python, worker_environment

    command = python_command("from gradcheck.isolation.daemon import serve; serve()")
    process = start_python(
        [*command, place.project, repr(idle)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=worker_environment(),  # what this command's workers would import under: its first server's
        cwd="/",
    )
    said = b""
    deadline = time.monotonic() + START_WAIT
    assert process.stderr is not None
    with process.stderr:
        while time.monotonic() < deadline and select.select([process.stderr], [], [], deadline - time.monotonic())[0]:
            chunk = os.read(process.stderr.fileno(), 65536)
            if not chunk:
                break
            said += chunk
    process.wait()  # the first process, which forked the daemon and ended
    text = said.decode("utf-8", "replace").strip()
    if text.startswith("ready ") and text[6:].isdigit():
        return int(text[6:]), ""
    return None, text.removeprefix("error ") or f"it did not say it was ready within {START_WAIT:g} seconds"


def stop_daemon(place: Place) -> int | None:
    """Ask the daemon at `place` to end, and wait until it has (its lock free); its pid, or None when none runs."""
    import fcntl

    link = connect(place)
    if link is None:
        return None
    pid = link.ask(("stop",))[-1]
    deadline = time.monotonic() + 15.0
    link.wait_closed(15.0)  # until it closes its end, having ended its servers
    link.close()
    lock = daemon_place.open_lock(place)
    try:
        while time.monotonic() < deadline:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.02)
    finally:
        os.close(lock)
    return pid


def require_linux() -> None:
    if not forkserver.AVAILABLE:
        raise GradcheckError(
            "gradcheck --daemon works on Linux only: it keeps a process that forks the workers, and "
            "a process with TensorFlow loaded cannot be forked safely elsewhere. Runs here are cold ones."
        )
