"""Where the report goes: stdout, or the --output file, written so that nothing half-done is left.

The --output path is checked before any target runs: a report written over a file the run reads
(the layer's own source, pyproject.toml) would destroy it. So is a stdout whose reader has already
gone: the checks would run for a report nobody can read. The file is written as editors do, to a
temporary file in the same folder and then renamed over the target, so an interrupted or failed
run leaves an existing report as it was.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import sys
import tempfile

from ..errors import GradcheckError
from ..gate.sources import target_file

PYPROJECT = "pyproject.toml"


def check_output_path(output: str | None, targets: list[str], also_read: dict[str, str] | None = None) -> None:
    """Refuse an --output the run could not write, or must not: a folder, or a file the run reads;
    without --output, a stdout that is already closed. `also_read`: more files the run reads or
    writes ({path: what it is}), such as the --baseline file."""
    if output is None:
        _refuse_a_closed_stdout()
        return
    check_writable("--output", output, {**files_read(targets), **(also_read or {})}, "gradcheck-report.txt", "report")


def files_read(targets: list[str]) -> dict[str, str]:
    """{path: what it is} of the files every run reads: ./pyproject.toml and the targets' sources."""
    read = {PYPROJECT: "./pyproject.toml, which lists the targets"}
    for target in targets:
        source = target_file(target)
        if source is not None:
            read[source] = f"the source of {target}"
    return read


def check_writable(option: str, given: str, read: dict[str, str], example: str, product: str) -> None:
    """Refuse to write `given` (the value of `option`) when it is a folder, its folder is missing
    or not writable, or it is one of the files in `read` ({path: what it is})."""
    path = os.path.abspath(given)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise GradcheckError(
            f"{option} {given} is a folder. Give a file name, e.g. {option} {os.path.join(given, example)}."
        )
    if not os.path.isdir(folder):
        raise GradcheckError(
            f"{option} {given}: there is no folder {folder}. Create it first, or write the {product} elsewhere."
        )
    if not os.access(folder, os.W_OK):
        raise GradcheckError(
            f"{option} {given}: the folder {folder} is not writable. Write the {product} to a folder you can write to."
        )
    for file, what in read.items():
        same = os.path.abspath(file) == path or (
            os.path.exists(file) and os.path.exists(path) and os.path.samefile(file, path)
        )
        if same:
            raise GradcheckError(
                f"{option} {given} is {what}: this run reads it, and the {product} would overwrite it. "
                f"Give another file, e.g. {option} {example}."
            )


def write_output(output: str | None, text: str) -> None:
    """Write the report `text` to stdout, or atomically into the file `output`.

    A character stdout cannot encode is replaced (a report is never lost to a UnicodeEncodeError),
    and a closed stdout (`gradcheck ... | head -0`) is a GradcheckError rather than a traceback.
    """
    if output is not None:
        with _atomic_file(output) as stream:
            stream.write(text)
        return
    try:
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:
            sys.stdout.write(text)
        else:
            sys.stdout.flush()
            buffer.write(text.encode(sys.stdout.encoding or "utf-8", errors="replace"))
        sys.stdout.flush()
    except BrokenPipeError:
        raise _stdout_closed() from None


def _refuse_a_closed_stdout() -> None:
    """Raise now when stdout is a pipe whose reading end has already closed (`gradcheck ... | head
    -0`, a reader that died). poll() tells it without writing: POLLERR on a pipe's writing end. A
    file, a terminal or a reader that closes later is met by write_output."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # POLLERR is reported whatever is asked for
        closed = any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # no poll(), or no fd
        return
    if closed:
        raise _stdout_closed()


def _stdout_closed() -> GradcheckError:
    # Point fd 1 at /dev/null, so the interpreter's final flush does not fail a second time.
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return GradcheckError(
        "stdout was closed before the report was written (the reading end of a pipe ended). "
        "Let the reader take the whole report, or write it to a file with --output FILE."
    )


@contextlib.contextmanager
def _atomic_file(output: str):
    path = os.path.abspath(output)
    handle, temporary = tempfile.mkstemp(prefix=".gradcheck-", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with open(handle, "w", encoding="utf-8") as stream:
            yield stream
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def _mode_for(path: str) -> int:
    """Keep an existing report's permissions; a new one gets the usual 0o666 less the umask, not mkstemp's 0o600."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
