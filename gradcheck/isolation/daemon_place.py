"""Where a project's daemon lives, and the checks that it is the user's own (standard library only).

One daemon per project and Python environment: the project is the nearest folder at or above the
working folder that holds a pyproject.toml (the working folder itself when none does), so a run from
any subfolder finds the same daemon; the environment is sys.prefix, so two virtual environments of
one project (other gradcheck or TensorFlow versions) each get their own. Its files are named by a
digest of both, in the user's runtime folder: $XDG_RUNTIME_DIR/gradcheck when that folder is the
user's and private, else gradcheck-UID in the temporary folder. Either folder is made 0700 and
checked, before anything in it is trusted, to be a real folder (not a symlink) owned by the user and
closed to everyone else; the socket to be a socket (not a symlink) owned by the user. Another user
who made the folder first, or put a socket or a link there, gets the daemon refused, never used.

    DIGEST.sock   the daemon's Unix socket (0600); a daemon killed with SIGKILL leaves it, and the
                  next command that looks for the daemon removes it (nobody holds the lock)
    DIGEST.lock   held (flock) by the running daemon: one per project, and a dead one's socket told;
                  kept after the daemon ends (removing it would race with the next daemon's start)
    DIGEST.log    the daemon's stdout and stderr, kept after it ends: what one reads afterwards
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import socket
import stat
import struct
import sys
import tempfile
from dataclasses import dataclass

from ..errors import GradcheckError

DEFAULT_IDLE = 1200.0  # seconds without a run before the daemon ends (20 minutes)
_SOCKET_PATH_LIMIT = 107  # bytes of a Unix socket's path (sun_path), its terminating NUL aside


class Unusable(GradcheckError):
    """The daemon's folder or socket cannot be trusted or used; the message says why and what to do."""


@dataclass(frozen=True)
class Place:
    project: str
    folder: str
    socket: str
    lock: str
    log: str


def project_root(cwd: str) -> str:
    """The nearest folder at or above `cwd` holding a pyproject.toml, else `cwd`."""
    folder = os.path.abspath(cwd)
    while True:
        if os.path.isfile(os.path.join(folder, "pyproject.toml")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return os.path.abspath(cwd)
        folder = parent


def place_for(project: str, create: bool) -> Place | None:
    """The files of `project`'s daemon, the folder made when `create`; None when the folder does not
    exist (no daemon was ever started there). Raises Unusable when the folder is not the user's."""
    folder = runtime_folder()
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)
    elif not os.path.lexists(folder):
        return None
    problem = private_folder_problem(folder)
    if problem:
        raise Unusable(problem)
    key = f"{os.path.realpath(project)}\0{os.path.realpath(sys.prefix)}".encode("utf-8", "surrogateescape")
    base = os.path.join(folder, hashlib.sha256(key).hexdigest()[:20])
    place = Place(project, folder, base + ".sock", base + ".lock", base + ".log")
    if len(os.fsencode(place.socket)) > _SOCKET_PATH_LIMIT:
        raise Unusable(
            f"The daemon's socket would be {place.socket}, longer than a Unix socket's path may be "
            f"({_SOCKET_PATH_LIMIT} bytes). Set XDG_RUNTIME_DIR (or TMPDIR) to a shorter folder of your own."
        )
    return place


def runtime_folder() -> str:
    """$XDG_RUNTIME_DIR/gradcheck when $XDG_RUNTIME_DIR is a private folder of the user's, else
    gradcheck-UID in the temporary folder."""
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    if base and os.path.isabs(base) and private_folder_problem(base) is None:
        return os.path.join(base, "gradcheck")
    return os.path.join(tempfile.gettempdir(), f"gradcheck-{os.getuid()}")


def private_folder_problem(folder: str) -> str | None:
    """Why `folder` cannot hold the daemon's socket (None: it can): not there, a symlink, not a
    folder, another user's, or open to others."""
    try:
        info = os.lstat(folder)
    except OSError as error:
        return f"gradcheck's daemon folder {folder} cannot be read ({error.strerror})."
    if stat.S_ISLNK(info.st_mode):
        return f"gradcheck's daemon folder {folder} is a symbolic link; {_NOT_TRUSTED}"
    if not stat.S_ISDIR(info.st_mode):
        return f"gradcheck's daemon folder {folder} is not a folder; {_NOT_TRUSTED}"
    if info.st_uid != os.getuid():
        return f"gradcheck's daemon folder {folder} belongs to uid {info.st_uid}, not to you (uid {os.getuid()}); {_NOT_TRUSTED}"
    if info.st_mode & 0o077:
        return (
            f"gradcheck's daemon folder {folder} is open to other users (mode {stat.S_IMODE(info.st_mode):o}, "
            f"it must be 700); {_NOT_TRUSTED}"
        )
    return None


_NOT_TRUSTED = (
    "a daemon there is not used, since another user could have put it there. Remove it, or set "
    "XDG_RUNTIME_DIR to a private folder of your own."
)


def socket_problem(path: str) -> str | None:
    """Why the file at `path` is not a daemon's socket to connect to (None: it is one of the user's)."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return f"gradcheck's daemon socket {path} cannot be read ({error.strerror})."
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link, not gradcheck's daemon socket; it was not used. Remove it."
    if not stat.S_ISSOCK(info.st_mode):
        return f"{path} is not a socket; it was not used as gradcheck's daemon socket. Remove it."
    if info.st_uid != os.getuid():
        return f"gradcheck's daemon socket {path} belongs to uid {info.st_uid}, not to you; it was not used. Remove it."
    return None


def peer(connected: socket.socket) -> tuple[int, int]:
    """The (pid, uid) of the process at the other end of a Unix socket (SO_PEERCRED, Linux): the
    kernel's word, taken when it connected or listened, which no file permission can fake."""
    pid, uid, _ = struct.unpack("3i", connected.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return pid, uid


def open_lock(place: Place) -> int:
    """The lock file's descriptor (made 0600 when missing; never through a symlink)."""
    return os.open(place.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def disabled() -> bool:
    """GRADCHECK_DAEMON=off (or 0, no, false): every run is a cold one, whatever daemon runs."""
    return os.environ.get("GRADCHECK_DAEMON", "").strip().lower() in ("off", "0", "no", "false")


def idle_seconds() -> float:
    """GRADCHECK_DAEMON_IDLE, the seconds a daemon waits without a run before it ends (default 1200)."""
    text = os.environ.get("GRADCHECK_DAEMON_IDLE", "").strip()
    if not text:
        return DEFAULT_IDLE
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise GradcheckError(
            f"GRADCHECK_DAEMON_IDLE is {text[:40]!r}; it must be the daemon's idle time in seconds, a "
            f"number above 0 (default {DEFAULT_IDLE:g}, 20 minutes). Set it to one, or unset it."
        )
    return value
