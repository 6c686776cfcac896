"""The worker process: the one place where the code under check runs.

supervisor.py starts it (on Linux forked from the fork server, forkserver.py, which calls
serve_connection; elsewhere `python -c ... serve()` with one end of a multiprocessing Pipe as its
argument) and talks to it over that Pipe, never over fd 1 or 2: the supervisor points them at a
capture file for the worker's whole life, so whatever the layer writes
(print, os.write(1, ...), tf.print, TensorFlow's C++ log lines, a crash dump) lands there, and the
supervisor reads it after each target. Messages are tuples of plain data:

    supervisor -> worker   ("check", target, options, cwd, debug)  or  ("stop",)
    worker -> supervisor   ("stage", phrase)        as each step of the check starts
                           ("progress", done, total)  how far a counted step has got (progress.py)
                           ("exit", status, where)  just before the layer's code calls os._exit
                           ("report", Report.to_dict())  or  ("failure", message, traceback or None)

The worker ignores SIGINT: on Ctrl-C the supervisor decides, and ends it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import threading
import time
import traceback

from ..errors import GradcheckError, LayerRaised

_real_exit = os._exit


def serve() -> None:
    """Check targets as the supervisor asks, one at a time, until told to stop or the pipe closes.

    sys.argv[1] is the file descriptor of this worker's end of the pipe.
    """
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # before the import: Ctrl-C is the supervisor's
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
        from ..runtime import backend

        backend().modules(hide_stderr)  # quietly, under TF_CPP_MIN_LOG_LEVEL (runtime.py)
        import_checks()
    for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice by forks
        with contextlib.suppress(Exception):
            stream.flush()
    gc.collect()
    gc.freeze()


def serve_connection(connection) -> None:
    """Serve the supervisor on `connection`, in a process of its own (started, or forked by forkserver.py)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()  # a segfault leaves its Python stack in the capture (fd 2)
    _report_os_exit(connection)
    _exit_with_parent()
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            break
        if request[0] != "check":
            break
        _, target, options, cwd, debug = request
        _flush()
        os.ftruncate(1, 0)  # one target's output per capture; fd 1 and 2 append, so writes restart at 0
        connection.send(check_one(connection, target, options, cwd, debug))
    _flush()
    # Skip interpreter teardown: TensorFlow's takes time and has nothing to save.
    _real_exit(0)


def check_one(connection, target: str, options, cwd: str, debug: bool) -> tuple:
    """Run one check and return its result message; every way the layer's code can end becomes one."""
    from ..layer.loading import own_imports
    from ..layer.source import error_text, exit_message, unhandled_message
    from ..pipeline import build_report

    stages = ["loading the target"]

    def enter(phrase: str) -> None:
        stages.append(phrase)
        connection.send(("stage", phrase))

    def count(done: int, total: int) -> None:  # a few times a second at most (progress.py)
        connection.send(("progress", done, total))

    try:
        os.chdir(cwd)
        with own_imports():
            report = build_report(target, options, fresh_session=True, stage=enter, progress=count)
        return ("report", report.to_dict())
    except GradcheckError as error:
        # Messages are raised `from None` to keep them one paragraph; --debug promises the user's
        # own traceback, which is the suppressed context.
        error.__suppress_context__ = False
        return ("failure", str(error), _traceback(error, debug))
    except (SystemExit, KeyboardInterrupt) as error:
        return ("failure", exit_message(error, stages[-1]), _traceback(error, debug))
    except LayerRaised as raised:  # the layer raised where no check expected it
        return ("failure", unhandled_message(raised, target), _traceback(raised, debug))
    except Exception as error:
        # TensorFlow's messages run to pages of frames and object ids; the short reason keeps the
        # paragraph (and the JSON holding it) the same from run to run.
        reason = error_text(error, 300).rstrip(".")
        message = (
            f"gradcheck failed on {target} with {type(error).__name__}: {reason}. This is a bug in "
            "gradcheck, not in your layer; run again with --debug and report the traceback."
        )
        return ("failure", message, _traceback(error, debug))
    finally:
        _flush()
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # a layer may have replaced them


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

    def reporting_exit(status: int) -> None:
        try:
            connection.send(("exit", status, user_location(traceback.extract_stack()[:-1])))
            _flush()
        finally:
            _real_exit(status)

    os._exit = reporting_exit  # type: ignore[assignment]


def _exit_with_parent() -> None:
    """End when the supervisor is gone (killed with SIGKILL), rather than finish a check nobody reads."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        _real_exit(1)

    threading.Thread(target=watch, name="gradcheck-parent-watch", daemon=True).start()
