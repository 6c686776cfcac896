"""The supervisor: check each target in a worker process and turn every way a check can end into a result.

The code under check may exit, print, hang or crash; none of that may decide the verdict. So it
runs only in worker processes (worker.py), and this side, which never imports TensorFlow, gets
back plain data: a Report, or a TargetFailure whose message says how the check ended. A worker
that ends without a result (sys.exit is caught in the worker; os._exit, a signal, a segfault, the
out-of-memory killer are not) or overruns its time limit is ended, and the next target gets a
fresh one (on Linux forked from a process that has TensorFlow imported: forkserver.py). A worker
that finished normally is kept (TensorFlow stays imported) for the next target, and for the next
run in the same Python process (the test-suite, check(isolate=True)).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait

from ..errors import GradcheckError
from ..report import Report, TargetFailure
from ..runtime import QUIET_DEFAULTS
from . import forkserver
from .endings import ended_message, overran_message
from .forkserver import ForkedProcess, ForkServer, start_child, tail_of

# A first worker waits for TensorFlow's import (NOTES.md 5; in the fork server on Linux); a
# target's own --timeout starts only when its check starts, so a cold start does not eat into it.
# This bounds a start that hangs.
STARTUP_LIMIT = 300.0
CAPTURE_LIMIT = 20_000  # characters of captured output kept per target (the end of it)


@dataclass(frozen=True)
class Outcome:
    """What came of one target: its result, what its code wrote to fd 1/2, and (--debug) a traceback."""

    result: Report | TargetFailure
    captured: str = ""
    traceback: str | None = None


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
) -> list[Outcome]:
    """Check each (target, Options) of `jobs` in up to `workers` worker processes.

    An entry whose Options is a GradcheckError (a pyproject entry that did not parse) becomes a
    TargetFailure without running. `done(index, outcome)` is called in the order of `jobs` as
    results arrive, so messages printed from it are the same whatever `workers` is. `progress` is
    told each Activity of the targets being checked, as it comes (the CLI draws them).

    Raises:
        whatever interrupts it (KeyboardInterrupt, the CLI's own stop): the workers are ended first.
    """
    outcomes: list[Outcome | None] = [None] * len(jobs)
    waiting = deque(range(len(jobs)))
    running: dict[_Worker, int] = {}
    reported = 0
    try:
        while waiting or running:
            while waiting and len(running) < max(1, workers):
                index = waiting.popleft()
                target, options = jobs[index]
                if isinstance(options, GradcheckError):
                    outcomes[index] = Outcome(TargetFailure(target, str(options)))
                    continue
                worker = _acquire()
                worker.start(target, options, debug, index, progress)
                running[worker] = index
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
                    _release(worker)
            while reported < len(jobs) and (finished := outcomes[reported]) is not None:
                if done is not None:
                    done(reported, finished)
                reported += 1
    except BaseException:
        # The workers die with their fork server at once, one it has yet to fork included (the
        # server may still be importing TensorFlow and hear no request for seconds).
        forkserver.close_server()
        for worker in running:
            worker.close(kill=True)
        raise
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
    """

    def __init__(self, environment: dict[str, str], server: ForkServer | None) -> None:
        self.connection, child_end = multiprocessing.Pipe()
        handle, self.capture_path = tempfile.mkstemp(prefix="gradcheck-", suffix=".out")
        os.close(handle)
        capture = os.open(self.capture_path, os.O_WRONLY | os.O_APPEND)
        try:
            if server is not None:
                self.process: subprocess.Popen | ForkedProcess = server.start(self.capture_path, child_end, environment)
            else:
                command = _python("from gradcheck.isolation.worker import serve; serve()")
                self.process = start_child(command, child_end.fileno(), capture, environment)
        finally:
            child_end.close()
            os.close(capture)
        self.finished = True  # no check in progress: free to take a target

    def start(self, target: str, options, debug: bool, index: int = 0, listener=None) -> None:
        self.target, self.timeout, self.finished = target, options.timeout, False
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
                elif message[0] == "exit":
                    self.exit_call = message[1:]
                elif message[0] == "report":
                    self.finished = True
                    return Outcome(Report.from_dict(message[1]), self.captured())
                elif message[0] == "failure":
                    self.finished = True
                    return Outcome(TargetFailure(self.target, message[1]), self.captured(), message[2])
        except (EOFError, OSError):
            # The pipe closed: the worker is ending, if not already gone.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5.0)
        if self.process.poll() is not None:
            return Outcome(TargetFailure(self.target, self._ended()), self.captured())
        if time.monotonic() >= self.deadline:
            captured = self.captured()
            self.close(kill=True)
            return Outcome(TargetFailure(self.target, self._overran()), captured)
        return None

    def tell(self, done: int | None = None, total: int | None = None, ended: bool = False) -> None:
        if self.listener is not None:
            self.listener(Activity(self.index, self.target, self.stage, done, total, ended))

    def captured(self) -> str:
        text = tail_of(self.capture_path, CAPTURE_LIMIT)
        if isinstance(self.process, ForkedProcess) and self.process.ended_with_server:
            server = self.process.server.output(CAPTURE_LIMIT)
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
        )

    def _overran(self) -> str:
        return overran_message(self.started, self.timeout, self.stage, STARTUP_LIMIT)

    def close(self, kill: bool = False) -> None:
        """End the process (asked to stop; or terminated, then killed a second later) and remove its capture file."""
        steps = [self.process.terminate, self.process.kill]
        if not kill:
            steps.insert(0, lambda: self.connection.send(("stop",)))
        for step in steps:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError, ValueError):
                step()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(1.0)
        self.connection.close()
        with contextlib.suppress(OSError):
            os.remove(self.capture_path)
        self.finished = False


