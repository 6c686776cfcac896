"""The processes under a process (Linux: /proc): listed, named, ended and reaped.

A layer's code may start processes (`subprocess.Popen` in its module, in build() or in call(), a
daemon that forks twice and calls setsid) and leave them running; none may outlive its check.
Each worker and the fork server mark themselves child subreapers (a Linux prctl): a process under
one of them whose parent ends is handed to it rather than to init, so everything a layer started
stays in its worker's tree, however it was daemonised, and is found here by walking the parent
links of /proc. Without /proc (macOS, Windows) nothing here acts: the supervisor ends a worker's
process group where there are groups (supervisor.py), which holds whatever the layer started
without a session of its own.

Nothing here imports more than the standard library: the supervisor uses it too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass

AVAILABLE = sys.platform.startswith("linux") and os.path.isdir("/proc")
_PR_SET_CHILD_SUBREAPER = 36
_SHOWN = 60  # characters of a command line kept in a message


def become_subreaper() -> bool:
    """Have orphans under this process handed to it (PR_SET_CHILD_SUBREAPER); False where that is not possible."""
    if not AVAILABLE:
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _table() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, state letter)."""
    table: dict[int, tuple[int, str]] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as stream:
                    fields = stream.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue  # it ended while the table was read
            table[int(name)] = (int(fields[1]), fields[0].decode("ascii", "replace"))
    return table


def descendants(root: int, table: dict[int, tuple[int, str]] | None = None) -> list[int]:
    """The processes under `root` that are still running (not zombies), nearest first."""
    table = _table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    level = [root]
    while level:
        level = [child for parent in level for child in children.get(parent, ()) if child != root]
        found += level
    return [pid for pid in found if table[pid][1] != "Z"]


def children_of(root: int) -> list[int]:
    """The running processes whose parent is `root`."""
    return [pid for pid, (parent, state) in _table().items() if parent == root and state != "Z"]


def command_line(pid: int) -> str:
    """What a process runs, as one short printable line (`sleep 300`; `[name]` when it has no command line)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            words = [word.decode("utf-8", "replace") for word in stream.read().split(b"\0") if word]
    except OSError:
        words = []
    if not words:
        try:
            with open(f"/proc/{pid}/comm", "rb") as stream:
                words = [f"[{stream.read().decode('utf-8', 'replace').strip()}]"]
        except OSError:
            words = ["[ended]"]
    text = " ".join(" ".join(words).split())  # one line: newlines and runs of spaces become one space
    text = "".join(char if char.isprintable() else "?" for char in text)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


@dataclass(frozen=True)
class Leftovers:
    """The processes found running under a process, and those that could not be ended."""

    commands: tuple[str, ...] = ()  # each one's command line, in the order found
    survivors: tuple[str, ...] = ()  # still running at the end (uninterruptible, or not ours to signal)


def end_descendants(root: int | None = None, grace: float = 1.0, reap: bool = True) -> Leftovers:
    """End every process under `root` (this process by default) and say which were running.

    Each gets SIGTERM (and SIGCONT, so a stopped one can act on it); whatever still runs `grace`
    seconds later gets SIGKILL, and so does anything started meanwhile once the grace is over.
    With `reap`, this process's own children that ended are waited for, so none is left a zombie
    (orphans handed to a subreaper are its children too). Gives up 5 s after the grace.
    """
    if not AVAILABLE:
        return Leftovers()
    root = os.getpid() if root is None else root
    found: dict[int, str] = {}
    warned: set[int] = set()
    started = time.monotonic()
    live: list[int] = []
    while True:
        if reap:
            _reap_children()
        live = descendants(root)
        if not live:
            break
        for pid in live:
            found.setdefault(pid, command_line(pid))
        elapsed = time.monotonic() - started
        if elapsed > grace + 5.0:
            break
        for pid in live:
            if elapsed >= grace:
                _signal(pid, signal.SIGKILL)
            elif pid not in warned:
                warned.add(pid)
                _signal(pid, signal.SIGTERM)
                _signal(pid, signal.SIGCONT)
        time.sleep(0.01)
    return Leftovers(tuple(found.values()), tuple(found[pid] for pid in live if pid in found))


def kill_tree(root: int, include_root: bool = True) -> None:
    """SIGKILL every process under `root`, then `root` itself (the supervisor ending a fork server or a
    worker it started: what they started goes first, while they still adopt what it leaves). Linux only."""
    if not AVAILABLE:
        return
    for _ in range(50):  # each round ends what the previous one's deaths handed up
        live = descendants(root)
        if not live:
            break
        for pid in live:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.005)
    if include_root:
        _signal(root, signal.SIGKILL)


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, number)


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
