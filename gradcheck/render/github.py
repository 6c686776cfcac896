"""GitHub Actions workflow commands: each finding becomes an annotation on the line it points at.

`::error file=F,line=L,title=CODE::message` puts the message on that line of the pull request's
diff. Errors, warnings and infos map to `::error`, `::warning` and `::notice`. Values are escaped
as the Actions runner reads them (actions/toolkit `command.ts`): `%`, CR and LF in the message;
those and `:` and `,` in a property, since they separate properties. Escaping every line break
means no text (a target, a layer's exception message) can start a command line of its own.
An ignored finding gets no annotation (a team accepted it); the verdict line counts it.

GitHub shows at most 10 error and 10 warning annotations per step (50 per job) and drops the rest:
a run with more findings than that should also upload `--format sarif` to code scanning.
"""

from __future__ import annotations

from ..report import ERROR, INFO, WARNING, TargetFailure, counted, fails, not_compared_note
from .causes import one_per_cause

_COMMAND = {ERROR: "error", WARNING: "warning", INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **properties) -> str:
    """One workflow command line; properties that are None are left out."""
    shown = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{kind}{' ' + shown if shown else ''}::{escape_data(message)}"


def _file_and_line(location):
    """'path/to/file.py:12' -> ('path/to/file.py', '12'); no location, or no line, -> (None, None)."""
    if not location:
        return None, None
    path, _, line = location.rpartition(":")
    if not path or not line.isdigit():
        return None, None
    return path, line


def render(results, *, fail_on: str = ERROR, **_presentation) -> str:
    lines = []
    for result in results:
        if isinstance(result, TargetFailure):
            lines.append(command("error", f"{result.target}: {result.message}", title="gradcheck could not run"))
            continue
        for item in one_per_cause(result.findings):  # one annotation per op at fault (causes.py)
            if item.ignored:
                continue
            path, line = _file_and_line(item.location)
            lines.append(
                command(
                    _COMMAND[item.severity], f"{result.target}: {item.message}", file=path, line=line, title=item.code
                )
            )
    # Plain lines are shown in the job's log as they are: a verdict per target, for the reader there.
    # The target is escaped as data too: a line break in it would start a line the runner reads.
    for result in results:
        target = escape_data(result.target)
        if isinstance(result, TargetFailure):
            lines.append(f"gradcheck: could not run {target}")
        else:
            verdict = "FAILED" if fails(result, fail_on) else "OK"  # as the exit status: --fail-on decides
            lines.append(f"gradcheck: {verdict} {target}: {counted(result)}{not_compared_note(result)}")
    return "\n".join(lines) + "\n"
