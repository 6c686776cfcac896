"""The in-process time limit of `check()` (the command and `check(isolate=True)` do not use it).

A worker process can be ended whatever it is doing; a check run in the caller's own process can
only be interrupted, and only where Python code runs. So this is a best effort, and says so.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from ..errors import TimeLimitReached


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """A best-effort limit for the in-process check(): the command and check(isolate=True) do not use it.

    SIGALRM interrupts Python code (a loop in call()) but not a long TensorFlow op or a
    tf.while_loop, and a broad `except` in the code being run can swallow it. It works only in the
    main thread, so elsewhere (a pytest-xdist worker thread, a notebook thread) no limit is set.
    The supervisor's limit (supervisor.check_targets) has none of these gaps: it ends the worker process.
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
        raise TimeLimitReached(message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except Exception:
        # Keras rewrites an exception raised inside Layer.__call__ ("Exception encountered when
        # calling ..."), so the one raised above may come back wrapped: give the plain message.
        if expired:
            raise TimeLimitReached(message) from None
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
