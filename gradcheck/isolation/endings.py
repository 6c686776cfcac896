"""What to tell the user about a check whose worker ended without a result, or overran its time:
how it ended, and what to do about it (supervisor.py turns each into a target that could not run);
and about the processes the layer's code left running, which the worker ended (worker.py)."""

from __future__ import annotations

import signal

_CRASH_SIGNALS = {"SIGSEGV", "SIGBUS", "SIGABRT", "SIGFPE", "SIGILL"}


def ended_message(
    code: int | None,
    stage: str,
    exit_call: tuple | None,
    *,
    with_server: bool,
    before_forked: bool,
    daemon_log: str | None = None,
) -> str:
    """A worker that ended without a result: `code` as Popen gives it, `stage` the step it was in,
    `exit_call` (status, where) when the layer's code called os._exit, `with_server` when the fork
    server died under it (`code` is then the server's), `before_forked` when the server never forked
    it, `daemon_log` the log of the daemon (gradcheck --daemon) that ended under it."""
    during = f"while {stage}"
    server_ended = f"was ended by {signal_name(-code)}" if code is not None and code < 0 else f"exited ({code})"
    if exit_call is not None:
        status, where = exit_call
        whose = "module" if stage == "loading the target" else "code"
        how = f"The layer's {whose} called os._exit({status}){f' at {where}' if where else ''} {during}"
        advice = "An exit is never a pass: remove the call from the code being checked."
    elif daemon_log is not None:
        how = (
            f"gradcheck's daemon (gradcheck --daemon), which forks the workers, ended "
            f"{during if not before_forked else 'before it could start one'}, and its workers with it"
        )
        advice = (
            f"Its log may say why: {daemon_log}. The next targets and runs are checked without it "
            "until `gradcheck --daemon` starts a new one."
        )
    elif with_server and before_forked:
        how = (
            f"gradcheck's fork server, the process that imports TensorFlow and Keras for the workers, "
            f"{server_ended} before it could start one"
        )
        advice = (
            "TensorFlow or Keras cannot be imported in this environment (a TensorFlow built for CPU "
            "instructions this machine lacks ends this way); the captured output holds what the "
            'server wrote. Check that `python -c "import tensorflow, keras"` works with this Python.'
        )
    elif with_server:
        how = (
            f"gradcheck's fork server, the process the worker was forked from, {server_ended} {during}, "
            "and the worker with it"
        )
        advice = (
            "The kernel's out-of-memory killer sends SIGKILL, and so does code that signals its parent "
            "(os.kill(os.getppid(), ...)): look at the layer's memory use and at what its code signals."
        )
    elif code is not None and code < 0:
        name = signal_name(-code)
        if name == "SIGKILL":
            how = f"The worker checking it was killed (SIGKILL) {during}"
            advice = (
                "The kernel's out-of-memory killer ends a process this way: use a smaller "
                "--input-shape, or look at the layer's memory use."
            )
        elif name in _CRASH_SIGNALS:
            how = f"The worker checking it crashed ({name}) {during}"
            advice = (
                "The crash is in native code (TensorFlow or an extension the layer calls); "
                "the captured output holds the Python stack at the crash."
            )
        else:
            how = f"The worker checking it was ended by {name} {during}"
            advice = "Something outside gradcheck sent the signal; run the check again."
    else:
        how = f"The worker checking it exited with status {code} {during}, without a result"
        advice = (
            "The layer's code, or a library it calls, ended the process (os._exit or a "
            "fatal error); an exit is never a pass."
        )
    return f"{how}. {advice} The target was not checked."


def overran_message(started: bool, timeout: float | None, stage: str, startup_limit: float) -> str:
    """A worker that did not start within `startup_limit`, or whose check ran past `timeout`."""
    if not started:
        return (
            f"The worker did not start within {startup_limit:g} s (importing TensorFlow). "
            "Check that `python -c 'import tensorflow'` works in this environment."
        )
    return (
        f"The check did not finish within {timeout:g} s; it was stopped while {stage} "
        "(the layer may hang in build() or call()). Check the layer for an endless loop, or allow "
        "more time with --timeout SECONDS."
    )


def leftovers_finding(commands: tuple[str, ...], survivors: tuple[str, ...]):
    """The info finding of a report whose layer left processes running when its check ended."""
    from .. import codes
    from ..report import finding

    return finding(codes.PROCESSES_LEFT_RUNNING, None, leftovers_sentence(commands, survivors) + _LEFTOVER_ADVICE)


_LEFTOVER_ADVICE = (
    " A layer should end the processes it starts (wait for them, or terminate them): in training they"
    " would pile up, one for every build or call that starts one."
)


def leftovers_sentence(commands: tuple[str, ...], survivors: tuple[str, ...]) -> str:
    """`The layer's code left 2 processes running: `sleep 300`, `sleep 301`; gradcheck ended them.`"""
    count = len(commands)
    shown = ", ".join(f"`{command}`" for command in commands[:3])
    if count > 3:
        shown += f" and {count - 3} more"
    noun = "process" if count == 1 else "processes"
    if not survivors:
        outcome = f"gradcheck ended {'it' if count == 1 else 'them'}"
    else:
        outcome = (
            f"gradcheck could not end {len(survivors)} of them ({', '.join(f'`{c}`' for c in survivors[:3])}), "
            "which may still be running"
        )
    return f"The layer's code left {count} {noun} running when its check ended: {shown}; {outcome}."


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
