"""The worker process: the one place where the code under check runs, one target per process.

supervisor.py starts it (on Linux forked from the fork server, forkserver.py, which calls
serve_connection; elsewhere `python -c ... serve()` with one end of a multiprocessing Pipe as its
argument) and talks to it over that Pipe, never over fd 1 or 2: the supervisor points them at a
capture file for the worker's whole life, so whatever the layer writes
(print, os.write(1, ...), tf.print, TensorFlow's C++ log lines, a crash dump) lands there, and the
supervisor reads it after the target. Messages are tuples of plain data:

    supervisor -> worker   ("check", target, options, cwd, debug)  or  ("stop",)
    worker -> supervisor   ("stage", phrase)        as each step of the check starts
                           ("progress", done, total)  how far a counted step has got (progress.py)
                           ("imported", files)      the user's source files the target has imported
                                                    so far (real paths), whenever that list grows
                           ("exit", status, where)  just before the layer's code calls os._exit
                           ("memory", start, peak)  its resident memory in bytes (memory.py), just
                                                    before the result
                           ("report", Report.to_dict())  or  ("failure", message, traceback or None)

A worker checks one target and ends: nothing a module does to the interpreter (a patched
`np.isfinite`, a changed `os.environ`, an entry in `sys.modules`) can reach another target. Before
its result is sent, every process the layer's code left running is ended (descendants.py), and
the report says so (`processes-left-running`). While no target has been handed to it yet (a
spare the supervisor forked ahead), it warms TensorFlow's runtime on a layer of its own.

The worker ignores SIGINT: on Ctrl-C the supervisor decides, and ends it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import os
import signal
import sys
import threading
import time
import traceback

from ..errors import GradcheckError, LayerFailed, LayerRaised, sentence
from . import descendants, memory
from .endings import leftovers_finding, leftovers_sentence

_real_exit = os._exit
_imports: list = []  # the current target's layer.loading.Imported, for the os._exit hook


def serve(folder: str | None = None) -> None:
    """Check the target the supervisor sends, then end (a worker started with `python -c`).

    sys.argv[1] is the file descriptor of this worker's end of the pipe; `folder` the one the
    supervisor made for it, its temporary folder (capture.py).
    """
    import tempfile
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # before the import: Ctrl-C is the supervisor's
    tempfile.tempdir = folder
    prepare()
    serve_connection(Connection(int(sys.argv[1])))


def prepare(hide_stderr: bool = True) -> None:
    """Import what every check needs, then freeze what was made so far out of the garbage collector.

    Each target starts with keras.backend.clear_session(), which runs gc.collect(): over the
    ~270,000 objects TensorFlow's import leaves, that is 0.2 s a target, half of a small layer's
    check. Frozen, they are never walked again (a forked worker's collections never write to
    the pages it shares with the fork server either); the targets' own objects are still collected.
    A failed import is left for the check to meet and report. `hide_stderr` as the backend's modules().
    """
    import gc

    with contextlib.suppress(BaseException):
        from ..pipeline import import_checks
        from ..runtime import backend, pin_backend

        pin_backend()  # the job's (launch.py), before any user code can change KERAS_BACKEND: for good
        backend().modules(hide_stderr)  # quietly, under TF_CPP_MIN_LOG_LEVEL (runtime.py)
        import_checks()
    for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice by forks
        with contextlib.suppress(Exception):
            stream.flush()
    gc.collect()
    gc.freeze()


def serve_connection(connection) -> None:
    """Serve the supervisor on `connection` for one target, in a process of its own (started, or
    forked by forkserver.py), and end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()  # a segfault leaves its Python stack in the capture (fd 2)
    descendants.become_subreaper()  # what the layer starts stays under this process (descendants.py)
    _report_os_exit(connection)
    _exit_with_parent()
    if not connection.poll():
        _warm_up(connection)
    try:
        request = connection.recv()
    except (EOFError, OSError):
        request = ("stop",)
    if request[0] == "check":
        _, target, options, cwd, debug = request
        _flush()
        os.ftruncate(1, 0)  # the warm-up's words are not the target's; fd 1 and 2 append, so writes restart at 0
        with contextlib.suppress(OSError):
            connection.send(check_one(connection, target, options, cwd, debug))
    _flush()
    # Skip interpreter teardown: TensorFlow's takes time and has nothing to save.
    _real_exit(0)


