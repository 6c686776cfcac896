"""What a daemon's fork servers were imported from, so a client never uses a stale one (standard library only).

A daemon's fork servers import TensorFlow, Keras and gradcheck once and keep them; what they
imported must be what a cold run would import now. The daemon takes this fingerprint as it starts,
before its first server imports anything, and a client compares its own with it before each run:
any difference and the daemon is replaced. It holds
- Python: its version and the interpreter's real path;
- gradcheck: the size and modification time of every file of the package (an editable install
  whose source changed: cheaper than reading them, and a changed file changes its time);
- the installed distributions: the names of the `*.dist-info`, `*.egg-info` and `*.pth` entries of
  site-packages, which carry each version (`tensorflow-2.21.0.dist-info`), so an upgrade or an
  install of anything the servers may have imported (TensorFlow, Keras, JAX, torch, numpy) counts;
- the mount namespace, so a client in a container never uses a daemon outside it (their paths differ).

The user's own modules are not in it: a daemon never imports them (each worker does, fresh).
What a server read from its environment as it imported is not either: the daemon keeps one fork
server per `server_key` (daemon.py), so a client whose values differ gets a server of its own, as a
cold run would start one. The key holds
- the variables read at import: the fork server's `_READ_AT_IMPORT`, and those a cold run need not
  compare (its command has one environment) but a daemon serving many shells must: JAX's and
  torch's settings, the C library's (malloc, locale, time zone), XDG_CACHE_HOME (where JAX keeps
  its compiled programs);
- Keras's config file (keras.json under KERAS_HOME, else ~/.keras), which Keras reads once as it is
  imported: floatx, epsilon, image_data_format. An edit makes a new server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import site
import stat
import sys

from .forkserver import _READ_AT_IMPORT

PARTS = ("python", "gradcheck", "packages", "mounts")
_ALSO_READ_AT_IMPORT = ("JAX_", "TORCH", "PYTORCH_", "NUMPY_", "MALLOC_", "GLIBC_TUNABLES", "XDG_CACHE_HOME")
_LOCALE = ("LANG", "LC_", "TZ")  # exact names or prefixes, as the C library and Python's start read them


def fingerprint() -> dict[str, object]:
    """This process's fingerprint (a few milliseconds: one stat per file of gradcheck)."""
    return {
        "python": f"{sys.version} {os.path.realpath(sys.executable)}",
        "gradcheck": _package_digest(),
        "packages": _distributions(),
        "mounts": _mount_namespace(),
    }


def differences(daemon: object, client: object) -> list[str]:
    """What differs between the daemon's fingerprint and a client's, in words ([] when they match)."""
    if not isinstance(daemon, dict) or not isinstance(client, dict):
        return ["its fingerprint is unreadable"]
    found = []
    if daemon.get("python") != client.get("python"):
        found.append("another Python")
    if daemon.get("gradcheck") != client.get("gradcheck"):
        found.append("gradcheck's files have changed since it started")
    if daemon.get("packages") != client.get("packages"):
        found.append(_changed_packages(daemon.get("packages"), client.get("packages")))
    if daemon.get("mounts") != client.get("mounts"):
        found.append("another mount namespace (a container)")
    extra = set(client) ^ set(daemon)
    if extra and not found:
        found.append("another gradcheck (its fingerprint has other parts)")
    return found


def server_key(environment: dict[str, str]) -> tuple:
    """What a fork server imported under `environment` read from it: the variables read at import,
    and Keras's config file as Keras would find it (a server for another key is another server)."""
    read = _READ_AT_IMPORT + _ALSO_READ_AT_IMPORT + _LOCALE
    variables = sorted((name, value) for name, value in environment.items() if name.startswith(read))
    return (*variables, ("keras.json", keras_config(environment)))


def keras_config(environment: dict[str, str]) -> str:
    """Keras's config file as a Keras imported under `environment` reads it (keras/src/backend/
    config.py: KERAS_HOME, else ~/.keras, else /tmp/.keras when the home folder is not writable),
    as its path and values; "" for none (Keras then keeps its defaults), and its path alone for one
    that is not a regular file (a FIFO there must not hang the daemon). A missing file and the
    defaults Keras writes in its place read alike, so a first import does not make the next request
    look changed."""
    if "KERAS_HOME" in environment:
        folder = environment["KERAS_HOME"]
    else:
        home = environment.get("HOME") or os.path.expanduser("~")
        folder = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    path = os.path.join(folder, "keras.json")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return ""
    with os.fdopen(descriptor, "rb") as config:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return f"{path}\0not a file"
        text = config.read(1_000_000)
    try:
        values = json.loads(text)
    except ValueError:
        return f"{path}\0{text.hex()}"
    if isinstance(values, dict) and {**_KERAS_DEFAULTS, **values} == _KERAS_DEFAULTS:
        return ""
    return f"{path}\0{json.dumps(values, sort_keys=True)}"


# What Keras writes when it finds no config file (its defaults): read as no file.
_KERAS_DEFAULTS = {"floatx": "float32", "epsilon": 1e-07, "backend": "tensorflow", "image_data_format": "channels_last"}


def _package_digest() -> str:
    import gradcheck

    root = os.path.dirname(os.path.abspath(gradcheck.__file__))
    digest = hashlib.sha256(root.encode("utf-8", "surrogateescape"))
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
        for name in sorted(files):
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                info = os.stat(path)
                digest.update(f"{os.path.relpath(path, root)}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def _site_folders() -> list[str]:
    folders = list(getattr(site, "getsitepackages", list)())
    with contextlib.suppress(Exception):
        folders.append(site.getusersitepackages())
    return [folder for folder in dict.fromkeys(folders) if os.path.isdir(folder)]


def _distributions() -> list[str]:
    found = []
    for folder in _site_folders():
        with contextlib.suppress(OSError):
            found += [
                f"{folder}/{name}" for name in os.listdir(folder) if name.endswith((".dist-info", ".egg-info", ".pth"))
            ]
    return sorted(found)


def _changed_packages(daemon: object, client: object) -> str:
    """`tensorflow-2.21.0 is now tensorflow-2.21.1`, or the entries added and removed."""
    before = {os.path.basename(str(entry)) for entry in daemon} if isinstance(daemon, list) else set()
    after = {os.path.basename(str(entry)) for entry in client} if isinstance(client, list) else set()
    removed, added = sorted(before - after), sorted(after - before)
    names = [_name(entry) for entry in removed + added]
    words = []
    for entry in removed:
        replacement = [new for new in added if _name(new) == _name(entry)]
        if replacement:
            words.append(f"{_shown(entry)} is now {_shown(replacement[0])}")
        else:
            words.append(f"{_shown(entry)} was removed")
    words += [f"{_shown(entry)} was installed" for entry in added if names.count(_name(entry)) == 1]
    shown = "; ".join(words[:3]) + (f" and {len(words) - 3} more" if len(words) > 3 else "")
    return f"the installed packages have changed ({shown or 'site-packages moved'})"


def _name(entry: str) -> str:
    return entry.split("-", 1)[0].lower()


def _shown(entry: str) -> str:
    for suffix in (".dist-info", ".egg-info"):
        entry = entry.removesuffix(suffix)
    return entry


def _mount_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/mnt")
    except OSError:
        return ""
