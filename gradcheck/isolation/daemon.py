"""The daemon (`gradcheck --daemon`): a project's fork servers kept between runs, reached over a Unix socket.

A run's supervisor starts a fork server (forkserver.py), which imports TensorFlow for seconds before
its first worker; the daemon keeps fork servers running between runs, so a later run's supervisor
asks it for workers instead. It is a light process (it never imports a framework) in front of one
fork server per set of what an import reads from its environment (daemon_key.server_key: the
variables read at import, KERAS_BACKEND among them, and Keras's config file): each is started on demand with the environment of the first client that needs it, as a cold
run would start it, and the one for the starting command's environment at once. A request for a
worker is relayed to its server with the worker's pipe end, so the supervisor and the worker talk
directly, as in a cold run (the check, its progress, its result).

    client -> daemon   ("hello", fingerprint, attributes)   answered ("welcome", info), ("stale",
                       differences) or ("refused", reason); then any number of
                       ("fork", token, capture path, environment, attributes) + the worker's pipe end
                       ("signal", token, SIGTERM or SIGKILL)
                       ("status", fingerprint) -> ("status", info)    ("stop",) -> ("stopping", pid)
    daemon -> client   ("forked", token, pid)   ("ended", token, returncode, with its server, server output)
                       ("failed", token, message): no fork server could be started (launch.py)

Each connection's workers are its own: a client can signal only them, and when its connection closes
(the run ended, or its command was killed) the daemon kills those still running, then closes its end,
which the client waits for. A connection from another user is closed unread (SO_PEERCRED). The
daemon ends after `idle` seconds without a connection, at ("stop",) or SIGTERM, or when its socket
is removed or replaced; it ends its servers, and with them their workers, and removes its socket.
Its stdout and stderr are its log (daemon_place.py), never a terminal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import sys
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import recv_handle

from ..errors import GradcheckError
from . import daemon_key, daemon_place, inherited
from .forkserver import ForkedProcess, ForkServer
from .launch import SERVER, python_command
from .supervisor import CAPTURE_LIMIT

MAX_SERVERS = 4  # fork servers kept at once (each holds TensorFlow's ~500 MB); the least recently used idle one goes
_CLOSING_GRACE = 3.0  # seconds a closed connection's workers get to be reaped before its end is closed
_LOOK = 30.0  # seconds between looks at the socket file, when nothing else wakes the daemon
_TIMEOUTS = struct.pack("ll", 5, 0)  # a client that stops reading or writing mid-message is dropped after 5 s


class _Stopped(BaseException):
    """SIGTERM: the daemon ends, as at ("stop",)."""


def serve() -> None:
    """The daemon's process (daemon_client.spawn starts it): argv is [PROJECT, IDLE SECONDS].

    Its stderr is a pipe to the command that started it until it is ready: "ready PID", or "running"
    when another daemon holds the project's lock, or what went wrong. Then stdout and stderr become
    its log. Its environment is the one the starting command's workers would get (the first server's).
    """
    if os.fork():  # the starting command waits for this process only; the daemon is its child, adopted by init
        os._exit(0)
    os.setsid()  # no terminal: a Ctrl-C or hang-up where it was started never reaches it
    os.umask(0o077)
    os.chdir("/")
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    project, idle = sys.argv[1], float(sys.argv[2])
    try:
        place = daemon_place.place_for(project, create=True)
        assert place is not None
        lock = daemon_place.open_lock(place)
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("running", file=sys.stderr, flush=True)
            return
        listener = _listen(place.socket)
        key = daemon_key.fingerprint()  # before any server imports what it describes
    except Exception as error:
        print(f"error {error}", file=sys.stderr, flush=True)
        return
    print(f"ready {os.getpid()}", file=sys.stderr, flush=True)
    log = os.open(place.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)  # the starting command reads the pipe to its end: this closes it
    os.close(log)
    Daemon(place, idle, key, listener).run()


def _listen(path: str) -> socket.socket:
    """The daemon's socket at `path`, mode 0600: a dead daemon's left there is replaced (the lock is
    held, so no live daemon owns it); a file that is not a socket is refused."""
    if os.path.lexists(path):
        problem = daemon_place.socket_problem(path)
        if problem:
            raise daemon_place.Unusable(problem)
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)  # the umask (077) makes it 0600 from the start
    os.chmod(path, 0o600)
    listener.listen(16)
    listener.setblocking(False)
    return listener


def log(text: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}", flush=True)


class _Client:
    def __init__(self, connection: Connection, pid: int) -> None:
        self.connection, self.pid = connection, pid
        self.greeted = False
        self.workers: dict[int, ForkedProcess] = {}  # the client's token -> the worker
        self.told: set[int] = set()  # tokens whose pid was sent
        self.closing_since: float | None = None


class Daemon:
    def __init__(self, place: daemon_place.Place, idle: float, key: dict, listener: socket.socket) -> None:
        self.place, self.idle, self.key, self.listener = place, idle, key, listener
        self.socket_id = _identity(place.socket)
        self.servers: dict[tuple, ForkServer] = {}
        self.used: dict[tuple, float] = {}
        self.retired: list[ForkServer] = []  # replaced or dead, closed once no worker needs them
        self.clients: list[_Client] = []
        self.started = self.last_active = time.time()
        self.stopping = False

    def run(self) -> None:
        def stop(number, frame):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise _Stopped()

        signal.signal(signal.SIGTERM, stop)
        log(f"started for {self.place.project} (pid {os.getpid()}, {sys.executable}); ends after {self.idle:g} s idle")
        try:
            self._server_for(dict(os.environ))  # the starting command's: warm by the first run
            while not self.stopping:
                self._turn()
        except _Stopped:
            log("stopped by SIGTERM")
        except GradcheckError as error:  # no fork server can start here (launch.py): of no use, it ends
            log(f"ending: {error}")
        finally:
            self._shut_down()

    def _turn(self) -> None:
        now = time.time()
        left = self.idle - (now - self.last_active)
        handles: list = [self.listener]
        handles += [client.connection for client in self.clients if client.closing_since is None]
        handles += [server.control for server in self._all_servers() if not server.control.closed]
        closing = any(client.closing_since is not None for client in self.clients)
        ready = wait(handles, max(0.0, min(left, _LOOK, 0.1 if closing else _LOOK)))
        if self.listener in ready:
            self._accept()
        for client in list(self.clients):
            if client.connection in ready and client.closing_since is None:
                self._read(client)
        for server in self._all_servers():
            if server.control in ready:
                server.drain()
        self._relay()
        self._tidy()
        if any(client.greeted for client in self.clients):  # a run (a status or stop is no use)
            self.last_active = time.time()
        elif time.time() - self.last_active >= self.idle:
            log(f"idle for {self.idle:g} s: ending")
            self.stopping = True
        if _identity(self.place.socket) != self.socket_id:
            log(f"{self.place.socket} was removed or replaced: ending")
            self.stopping = True

    def _accept(self) -> None:
        while True:
            try:
                connected, _ = self.listener.accept()
            except OSError:  # BlockingIOError: nobody else is waiting
                return
            pid, uid = daemon_place.peer(connected)
            if uid != os.getuid():
                log(f"refused a connection from uid {uid} (pid {pid}): not this daemon's user")
                connected.close()
                continue
            connected.setblocking(True)
            for option in (socket.SO_SNDTIMEO, socket.SO_RCVTIMEO):
                connected.setsockopt(socket.SOL_SOCKET, option, _TIMEOUTS)
            self.clients.append(_Client(Connection(connected.detach()), pid))

    def _read(self, client: _Client) -> None:
        try:
            while client.connection.poll():
                self._handle(client, client.connection.recv())
        except (EOFError, OSError):
            self._close(client)
        except Exception as error:  # a malformed request: that client goes, the daemon stays
            log(f"dropped a client (pid {client.pid}) that sent a malformed request: {type(error).__name__}: {error}")
            self._close(client)

    def _handle(self, client: _Client, message: tuple) -> None:
        kind = message[0]
        if kind == "hello":
            _, key, attributes = message
            differences = daemon_key.differences(self.key, key)
            refusal = inherited.refusal(attributes)
            if differences:
                client.connection.send(("stale", differences, self._status()))
            elif refusal:
                client.connection.send(("refused", refusal, self._status()))
            else:
                info = self._status()  # as others see it: this client's run has not begun
                client.greeted = True
                client.connection.send(("welcome", info))
        elif kind == "fork" and client.greeted:
            _, token, capture_path, environment, attributes = message
            worker_end = Connection(recv_handle(client.connection))
            try:
                if (
                    not _valid(token, capture_path, environment)
                    or token in client.workers
                    or inherited.refusal(attributes)
                ):
                    raise ValueError("a fork request with bad values")
                server = self._server_for(environment)
            except GradcheckError as error:  # its Python cannot be started (launch.py): the client says why
                log(f"could not start a fork server: {error}")
                client.connection.send(("failed", token, str(error)))
            else:
                client.workers[token] = server.start(capture_path, worker_end, environment, attributes)
            finally:
                worker_end.close()  # the worker has its own copy, the client the other end
        elif kind == "signal" and message[1] in client.workers and message[2] in (signal.SIGTERM, signal.SIGKILL):
            worker = client.workers[message[1]]
            worker.server.send_signal(worker.token, message[2])
        elif kind == "status":
            client.connection.send(
                ("status", {**self._status(), "stale": daemon_key.differences(self.key, message[1])})
            )
        elif kind == "stop":
            log(f"stopped by a client (pid {client.pid})")
            client.connection.send(("stopping", os.getpid()))
            self.stopping = True
        else:
            raise ValueError(f"an unexpected request {kind!r}")

    def _server_for(self, environment: dict[str, str]) -> ForkServer:
        """The fork server for what `environment` makes an import read (daemon_key.server_key),
        started if there is none (or it died)."""
        key = daemon_key.server_key(environment)
        server = self.servers.get(key)
        if server is not None and not server.alive:
            log(f"the fork server {server.process.pid} had ended ({_status_word(server.process.returncode)})")
            self.retired.append(self.servers.pop(key))
            server = None
        if server is None:
            for edited in [other for other in self.servers if other[:-1] == key[:-1]]:  # keras.json changed
                log(f"Keras's config file changed: the fork server {self.servers[edited].process.pid} is retired")
                self.retired.append(self.servers.pop(edited))
            while len(self.servers) >= MAX_SERVERS and self._retire_least_used():
                pass
            server = ForkServer(python_command(SERVER), environment)
            backend = environment.get("KERAS_BACKEND", "the default backend")
            log(f"started a fork server for {backend} (pid {server.process.pid})")
            self.servers[key] = server
        self.used[key] = time.time()
        return server

    def _retire_least_used(self) -> bool:
        busy = {worker.server for client in self.clients for worker in client.workers.values()}
        idle = [key for key, server in self.servers.items() if server not in busy]
        if not idle:
            return False
        key = min(idle, key=lambda k: self.used[k])
        self.retired.append(self.servers.pop(key))
        return True

    def _all_servers(self) -> list[ForkServer]:
        return [*self.servers.values(), *self.retired]

    def _relay(self) -> None:
        """Tell each client what became of its workers: forked (the pid), ended (how)."""
        for client in self.clients:
            for token, worker in list(client.workers.items()):
                messages: list[tuple] = []
                if token not in client.told and worker.forked:
                    client.told.add(token)
                    messages.append(("forked", token, worker.pid))
                if worker.returncode is not None:
                    output = worker.server.output(CAPTURE_LIMIT) if worker.ended_with_server else ""
                    messages.append(("ended", token, worker.returncode, worker.ended_with_server, output))
                    del client.workers[token]
                if client.closing_since is None:
                    try:
                        for message in messages:
                            client.connection.send(message)
                    except OSError:
                        self._close(client)

    def _close(self, client: _Client) -> None:
        """The client is gone or done: its workers still running are killed (their deaths are reaped
        and relayed nowhere), then its end is closed (_tidy)."""
        if client.closing_since is not None:
            return
        client.closing_since = time.time()
        for worker in client.workers.values():
            worker.kill()

    def _tidy(self) -> None:
        now = time.time()
        for client in list(self.clients):
            if client.closing_since is not None and (not client.workers or now - client.closing_since > _CLOSING_GRACE):
                client.connection.close()
                self.clients.remove(client)
        needed = {worker.server for client in self.clients for worker in client.workers.values()}
        for server in [server for server in self.retired if server not in needed]:
            server.close()
            self.retired.remove(server)

    def _status(self) -> dict:
        return {
            "pid": os.getpid(),
            "project": self.place.project,
            "python": sys.executable,
            "log": self.place.log,
            "started": self.started,
            "idle": self.idle,
            "idle_since": None if self._runs() else self.last_active,
            "clients": self._runs(),
            "servers": sorted(
                (server.environment.get("KERAS_BACKEND", ""), server.process.pid)
                for server in self.servers.values()
                if server.alive
            ),
        }

    def _runs(self) -> int:
        return sum(client.greeted for client in self.clients)

    def _shut_down(self) -> None:
        """End every server (and with each its workers), then the clients' connections and the socket."""
        for server in self._all_servers():
            with contextlib.suppress(Exception):
                server.close()
        for client in self.clients:
            client.connection.close()
        if _identity(self.place.socket) == self.socket_id:
            with contextlib.suppress(OSError):
                os.unlink(self.place.socket)
        self.listener.close()
        log("ended")


def _valid(token: object, capture_path: object, environment: object) -> bool:
    return (
        isinstance(token, int)
        and isinstance(capture_path, str)
        and os.path.isabs(capture_path)
        and isinstance(environment, dict)
        and all(isinstance(k, str) and isinstance(v, str) and "\0" not in k + v for k, v in environment.items())
    )


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _status_word(code: int | None) -> str:
    from .endings import signal_name

    return f"by {signal_name(-code)}" if code is not None and code < 0 else f"exit status {code}"
