"""What a worker inherits from the command besides its environment and working folder (standard library only).

A cold run's worker is forked from a fork server the command started, so it inherits the command's
umask, resource limits (`ulimit -v` to cap a layer's memory, `ulimit -c`), CPU affinity (`taskset`,
which TensorFlow sizes its thread pools by) and scheduling priority (`nice`). A daemon's server was
started by another command, so the client sends its own (`capture`), the daemon refuses a client
whose limits its workers could not take (`refusal`: a hard limit above the daemon's, other groups),
and each worker sets them as it is forked (`apply`), before the layer's code runs. Two things cannot
follow: the stack size of threads, which the C library fixes when a process starts, and a priority
above the daemon's (a lower nice value), which only root may give: such a worker runs at the
daemon's (slower, with the same result), not refused, since a daemon started under `nice` would
otherwise serve nobody.
"""

from __future__ import annotations

import contextlib
import os
import resource

_LIMITS = sorted(name for name in dir(resource) if name.startswith("RLIMIT_"))


def capture() -> dict:
    """This process's umask, resource limits, CPU affinity, priority and groups, as plain data."""
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "umask": _umask(),
        "limits": {name: list(resource.getrlimit(getattr(resource, name))) for name in _LIMITS},
        "affinity": affinity,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "groups": [os.getgid(), sorted(os.getgroups())],
    }


def refusal(attributes: object) -> str | None:
    """Why a worker forked here could not be given `attributes` (None: it can)."""
    try:
        if not isinstance(attributes, dict):
            raise TypeError
        if attributes["groups"] != [os.getgid(), sorted(os.getgroups())]:
            return "the command runs with other groups than the daemon (newgrp, sg)"
        if not isinstance(attributes["umask"], int):
            raise TypeError
        for name, (soft, hard) in attributes["limits"].items():
            if name not in _LIMITS or not isinstance(soft, int) or not isinstance(hard, int):
                raise TypeError
            own = resource.getrlimit(getattr(resource, name))[1]
            if os.geteuid() != 0 and _above(hard, own):
                return f"the command's hard {name} limit (ulimit -H) is above the daemon's"
        nice = attributes["nice"]
        if not isinstance(nice, int):
            raise TypeError
        affinity = attributes["affinity"]
        if affinity is not None and not all(isinstance(cpu, int) for cpu in affinity):
            raise TypeError
    except (TypeError, KeyError, ValueError, AttributeError):
        return "its description of the command's process is malformed"
    return None


def apply(attributes: dict) -> None:
    """Give this process (a worker just forked) `attributes`, which refusal() accepted."""
    os.umask(attributes["umask"])
    for name, (soft, hard) in attributes["limits"].items():
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(getattr(resource, name), (soft, hard))
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, attributes["nice"])
    if attributes["affinity"] is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(0, attributes["affinity"])


def _above(limit: int, own: int) -> bool:
    if own == resource.RLIM_INFINITY:
        return False
    return limit == resource.RLIM_INFINITY or limit > own


def _umask() -> int:
    """The umask, read without changing it where /proc says it (another thread may make files meanwhile)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