def _python(code: str) -> list[str]:
    # `-c` puts the working folder first on sys.path; loading.py adds it for a module target only,
    # as `python -m` would, so a file there cannot shadow a library.
    return [sys.executable, "-c", f"import sys; del sys.path[0]; {code}"]


# Idle workers with TensorFlow imported, kept for the next target of this process.
_idle: list[_Worker] = []


def _acquire() -> _Worker:
    import gradcheck

    # The worker imports this very gradcheck, whatever the caller's sys.path made of it.
    home = os.path.dirname(os.path.dirname(os.path.abspath(gradcheck.__file__)))
    # With the defaults the worker imports TensorFlow under: the same whether or not this process
    # has imported it (check() sets them here), so that import does not call for a new fork server.
    environment = {**QUIET_DEFAULTS, **os.environ}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [home, environment.get("PYTHONPATH")]))
    # First, as it may replace the server, and with it end the idle workers forked from the old one.
    server = forkserver.server_for(_python("from gradcheck.isolation.forkserver import serve; serve()"), environment)
    while _idle:
        worker = _idle.pop()
        if worker.process.poll() is None:
            return worker
        worker.close()
    return _Worker(environment, server)


def _release(worker: _Worker) -> None:
    """Keep a worker that finished its check; close one that died, overran or was ended."""
    if worker.finished and worker.process.poll() is None:
        _idle.append(worker)
    else:
        worker.close(kill=True)


@atexit.register
def shutdown() -> None:
    """Stop every idle worker (at exit, or when a caller wants the memory back).

    An idle worker holds nothing to save, and a graceful exit of a process with TensorFlow loaded
    takes about a second of its teardown: it is terminated instead, so the command ends as soon as
    its report is written.
    """
    while _idle:
        _idle.pop().close(kill=True)
    forkserver.close_server()


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """A best-effort limit for the in-process check(): the command and check(isolate=True) do not use it.

    SIGALRM interrupts Python code (a loop in call()) but not a long TensorFlow op or a
    tf.while_loop, and a broad `except` in the code being run can swallow it. It works only in the
    main thread, so elsewhere (a pytest-xdist worker thread, a notebook thread) no limit is set.
    The supervisor's limit (check_targets above) has none of these gaps: it ends the worker process.
    """
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not seconds or not usable:
        yield
        return

    message = (
        f"The check did not finish within {seconds:g} s (the layer may hang in build() or call()). "
        "Check the layer for an endless loop, or allow more time with --timeout SECONDS."
    )
    expired = []

    def expire(signum, frame):
        expired.append(True)
        raise GradcheckError(message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except Exception:
        # Keras rewrites an exception raised inside Layer.__call__ ("Exception encountered when
        # calling ..."), so the one raised above may come back wrapped: give the plain message.
        if expired:
            raise GradcheckError(message) from None
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