def check_one(connection, target: str, options, cwd: str, debug: bool) -> tuple:
    """Run one check and return its result message; every way the layer's code can end becomes one.

    The processes the layer's code left running are ended first, and named in the result; the
    user's files the target imported are sent just before it.
    """
    from ..layer.loading import own_imports
    from ..layer.source import error_text, exit_message, unhandled_message
    from ..pipeline import build_report

    stages = ["loading the target"]
    result: tuple
    start = memory.at_start()

    def enter(phrase: str) -> None:
        stages.append(phrase)
        connection.send(("stage", phrase))
        _send_imports(connection)  # a module imported while loading the target is told now

    def count(done: int, total: int) -> None:  # a few times a second at most (progress.py)
        connection.send(("progress", done, total))

    try:
        os.chdir(cwd)
        with own_imports() as imported:
            _imports[:] = [imported, ()]
            report = build_report(target, options, fresh_session=True, stage=enter, progress=count)
        result = ("report", report)
    except GradcheckError as error:
        # Messages are raised `from None` to keep them one paragraph; --debug promises the user's
        # own traceback, which is the suppressed context.
        error.__suppress_context__ = False
        # The layer's own code raised (building or calling it): the line, for a comparison of backends.
        raised = (getattr(error, "location", None) or "",) if isinstance(error, LayerFailed) else ()
        result = ("failure", str(error), _traceback(error, debug), *raised)
    except (SystemExit, KeyboardInterrupt) as error:
        result = ("failure", exit_message(error, stages[-1]), _traceback(error, debug))
    except LayerRaised as raised:  # the layer raised where no check expected it
        result = ("failure", unhandled_message(raised, target), _traceback(raised, debug))
    except Exception as error:
        # TensorFlow's messages run to pages of frames and object ids; the short reason keeps the
        # paragraph (and the JSON holding it) the same from run to run.
        message = (
            f"gradcheck failed on {target} with {type(error).__name__}: {sentence(error_text(error, 300))} This is a bug in "
            "gradcheck, not in your layer; run again with --debug and report the traceback."
        )
        result = ("failure", message, _traceback(error, debug))
    finally:
        _flush()
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # a layer may have replaced them
    _send_imports(connection)
    with contextlib.suppress(OSError, ValueError):
        connection.send(("memory", start, memory.peak()))
    return _with_leftovers(result, descendants.end_descendants())


def _with_leftovers(result: tuple, left: descendants.Leftovers) -> tuple:
    """The result message, told of the processes the layer left running (now ended)."""
    from ..report import sort_findings

    if result[0] == "report":
        report = result[1]
        if left.commands:
            extra = leftovers_finding(left.commands, left.survivors)
            report = dataclasses.replace(report, findings=sort_findings((*report.findings, extra)))
        return ("report", report.to_dict())
    if left.commands:
        return ("failure", f"{result[1]} {leftovers_sentence(left.commands, left.survivors)}", result[2])
    return result


def _send_imports(connection) -> None:
    """Tell the supervisor the user's files imported so far, when there are more than it was told."""
    if not _imports:
        return
    imported, told = _imports
    files = imported.files()
    if files != told:
        _imports[1] = files
        with contextlib.suppress(OSError, ValueError):
            connection.send(("imported", files))


class _Wanted(BaseException):
    """A target arrived while the worker warmed up: the warm-up stops at its next stage."""


def _warm_up(connection) -> None:
    """Check a layer of Keras's own while no target has been sent (a spare, forked ahead of its target).

    A fresh process pays for TensorFlow's runtime the first time it runs each kind of op (the eager
    context, kernels, function instantiation): about 0.1 s of a small layer's 0.25 s first check.
    Paid here, beside the supervisor's check of the previous target, most of it is not paid on the
    next target's time. The quickest check is enough (without finite differences and the reload,
    whose warm-up took longer than it saved: bench/fresh_worker.py). No user code runs here, and the
    target's check starts with a clean Keras session.
    """
    from ..options.settings import make_options
    from ..pipeline import build_report
    from ..runtime import backend

    def stage(phrase: str) -> None:
        if connection.poll():  # the target is waiting (or the supervisor is gone): stop here
            raise _Wanted()

    with contextlib.suppress(BaseException):
        _, keras = backend().modules()
        options = make_options(input_shape=["4,5"], numeric=False, reload=False)
        build_report(keras.layers.Dense(3), options, fresh_session=True, stage=stage)


def _traceback(error: BaseException, debug: bool) -> str | None:
    return "".join(traceback.format_exception(error)) if debug else None


def _flush() -> None:
    """Push Python's buffered text into the capture file; a layer may have closed or replaced a stream."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()  # type: ignore[union-attr]  # a None stream raises, and is suppressed


def _report_os_exit(connection) -> None:
    """Make os._exit say where it was called before the process ends, so the message can name the line."""
    from ..layer.source import user_location

    worker = os.getpid()

    def reporting_exit(status: int) -> None:
        if os.getpid() != worker:  # a process the layer forked (a daemon's first fork) exits: not ours to tell
            _real_exit(status)
        try:
            _send_imports(connection)
            connection.send(("exit", status, user_location(traceback.extract_stack()[:-1])))
            _flush()
            descendants.end_descendants(grace=0.5)  # none of the layer's processes outlives it
        finally:
            _real_exit(status)

    os._exit = reporting_exit  # type: ignore[assignment]


def _exit_with_parent() -> None:
    """End when the supervisor is gone (killed with SIGKILL), rather than finish a check nobody reads."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        descendants.end_descendants(grace=0.0)
        _real_exit(1)

    threading.Thread(target=watch, name="gradcheck-parent-watch", daemon=True).start()
