"""The terminal report: per target a header, a table of tensors, the findings and a verdict.

`render()` returns the report as a string; the CLI decides the width and colour (renderers.py)
and writes it. Everything the user wrote — the target, file paths, tensor names, messages that
quote them — reaches rich only as `Text`, on a console with markup and emoji off, so `[red]` or
`:smile:` in a name is printed as typed.

Width: with a width (a terminal), every line fits it. The table drops or stacks its low-value
columns (tensor_table.py) before any name or status would be cut, and findings wrap with a
hanging indent. Without one (a pipe, a file, a CI log) every line is as long as its content,
since nobody can widen a log afterwards.
"""

from __future__ import annotations

import io
from typing import Literal, Optional

from ..report import (
    ERROR,
    INFO,
    WARNING,
    Report,
    TargetFailure,
    comparison_line,
    counted,
    fails,
    not_compared_note,
    versions_line,
)
from .causes import one_per_cause
from .table import grid, table_lines

_SEVERITY_STYLE = {ERROR: "bold red", WARNING: "yellow", INFO: "cyan"}
_INDENT = 8  # findings: the message hangs under the code, past the severity column
UNLIMITED = 100_000  # "no width": longer than any line gradcheck writes


def make_console(
    width: Optional[int], color: bool, *, record: bool = False, color_system: Literal["auto", "truecolor"] = "auto"
):
    """A rich console writing into a string: no markup, no emoji, no highlighting of user text."""
    from rich.console import Console

    return Console(
        file=io.StringIO(),
        width=width or UNLIMITED,
        force_terminal=color,
        force_jupyter=False,
        color_system=color_system if color else None,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
        record=record,
        legacy_windows=False,
    )


def render(
    results,
    *,
    quiet: bool = False,
    width: Optional[int] = None,
    color: bool = False,
    fail_on: str = ERROR,
    show_ignored: bool = False,
) -> str:
    """The text report of `results` (Reports and TargetFailures), `fail_on` deciding each verdict."""
    out = make_console(width, color)
    draw(out, results, quiet=quiet, fail_on=fail_on, wrap=width is not None, show_ignored=show_ignored)
    return out.file.getvalue()


def draw(out, results, *, quiet: bool, fail_on: str, wrap: bool, show_ignored: bool = False) -> None:
    """Print the report on `out` (a rich Console); svg.py draws the same lines."""
    writer = _Writer(out, wrap)
    labels = target_labels(results)
    several = len(results) > 1
    first = True
    for result, label in zip(results, labels):
        if quiet and not several and isinstance(result, Report):
            # One target, -q: only its warnings and errors, as `assert_trainable` shows them.
            _findings(writer, result, quiet=True, show_ignored=show_ignored)
            continue
        if not first:
            writer.blank()  # one blank line between targets
        first = False
        if isinstance(result, TargetFailure):
            writer.line(_verdict_text(result, label, fail_on), hang=2)
            continue
        if quiet:
            writer.line(_verdict_text(result, label, fail_on, quiet=True), hang=2)
            _findings(writer, result, quiet=True, show_ignored=show_ignored)
            continue
        _header(writer, result, label)
        for text, hang in table_lines(result, writer.width):
            writer.line(text, hang=hang)
        _policies_and_reload(writer, result)
        if result.findings:
            writer.blank()
            _findings(writer, result, quiet=False, show_ignored=show_ignored)
            _footer(writer, result, show_ignored)
        writer.blank()
        writer.line(_verdict_text(result, label, fail_on), hang=2)
    if several:
        if not quiet:
            writer.blank()
            _summary(writer, results, labels, fail_on)
        writer.blank()
        writer.line(overall_verdict(results, fail_on), hang=2)


def target_labels(results) -> list[str]:
    """Each result's target, with its entry number where two entries share a target."""
    targets = [r.target for r in results]
    return [f"{t} (entry {i + 1})" if targets.count(t) > 1 else t for i, t in enumerate(targets)]


