"""`--daemon [start|stop|status]`: the project's daemon started, stopped or described, in one line.

Answered at once, like --version: nothing is checked and no framework is imported here (the daemon
imports TensorFlow in its own fork server, in the background). The line goes to stdout; a daemon
that cannot be started or trusted is a usage problem (one paragraph on stderr, exit status 2).
`status` exits 0 when a daemon runs for the project and 1 when none does.
"""

from __future__ import annotations

import os
import time

import click

from ..errors import GradcheckError, sentence
from .usage import UsageProblem

ACTIONS = ("start", "stop", "status")


def daemon_action(ctx, param, value) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from ..isolation import daemon_client, daemon_place

    try:
        daemon_client.require_linux()
        project = daemon_place.project_root(os.getcwd())
        status, text = {"start": _start, "stop": _stop, "status": _status}[value](project)
    except GradcheckError as error:
        raise UsageProblem(str(error)) from None
    click.echo(text)
    ctx.exit(status)


def _start(project: str) -> tuple[int, str]:
    from ..isolation import daemon_client, daemon_key, daemon_place, inherited

    idle = daemon_place.idle_seconds()
    place = daemon_place.place_for(project, create=True)
    assert place is not None
    link = daemon_client.connect(place)
    replacing = ""
    if link is not None:
        reply = link.ask(("hello", daemon_key.fingerprint(), inherited.capture()))
        link.close()
        info = reply[-1]
        if reply[0] == "welcome":
            return (
                0,
                f"gradcheck's daemon already runs for {project} ({_described(info)}); `gradcheck --daemon stop` ends it.",
            )
        if reply[0] == "refused":
            raise GradcheckError(
                f"gradcheck's daemon for {project} (pid {info['pid']}) cannot fork workers for this shell: {reply[1]}. "
                "Stop it with `gradcheck --daemon stop` and start it from here."
            )
        daemon_client.stop_daemon(place)
        replacing = f", replacing pid {info['pid']}, which was out of date ({'; '.join(reply[1])})"
    pid, said = daemon_client.spawn(place, idle)
    if pid is None and said == "running":  # another command started one meanwhile
        return _start(project)
    if pid is None:
        raise GradcheckError(f"gradcheck's daemon for {project} could not start: {sentence(said)}")
    off = " (GRADCHECK_DAEMON is off in this shell: its runs stay cold)" if daemon_place.disabled() else ""
    return 0, (
        f"gradcheck's daemon started for {project} (pid {pid}){replacing}: runs here now fork their workers "
        f"from it{off}. It ends after {_duration(idle)} idle, or with `gradcheck --daemon stop`."
    )


def _stop(project: str) -> tuple[int, str]:
    from ..isolation import daemon_client, daemon_place

    place = daemon_place.place_for(project, create=False)
    pid = daemon_client.stop_daemon(place) if place is not None and os.path.lexists(place.socket) else None
    if pid is None:
        return 0, f"No gradcheck daemon runs for {project}."
    return 0, f"gradcheck's daemon for {project} (pid {pid}) was stopped."


def _status(project: str) -> tuple[int, str]:
    from ..isolation import daemon_client, daemon_key, daemon_place

    place = daemon_place.place_for(project, create=False)
    link = daemon_client.connect(place) if place is not None and os.path.lexists(place.socket) else None
    if link is None:
        return 1, f"No gradcheck daemon runs for {project}."
    info = link.ask(("status", daemon_key.fingerprint()))[-1]
    link.close()
    text = f"gradcheck's daemon runs for {project} ({_described(info)}); its log: {info['log']}."
    if info["stale"]:
        text += f" It is out of date ({'; '.join(info['stale'])}): the next run replaces it."
    return 0, text


def _described(info: dict) -> str:
    started = time.strftime("%H:%M", time.localtime(info["started"]))
    idle = info.get("idle_since")
    since = f"idle {_duration(time.time() - idle)}" if idle is not None else "busy"
    backends = ", ".join(sorted({backend or "tensorflow" for backend, _ in info.get("servers", [])})) or "none yet"
    return (
        f"pid {info['pid']}, since {started}, {since}, ends after {_duration(info['idle'])} idle; "
        f"fork servers: {backends}"
    )


def _duration(seconds: float) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = max(1, round(seconds))
    return f"{count} second{'s' if count != 1 else ''}"
