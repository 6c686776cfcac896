"""The worker's resident memory (RSS): when a check starts, and its peak while the check runs.

Told to the supervisor with each result and printed under --debug, so a user whose layer is large
sees what checking it costs (bench/big_layers.py reads the same line). A worker forked from the
fork server starts with the server's pages (TensorFlow imported, about half a gigabyte) counted
in its RSS; the memory the check itself needed is the peak less that start. On Linux the peak is
reset when the check starts (/proc/self/clear_refs), so a spare's warm-up does not count in it;
elsewhere it is the process's peak (getrusage) and the start is not known.
"""

from __future__ import annotations

import contextlib
import os
import sys


def at_start() -> int | None:
    """The resident memory now, in bytes (None where it cannot be read), the peak reset to it."""
    try:
        with open("/proc/self/statm") as statm:
            resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM, the peak, back to the resident memory now
    return resident


def peak() -> int | None:
    """The peak resident memory since at_start() (Linux), or of the whole process, in bytes."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    try:
        import resource
    except ImportError:  # Windows
        return None
    largest = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return largest if sys.platform == "darwin" else largest * 1024  # bytes on macOS, kB elsewhere


def described(start: int | None, top: int | None) -> str | None:
    """The --debug line's words: 'peak memory 812 MB resident, 252 MB more than at the start'."""
    if top is None:
        return None
    words = f"peak memory of its worker {top / 2**20:,.0f} MB resident"
    if start is not None:
        words += f", {max(top - start, 0) / 2**20:,.0f} MB more than when the check started"
    return words
