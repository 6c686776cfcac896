"""The files worker processes and fork servers write, made so that none outlives them, however they end.

A process killed with SIGKILL (a time limit, the out-of-memory killer, a layer that signals its
parent) runs no cleanup of its own, and a worker ends with os._exit, so the atexit cleanups of the
libraries it ran never run either (TensorFlow's AutoGraph leaves a generated module in the
temporary folder for every function it converts). So nothing is left to the process that writes:

- A worker's folder (`WorkerFolder`): made by the supervisor for each worker, it holds the file the
  worker's fd 1 and 2 write to (`output`) and is the worker's temporary folder (tempfile.tempdir:
  the reload check's .keras files, AutoGraph's modules, the layer's own temporary files). The
  supervisor removes it whole once the worker has sent its result, died or been ended.
- A fork server's output (`UnnamedFile`): unlinked the moment it is made; the server writes through
  the descriptor it inherits, its supervisor (or daemon) reads through the one it keeps. There is
  nothing to remove, whichever of them is killed.

Only a supervisor itself killed with SIGKILL leaves its workers' folders (gradcheck-XXXXXXXX in the
temporary folder) behind: nothing is left that could remove them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

OUTPUT = "output"  # the name of a worker's fd 1 and 2 in its folder


def tail_of(path: str, limit: int) -> str:
    """The last `limit` characters of a capture file ("" if it is gone), marked when cut."""
    try:
        with open(path, "rb") as stream:
            return _tail(stream.read(), limit)
    except OSError:
        return ""


def _tail(data: bytes, limit: int) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


def temporary_folder_of(output: str) -> str:
    """The temporary folder of the worker whose fd 1 and 2 write to `output` (its folder)."""
    return os.path.dirname(output)


class WorkerFolder:
    """A folder of the supervisor's for one worker: its output, and its temporary files."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="gradcheck-")
        self.output = os.path.join(self.path, OUTPUT)
        try:
            os.close(os.open(self.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except BaseException:
            self.remove()
            raise

    def open_output(self) -> int:
        """A descriptor that appends to the output (fd 1 and 2 of a worker started here)."""
        return os.open(self.output, os.O_WRONLY | os.O_APPEND)

    def tail(self, limit: int) -> str:
        return tail_of(self.output, limit)

    def remove(self) -> None:
        """Remove the folder and whatever the worker left in it (again: nothing happens)."""
        shutil.rmtree(self.path, ignore_errors=True)


class UnnamedFile:
    """A temporary file without a name: `fd` is handed to a child as its fd 1 and 2, and read here."""

    def __init__(self, prefix: str) -> None:
        self.fd, path = tempfile.mkstemp(prefix=prefix, suffix=".out")
        os.unlink(path)

    def tail(self, limit: int) -> str:
        """The last `limit` characters written ("" once closed), marked when cut."""
        chunks = []
        with contextlib.suppress(OSError):
            offset = 0
            while chunk := os.pread(self.fd, 1 << 20, offset):
                chunks.append(chunk)
                offset += len(chunk)
        return _tail(b"".join(chunks), limit)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
