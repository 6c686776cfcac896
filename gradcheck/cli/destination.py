"""Where the report goes: stdout, or the --output file, written so that nothing half-done is left.

The --output path is checked before any target runs: a report written over a file the run reads
(the layer's own source, pyproject.toml) would destroy it; and again once the targets ran, against
every user file they imported (a sibling helpers.py: `refuse_imported_output`). So is a stdout that
is closed, or whose reader has already gone: the checks would run for a report nobody can read. A
regular file is written as editors do, to a temporary file in the same folder and then renamed over
the target (through a symbolic link, the file it points to), so an interrupted or failed run leaves
an existing report as it was. A character device or a FIFO (`/dev/null`, a named pipe,
`/dev/stdout`) is written in place: renaming a file over it would replace the device for every
later process. Whatever cannot be written (a full disk or /dev/full, a read-only folder, /proc) is
a GradcheckError, exit status 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import stat
import sys
import tempfile

from ..errors import GradcheckError
from ..gate.sources import target_file
from .streams import silence

PYPROJECT = "pyproject.toml"


def check_output_path(output: str | None, targets: list[str], also_read: dict[str, str] | None = None) -> None:
    """Refuse an --output the run could not write, or must not: a folder, a socket or block device,
    or a file the run reads; without --output, a stdout that is closed or already has no reader.
    `also_read`: more files the run reads or writes ({path: what it is}), such as the --baseline file."""
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
    """Refuse to write `given` (the value of `option`) when it is a folder, a socket or block device,
    its folder is missing or not writable, or it is one of the files in `read` ({path: what it is}).
    A character device or FIFO is written in place, so only its own permission matters."""
    path = os.path.abspath(given)
    kind = _kind(path)
    if kind == "folder":
        raise GradcheckError(
            f"{option} {given} is a folder. Give a file name, e.g. {option} {os.path.join(given, example)}."
        )
    if kind in ("socket", "block device"):
        raise GradcheckError(
            f"{option} {given} is a {kind}, not a file a {product} can be written to. Give a file name, "
            f"e.g. {option} {example}."
        )
    if kind in ("character device", "FIFO"):
        if not os.access(path, os.W_OK):
            raise GradcheckError(f"{option} {given} is a {kind} you cannot write to. Give a file name instead.")
        return  # written in place: its folder need not be writable, and it is no file the run reads
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        raise GradcheckError(
            f"{option} {given}: there is no folder {folder}. Create it first, or write the {product} elsewhere."
        )
    if not os.access(folder, os.W_OK):
        raise GradcheckError(
            f"{option} {given}: the folder {folder} is not writable. Write the {product} to a folder you can write to."
        )
    for file, what in read.items():
        if os.path.abspath(file) == path or _same_file(file, path):
            raise GradcheckError(
                f"{option} {given} is {what}: this run reads it, and the {product} would overwrite it. "
                f"Give another file, e.g. {option} {example}."
            )


def refuse_imported_output(output: str | None, imported: list[tuple[str, ...]]) -> None:
    """Refuse an --output that is one of the user's source files a target imported (supervisor.Outcome.user_files)."""
    if output is None:
        return
    path = os.path.abspath(output)
    for file in sorted({file for files in imported for file in files}):
        if _same_file(file, path):
            raise GradcheckError(
                f"--output {output} is {file}, a source file the checked code imported: the report "
                "would overwrite it, so it was not written. Give another file, e.g. --output "
                "gradcheck-report.txt."
            )


def _same_file(file: str, path: str) -> bool:
    with contextlib.suppress(OSError):
        return os.path.samefile(file, path)
    return False


def _kind(path: str) -> str | None:
    """What is at `path` (through symbolic links): None when nothing is."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    for test, kind in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return kind
    return "special file"


def write_output(output: str | None, text: str, option: str = "--output", product: str = "report") -> None:
    """Write the report `text` to stdout, or into the file `output` (see the module's docstring).

    A character stdout cannot encode is replaced (a report is never lost to a UnicodeEncodeError);
    a stdout that is closed, has lost its reader or cannot take the text (/dev/full) is a
    GradcheckError rather than a traceback.
    """
    if output is not None:
        _write_file(output, text, option, product)
        return
    if sys.stdout is None:
        raise _stdout_closed()
    try:
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:
            sys.stdout.write(text)
        else:
            sys.stdout.flush()
            buffer.write(text.encode(sys.stdout.encoding or "utf-8", errors="replace"))
        sys.stdout.flush()
    except BrokenPipeError:
        raise _stdout_gone() from None
    except (OSError, ValueError) as error:
        silence(sys.stdout)
        raise GradcheckError(
            f"The report could not be written to stdout ({_reason(error)}). Send stdout somewhere that "
            "can take it, or write the report to a file with --output FILE."
        ) from None


def _write_file(output: str, text: str, option: str, product: str) -> None:
    path = os.path.abspath(output)
    kind = _kind(path)
    try:
        if kind in ("character device", "FIFO"):
            with open(path, "w", encoding="utf-8") as stream:  # in place: nothing is renamed over it
                stream.write(text)
        elif kind in (None, "file"):
            with _atomic_file(os.path.realpath(path)) as stream:
                stream.write(text)
        else:
            raise OSError(f"it is a {kind}")
    except OSError as error:
        raise GradcheckError(
            f"{option} {output}: the {product} could not be written ({_reason(error)}); nothing there was "
            f"replaced. Give a path you can write to{', or leave --output out to print the report' * (option == '--output')}."
        ) from None


def _reason(error: OSError | ValueError) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _refuse_a_closed_stdout() -> None:
    """Raise now when the command has no stdout (started with it closed: `>&-`), or when stdout is
    a pipe whose reading end has already closed (`gradcheck ... | head -0`, a reader that died).
    poll() tells the latter without writing: POLLERR on a pipe's writing end. A file, a terminal or
    a reader that closes later is met by write_output."""
    if sys.stdout is None:
        raise _stdout_closed()
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # POLLERR is reported whatever is asked for
        closed = any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # no poll(), or no fd
        return
    if closed:
        raise _stdout_gone()


def _stdout_closed() -> GradcheckError:
    return GradcheckError(
        "stdout is closed (the command was started without one, as `>&-` does), so the report has "
        "nowhere to go. Send stdout to a file or a pipe, or write the report with --output FILE."
    )


def _stdout_gone() -> GradcheckError:
    silence(sys.stdout)  # so the interpreter's final flush does not fail a second time
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
