"""The supervisor: check each target in a worker process and turn every way a check can end into a result.

The code under check may exit, print, hang, crash, start processes or patch the interpreter; none
of that may decide the verdict. So it runs only in worker processes (worker.py), one fresh
process per target (on Linux forked from a process that has TensorFlow imported: forkserver.py),
and this side, which never imports TensorFlow, gets back plain data: a Report, or a TargetFailure
whose message says how the check ended. A worker that ends without a result (sys.exit is caught in
the worker; os._exit, a signal, a segfault, the out-of-memory killer are not) or overruns its time
limit is ended. While a target is checked, the next one's worker is forked ahead (a spare) when a
CPU is left free, so it has warmed TensorFlow's runtime by the time it is handed its target.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait

from ..errors import GradcheckError
from ..report import Report, TargetFailure
from . import descendants, forkserver
from .capture import WorkerFolder
from .endings import ended_message, overran_message
from .forkserver import ForkedProcess, ForkServer
from .launch import SERVER, python_command, start_child, worker_environment

# A first worker waits for TensorFlow's import (design notes 5; in the fork server on Linux); a
# target's own --timeout starts only when its check starts, so a cold start does not eat into it.
# This bounds a start that hangs.
STARTUP_LIMIT = 300.0
CAPTURE_LIMIT = 20_000  # characters of captured output kept per target (the end of it)


@dataclass(frozen=True)
class Outcome:
    """What came of one target: its result, what its code wrote to fd 1/2, (--debug) a traceback,
    and `user_files`: the real paths of the user's source files the target imported (its own module,
    a sibling helpers.py; not installed packages), as far as the worker got. The command refuses to
    write a report over one of them; they are not part of the Report."""

    result: Report | TargetFailure
    captured: str = ""
    traceback: str | None = None
    user_files: tuple[str, ...] = ()
    memory: tuple[int | None, int | None] = (None, None)  # the worker's resident bytes: at the start, peak


@dataclass(frozen=True)
class Activity:
    """What the check of one target is doing, for a display: sent as it starts a stage, as a counted
    stage gets on (`done` of `total` steps, a few times a second) and once when it ends."""

    index: int  # the target's place in `jobs`
    target: str
    stage: str  # "starting the check", then the phrases pipeline.build_report announces
    done: int | None = None  # None: a stage whose steps are not counted
    total: int | None = None
    ended: bool = False


def check_targets(
    jobs,
    *,
    workers: int = 1,
    debug: bool = False,
    done: Callable[[int, Outcome], None] | None = None,
    progress: Callable[[Activity], None] | None = None,
    daemon: ForkServer | None = None,
) -> list[Outcome]:
    """Check each (target, Options) of `jobs` in up to `workers` worker processes at a time, each
    target in a process of its own.

    An entry whose Options is a GradcheckError (a pyproject entry that did not parse) becomes a
    TargetFailure without running. `done(index, outcome)` is called in the order of `jobs` as
    results arrive, so messages printed from it are the same whatever `workers` is. `progress` is
    told each Activity of the targets being checked, as it comes (the CLI draws them). `daemon`, a
    daemon's fork servers (daemon_client.py), forks the workers while it is there; the caller closes it.

    Raises:
        whatever interrupts it (KeyboardInterrupt, the CLI's own stop): the workers are ended first.
    """
    outcomes: list[Outcome | None] = [None] * len(jobs)
    waiting = deque(range(len(jobs)))
    running: dict[_Worker, int] = {}
    reported = 0
    global _daemon
    _daemon = daemon
    try:
        while waiting or running:
            while waiting and len(running) < max(1, workers):
                index = waiting.popleft()
                target, options = jobs[index]
                if isinstance(options, GradcheckError):
                    outcomes[index] = Outcome(TargetFailure(target, str(options)))
                    continue
                worker = _fresh_worker(_backend_of(options))
                worker.start(target, options, debug, index, progress)
                running[worker] = index
            # The next target's worker warms up while these are checked, on a CPU they leave free.
            upcoming = [jobs[index][1] for index in waiting if not isinstance(jobs[index][1], GradcheckError)]
            if workers < _cpus() and upcoming:
                _fork_spare(_backend_of(upcoming[0]))
            _forget_retired()
            if running:
                limits = [r for r in (w.remaining() for w in running) if r is not None]
                # The pipe ends when the worker does; the cap also catches a worker whose pipe a
                # child it forked still holds open.
                wait([w.connection for w in running], min(limits + [1.0]))
            for worker in list(running):
                outcome = worker.collect()
                if outcome is not None:
                    outcomes[running.pop(worker)] = outcome
                    worker.tell(ended=True)
                    worker.retire()
            while reported < len(jobs) and (finished := outcomes[reported]) is not None:
                if done is not None:
                    done(reported, finished)
                reported += 1
    except BaseException:
        # The workers die with their fork server at once, one it has yet to fork included (the
        # server may still be importing TensorFlow and hear no request for seconds); a daemon ends
        # this run's workers as its connection closes.
        forkserver.close_server()
        if daemon is not None:
            daemon.close()
        for worker in running:
            worker.close()
        _close_spare()
        raise
    finally:
        _daemon = None
    return outcomes  # type: ignore[return-value]


def check_isolated(target, options) -> Report:
    """check(..., isolate=True): one target in a worker, a failure raised as GradcheckError."""
    if not isinstance(target, str):
        raise GradcheckError(
            f"check(..., isolate=True) got a {type(target).__name__}; a worker process can only be "
            "told where the layer is. Give a TARGET string such as 'path/to/layers.py:MyLayer', or "
            "drop isolate=True to check the object in this process."
        )
    [outcome] = check_targets([(target, options)])
    if isinstance(outcome.result, TargetFailure):
        shown = f"\nCaptured output:\n{outcome.captured}" if outcome.captured else ""
        raise GradcheckError(outcome.result.message + shown)
    return outcome.result


class _Worker:
    """One worker process, the supervisor's end of its pipe, and the file its fd 1/2 write to.

    On Linux it is forked from the fork server (forkserver.py), which has TensorFlow imported.
    Elsewhere it is a plain `python -c` child (not multiprocessing.Process): the spawn start method
    would also start a resource-tracker process and re-import the command's own script in the
    worker, which together cost about as much as the rest of the worker's start-up, TensorFlow aside.
    Either way it leads a process group of its own, so ending the group ends what the layer started
    where /proc cannot show it (macOS).
    """

    def __init__(self, environment: dict[str, str], server: ForkServer | None) -> None:
        self.environment, self.server = environment, server
        self.connection, child_end = multiprocessing.Pipe()
        self.folder = WorkerFolder()  # its output and temporary files, removed with it (capture.py)
        capture = self.folder.open_output()
        try:
            if server is not None:
                self.process: subprocess.Popen | ForkedProcess = server.start(
                    self.folder.output, child_end, environment
                )
            else:
                command = python_command(f"from gradcheck.isolation.worker import serve; serve({self.folder.path!r})")
                self.process = start_child(command, child_end.fileno(), capture, environment, session=True)
        except BaseException:  # its Python cannot be started (launch.py)
            self.connection.close()
            self.folder.remove()
            raise
        finally:
            child_end.close()
            os.close(capture)
        self.user_files: tuple[str, ...] = ()
        self.memory: tuple[int | None, int | None] = (None, None)
        self.retired_at = 0.0

    def fits(self, environment: dict[str, str], server: ForkServer | None) -> bool:
        """Whether this (spare) worker can take a target that needs `environment` and `server`."""
        return self.environment == environment and self.server is server and self.process.poll() is None

    def start(self, target: str, options, debug: bool, index: int = 0, listener=None) -> None:
        self.target, self.timeout = target, options.timeout
        self.stage = "starting the check"
        self.index, self.listener = index, listener
        self.tell()
        self.exit_call: tuple | None = None
        # Until the worker says the check began (TensorFlow imported), the start-up limit applies.
        self.deadline = time.monotonic() + STARTUP_LIMIT + (self.timeout or 0)
        self.started = False
        self.connection.send(("check", target, options, os.getcwd(), debug))

    def remaining(self) -> float | None:
        if not self.started and self.timeout is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def collect(self) -> Outcome | None:
        """The outcome if the check has ended (result, death or overrun); None while it runs."""
        try:
            while self.connection.poll():
                message = self.connection.recv()
                if message[0] == "stage":
                    self.stage = message[1]
                    self.tell()
                    if not self.started:
                        self.started = True
                        self.deadline = time.monotonic() + self.timeout if self.timeout else float("inf")
                elif message[0] == "progress":
                    self.tell(done=message[1], total=message[2])
                elif message[0] == "imported":
                    self.user_files = tuple(message[1])
                elif message[0] == "exit":
                    self.exit_call = message[1:]
                elif message[0] == "memory":
                    self.memory = (message[1], message[2])
                elif message[0] == "report":
                    return self._outcome(Report.from_dict(message[1]))
                elif message[0] == "failure":
                    # A fourth part: the layer's own code raised, at that line ("" unknown).
                    raised = message[3] if len(message) > 3 else None
                    failure = TargetFailure(self.target, message[1], layer_raised_at=raised)
                    return self._outcome(failure, message[2])
        except (EOFError, OSError):
            # The pipe closed: the worker is ending, if not already gone.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5.0)
        if self.process.poll() is not None:
            return self._outcome(TargetFailure(self.target, self._ended()))
        if time.monotonic() >= self.deadline:
            outcome = self._outcome(TargetFailure(self.target, self._overran()))
            self.close()
            return outcome
        return None

    def _outcome(self, result: Report | TargetFailure, traceback: str | None = None) -> Outcome:
        return Outcome(result, self.captured(), traceback, self.user_files, self.memory)

    def tell(self, done: int | None = None, total: int | None = None, ended: bool = False) -> None:
        if self.listener is not None:
            self.listener(Activity(self.index, self.target, self.stage, done, total, ended))

    def captured(self) -> str:
        text = self.folder.tail(CAPTURE_LIMIT)
        if isinstance(self.process, ForkedProcess) and self.process.ended_with_server:
            server = self.process.server.output(CAPTURE_LIMIT, self.process.token)
            if server:  # why the server died (a crash while it imported TensorFlow)
                text = "\n".join(filter(None, [text, "[gradcheck's fork server]", server]))
        return text if len(text) <= CAPTURE_LIMIT else "[...]\n" + text[-CAPTURE_LIMIT:]

    def _ended(self) -> str:
        process = self.process
        return ended_message(
            process.returncode,
            self.stage,
            self.exit_call,
            with_server=isinstance(process, ForkedProcess) and process.ended_with_server,
            before_forked=isinstance(process, ForkedProcess) and not process.forked,
            daemon_log=process.daemon_log if isinstance(process, ForkedProcess) else None,
        )

    def _overran(self) -> str:
        return overran_message(self.started, self.timeout, self.stage, STARTUP_LIMIT)

    def retire(self) -> None:
        """After its result: the worker ends by itself (worker.py), having ended what its layer
        started. Its pipe and folder go now; its end is waited for without stalling the run."""
        self._release_files()
        self.retired_at = time.monotonic()
        _retiring.append(self)

    def close(self) -> None:
        """End the process and what it started now, and remove its pipe and folder.

        A forked worker is killed by its server, which then kills what it left (forkserver.py);
        a worker of its own is killed here with everything under it (/proc) and its process group.
        """
        try:
            if isinstance(self.process, ForkedProcess):
                if self.process.poll() is None:
                    self.process.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.process.wait(1.0)
            elif self.process.poll() is None:
                descendants.kill_tree(self.process.pid)
                if hasattr(os, "killpg"):  # not on Windows
                    with contextlib.suppress(OSError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    self.process.kill()
                self.process.wait()
        finally:
            self._release_files()

    def _release_files(self) -> None:
        self.connection.close()
        self.folder.remove()


_spare: _Worker | None = None  # forked ahead for the next target of this run
_daemon: ForkServer | None = None  # the daemon's servers, while check_targets has one
_retiring: list[_Worker] = []  # workers that sent their result and are ending by themselves


def _backend_of(options) -> str | None:
    """The one Keras backend a job runs on (options.backends.per_backend set it), or None: the
    environment's."""
    return options.backends[0] if getattr(options, "backends", ()) else None


def _environment_and_server(backend: str | None = None) -> tuple[dict[str, str], ForkServer | None]:
    environment = worker_environment(backend)
    if _daemon is not None and _daemon.alive:
        return environment, _daemon  # a daemon that died mid-run leaves the next targets to a cold server
    # May replace the server, and with it end the spare forked from the old one.
    return environment, forkserver.server_for(python_command(SERVER), environment)


def _fresh_worker(backend: str | None = None) -> _Worker:
    """A worker no target has used: the spare, when it was forked for what this target needs."""
    global _spare
    environment, server = _environment_and_server(backend)
    spare, _spare = _spare, None
    if spare is not None:
        if spare.fits(environment, server):
            return spare
        spare.close()
    return _Worker(environment, server)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on macOS
        return os.cpu_count() or 1


def _fork_spare(backend: str | None = None) -> None:
    global _spare
    if _spare is None:
        _spare = _Worker(*_environment_and_server(backend))


def _close_spare() -> None:
    global _spare
    if _spare is not None:
        _spare.close()
        _spare = None


def _forget_retired(wait: bool = False) -> None:
    """Drop the retired workers that have ended; end those still running 5 s after their result
    (or at once, `wait` being the end of the process)."""
    for worker in list(_retiring):
        if worker.process.poll() is not None:
            _retiring.remove(worker)
        elif wait or time.monotonic() - worker.retired_at > 5.0:
            worker.close()
            _retiring.remove(worker)


@atexit.register
def shutdown() -> None:
    """End the spare, the workers still ending and the fork server (at exit, or when a caller wants
    the memory back). A worker is killed rather than asked to exit: TensorFlow's own teardown takes
    about a second, and the command ends as soon as its report is written."""
    _close_spare()
    _forget_retired(wait=True)
    forkserver.close_server()