def verdict_words(result, fail_on: str, *, quiet: bool = False) -> tuple[str, str]:
    """(word, the rest) of one target's verdict; FAILED exactly when it makes the exit status 1.
    `quiet`: the counts alone, without the notes a first reader needs."""
    if isinstance(result, TargetFailure):
        return "COULD NOT RUN", f": {result.message}"
    skipped = not_compared_note(result)  # nothing left out of the comparison goes unsaid
    if fails(result, fail_on):
        note = f" (--fail-on {fail_on})" if fail_on != ERROR else ""
        return "FAILED", f": {counted(result)}{note}{skipped}."
    if quiet:
        return "OK", f": {counted(result)}{skipped}."
    if result.count(WARNING):
        return "OK", f": {counted(result)} (warnings fail the run only with --fail-on warning){skipped}."
    # A BatchNormalization's moving statistics are tracked but not trainable, by design.
    trainable = all(t.kind in ("trainable", "overwritten") for t in result.variables if t.read_by_call)
    tracked = f"every weight call() uses is tracked{' and trainable' * trainable}"
    return "OK", f": {counted(result)}; {tracked}{skipped}."


def overall_verdict(results, fail_on: str):
    """The last line of a several-target report: it says FAILED exactly when the exit status is 1."""
    from rich.text import Text

    failed = sum(1 for r in results if fails(r, fail_on))
    broken = sum(1 for r in results if isinstance(r, TargetFailure))
    total = len(results)
    note = f" (--fail-on {fail_on})" if fail_on != ERROR else ""
    unit = _unit(results)
    if broken:
        word, rest = (
            "COULD NOT RUN",
            f" {broken} of {total} {unit}; {failed} failed{note}, {total - broken - failed} ok.",
        )
    elif failed:
        word, rest = "FAILED", f" {failed} of {total} {unit}{note}."
    else:
        word, rest = "OK", f" all {total} {unit}{note}."
    return Text.assemble((word, "bold green" if word == "OK" else "bold red"), rest)


def _unit(results) -> str:
    """What the verdict counts: targets, or, when a target runs on several backends, its runs
    ("3 runs (1 target on 3 backends)"), so one layer is not counted as three."""
    backends = {r.backend for r in results if getattr(r, "backend", None) is not None}
    if len(backends) < 2:
        return "targets"
    # Readable formats name each target with its backend (report.with_backends_named): not counted.
    targets = len({r.target.removesuffix(f" [{r.backend}]") if r.backend else r.target for r in results})
    return f"runs ({targets} target{'s' * (targets != 1)} on {len(backends)} backends)"


def _verdict_text(result, label: str, fail_on: str, *, quiet: bool = False):
    from rich.text import Text

    word, rest = verdict_words(result, fail_on, quiet=quiet)
    return Text.assemble((word, "bold green" if word == "OK" else "bold red"), " ", label, rest)


def _header(writer, report: Report, label: str) -> None:
    from rich.text import Text

    modes = ", ".join(report.training_modes)
    facts = f"{versions_line(report)} · seed {report.seed} · training={modes}" + (
        " · stochastic" if report.stochastic else ""
    )
    head = Text.assemble(("gradcheck ", "bold"), label)
    if writer.width is None or head.cell_len + 3 + len(facts) <= writer.width:
        writer.line(Text.assemble(head, "   ", (facts, "dim")))
    else:  # the facts on a line of their own rather than broken in the middle
        writer.line(head, hang=2)
        writer.line(Text(facts, style="dim"), hang=2)


def _policies_and_reload(writer, report: Report) -> None:
    """A line per --dtype-policy and a "reloads" line (the round trip's status)."""
    from rich.text import Text

    for policy in report.dtype_policies:
        worst = max(policy.gradient_errors.values(), default=None)
        writer.line(
            Text(
                f"dtype policy {policy.policy}: output {', '.join(policy.output_dtypes) or '?'}"
                f" · output error {_number(policy.output_error)} · worst gradient error {_number(worst)}"
                f" · {policy.status}"
            ),
            hang=2,
        )
    if report.reload is not None:
        writer.line(
            Text(f"reloads: {report.reload} (from_config(get_config()), then a .keras save and load_model)"), hang=2
        )
    compared = comparison_line(report)
    if compared:
        writer.line(Text(compared), hang=2)


def _number(value) -> str:
    return "-" if value is None else f"{value:.2e}"


def shown_findings(report: Report, *, quiet: bool, show_ignored: bool) -> list:
    """The findings a text report lists: no infos under --quiet, ignored ones only with --show-ignored
    (after the others, since they do not count)."""
    listed = [f for f in report.findings if not (quiet and f.severity == INFO)]
    counting = [f for f in listed if not f.ignored]
    return counting + ([f for f in listed if f.ignored] if show_ignored else [])


def _findings(writer, report: Report, *, quiet: bool, show_ignored: bool) -> None:
    from rich.text import Text

    # One entry per op at fault: the tensors it cuts, kills or saturates share it (causes.py).
    for item in one_per_cause(shown_findings(report, quiet=quiet, show_ignored=show_ignored)):
        label = "IGNORED" if item.ignored else item.severity.upper()
        style = "dim" if item.ignored else _SEVERITY_STYLE[item.severity]
        head = Text.assemble((f"{label:{_INDENT - 1}} ", style), (item.code, "bold"))
        if item.tensor:
            head.append(f"  {item.tensor}")
        if item.location:
            head.append(f"  {item.location}", style="dim")
        writer.line(head, hang=_INDENT)
        if item.ignored:
            reason = f": {item.ignore_reason}" if item.ignore_reason else " (no reason given)"
            writer.line(Text(f"{item.severity} ignored by {item.ignored_by}{reason}", style="dim"), indent=_INDENT)
        writer.line(Text(item.message), indent=_INDENT)


def _footer(writer, report: Report, show_ignored: bool) -> None:
    """How many findings are ignored (when not listed), and where each code is explained."""
    from rich.text import Text

    hidden = 0 if show_ignored else report.ignored_count
    if hidden:
        them = "it" if hidden == 1 else "them"
        writer.line(
            Text(
                f"{hidden} ignored finding{'s' * (hidden != 1)} not listed (--show-ignored lists {them}).", style="dim"
            ),
            hang=2,
        )
    listed = [f.code for f in shown_findings(report, quiet=False, show_ignored=show_ignored)]
    if listed:
        writer.line(
            Text(f"What a code means and how to fix it: gradcheck --explain CODE (e.g. {listed[0]}).", style="dim"),
            hang=2,
        )


class _Writer:
    """Prints Text lines on a console: within the width (hanging `indent`) or, without one, whole."""

    def __init__(self, out, wrap: bool):
        self.out = out
        self.width: Optional[int] = out.width if wrap else None

    def blank(self) -> None:
        self.out.print()

    def line(self, text, *, indent: int = 0, hang: int = 0) -> None:
        """Print `text` `indent` columns in; wrapped to the width, continuation lines `hang` further in.

        A line that already fits (a table row) is printed unchanged.
        """
        for paragraph in text.split("\n"):
            for part in self._wrapped(paragraph, indent, hang):
                part.rstrip()
                self.out.print(_indented(part, indent), soft_wrap=True)

    def _wrapped(self, text, indent: int, hang: int) -> list:
        if self.width is None:
            return [text]
        # rich breaks at spaces and folds a word longer than the line (a path) rather than cut it.
        room = max(self.width - indent, 20)
        lines = list(text.wrap(self.out, room, overflow="fold"))
        if hang and len(lines) > 1:
            rest = text[len(lines[0].plain) :]
            rest = rest[len(rest.plain) - len(rest.plain.lstrip(" ")) :]
            tail = rest.wrap(self.out, max(room - hang, 20), overflow="fold")
            lines = lines[:1] + [_indented(part, hang) for part in tail]
        return lines


def _indented(text, indent: int):
    from rich.text import Text

    return Text.assemble(" " * indent, text) if indent else text


def _summary(writer, results, labels, fail_on: str) -> None:
    from rich.text import Text

    targets = [r.target for r in results]
    repeated = len(set(targets)) < len(targets)
    rows = []
    for index, result in enumerate(results):
        if isinstance(result, TargetFailure):
            outcome, errors, warnings = Text("could not run", style="bold red"), "", ""
        else:
            failed = fails(result, fail_on)
            outcome = Text("failed", style="bold red") if failed else Text("ok", style="green")
            errors, warnings = str(result.count(ERROR)), str(result.count(WARNING))
        cells = [Text(result.target), outcome, Text(errors), Text(warnings)]
        rows.append(([Text(str(index + 1))] if repeated else []) + cells)
    headers = (["entry"] if repeated else []) + ["target", "result", "errors", "warnings"]
    writer.line(Text("summary", style="bold"))
    lines = grid(headers, rows, writer.width)
    if lines is None:  # a target longer than the terminal: one wrapped line per target
        lines = [
            Text.assemble(
                *row[:-4],
                " " * repeated,
                row[-4],
                ": ",
                row[-3],
                "" if isinstance(result, TargetFailure) else f", {counted(result)}",
            )
            for row, result in zip(rows, results)
        ]
    for text in lines:
        writer.line(text, hang=2)
