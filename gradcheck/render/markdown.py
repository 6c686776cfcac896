"""A GitHub-flavoured Markdown report, for $GITHUB_STEP_SUMMARY and pull-request comments.

Per target: the verdict as a heading, the tensor table, then the findings with `file:line`.
Everything the user wrote (target, paths, tensor names, messages) is escaped so that GitHub shows
it as typed: names and paths go in code spans; other text has Markdown's active characters
backslash-escaped, `<` and `&` written as entities, and `|` escaped in table cells. A message's
own code spans (`bias`, `tf.stop_gradient`) stay code spans, rebuilt so their content is shown
as typed. GitHub turns `:name:` into an emoji even after escaping (outside code), so a zero-width
space is put after the first colon of such a pair in prose. Control characters never get here:
render.visible escaped them, so a CR cannot cut a table row.
"""

from __future__ import annotations

import math
import re

from ..report import ERROR, WARNING, Report, TargetFailure, comparison_line, fails, versions_line
from .causes import one_per_cause
from .text import overall_verdict, shown_findings, target_labels, verdict_words

# Active anywhere in a line; `(`, `!` and `#` matter only next to `]`, `[` or at a line start.
_ACTIVE = re.compile(r"([\\`*_\[\]|~])")
_LINE_START = re.compile(r"^(\s*)([#>+=-]|\d+(?=[.)]))")
_EMOJI = re.compile(r":([A-Za-z0-9_+-]+):")
_SPAN = re.compile(r"`([^`\n]+)`")
_COLUMNS = ("tensor", "kind", "shape", "gradient ratio", "status", "trains under fit()", "finite diff.")


def text(value: str) -> str:
    """Prose: shown as typed, never as Markdown, HTML or an emoji shortcode."""
    value = value.replace("&", "&amp;").replace("<", "&lt;")
    value = _ACTIVE.sub(r"\\\1", value)
    value = _LINE_START.sub(_escape_line_start, value)
    return _EMOJI.sub(":\u200b\\1:", value)


def _escape_line_start(match) -> str:
    """`# x` -> `\\# x` (not a heading), `1. x` -> `1\\. x` (not a list item)."""
    space, marker = match.groups()
    return f"{space}{marker}\\" if marker[0].isdigit() else f"{space}\\{marker}"


def prose(value: str) -> str:
    """A message: its `code spans` kept as code, the text between them shown as typed."""
    parts, start = [], 0
    for match in _SPAN.finditer(value):
        parts.append(text(value[start : match.start()]))
        parts.append(code(match.group(1)))
        start = match.end()
    parts.append(text(value[start:]))
    return "".join(parts)


def code(value: str) -> str:
    """A code span holding `value` exactly, whatever backticks it contains (CommonMark's rule)."""
    value = value.replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value.strip() else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def cell(value: str) -> str:
    """A table cell: `|` would end the cell, even inside a code span, unless escaped (GFM)."""
    return value.replace("|", "\\|")


def render(results, *, fail_on: str = ERROR, quiet: bool = False, **_presentation) -> str:
    labels = target_labels(results)
    parts = []
    if len(results) > 1:
        parts.append(f"## gradcheck: {text(overall_verdict(results, fail_on).plain)}")
        parts.append(_summary(results, fail_on))
    for result, label in zip(results, labels):
        parts.append(_target(result, label, fail_on, quiet, level="###" if len(results) > 1 else "##"))
    return "\n\n".join(parts) + "\n"


def _target(result, label: str, fail_on: str, quiet: bool, level: str) -> str:
    word, rest = verdict_words(result, fail_on, quiet=quiet)
    if isinstance(result, TargetFailure):
        return f"{level} {word} {code(label)}\n\n{text(result.message)}"
    lines = [f"{level} {word} {code(label)}", "", text(rest.lstrip(": ")), ""]
    lines.append(text(f"{versions_line(result)} · seed {result.seed} · training={', '.join(result.training_modes)}"))
    compared = comparison_line(result)
    if compared:
        lines += ["", text(compared)]
    if not quiet and (result.variables or result.inputs):
        lines += ["", _table(result)]
    listed = one_per_cause(shown_findings(result, quiet=quiet, show_ignored=False))
    if listed:
        lines += ["", "**Findings**", ""] + [_finding(item) for item in listed]
        lines += ["", text(f"What a code means and how to fix it: gradcheck --explain CODE (e.g. {listed[0].code}).")]
    ignored = [f for f in result.findings if f.ignored]
    if ignored:  # a pull request's reviewer sees what was accepted, and why
        lines += ["", "<details><summary>" + text(f"{len(ignored)} ignored") + "</summary>", ""]
        lines += [_finding(item) for item in one_per_cause(ignored)] + ["", "</details>"]
    return "\n".join(lines)


def _table(report: Report) -> str:
    rows = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for t in report.variables:
        status: str = t.gradient_status or ("not read" if not t.read_by_call else "")
        name = t.name + (f" ({t.layer})" if t.layer else "")
        fit = "written" if t.kind == "overwritten" else t.trains_under_fit  # Keras assigns it (inventory.py)
        rows.append(_row(name, t.kind, t.shape, t.gradient_ratio, status, fit, t.numeric_verdict, t.numeric_error))
    for i in report.inputs:
        status = i.gradient_status or ("not differentiable" if not i.differentiable else "")
        rows.append(
            _row(
                i.name, f"input {i.dtype}", i.shape, i.gradient_ratio, status, None, i.numeric_verdict, i.numeric_error
            )
        )
    thresholds = (
        f"gradient ratio: RMS(gradient) / max(RMS(tensor), 1); vanishing below "
        f"{report.vanishing_threshold:g}, exploding above {report.exploding_threshold:g}."
    )
    return "\n".join(rows) + "\n\n" + text(thresholds)


def _row(name, kind, shape, ratio, status, fit, verdict, error) -> str:
    ratio_text = f"{ratio:.1e}" if ratio is not None and math.isfinite(ratio) else ""
    numeric = (verdict or "") + (f" {error:.2e}" if verdict and error is not None and math.isfinite(error) else "")
    cells = [
        code(name),
        text(kind),
        "x".join(map(str, shape)) or "scalar",
        ratio_text,
        f"**{status}**" if status not in ("ok", "") else status,
        fit if isinstance(fit, str) else {True: "yes", False: "no", None: ""}[fit],
        text(numeric),
    ]
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def _finding(item) -> str:
    head = f"- **{item.severity.upper()}** {code(item.code)}"
    if item.tensor:
        head += f" {code(item.tensor)}"
    if item.location:
        head += f" at {code(item.location)}"
    body = "<br>".join(prose(line) for line in item.message.split("\n"))
    if item.ignored:
        reason = f": {prose(item.ignore_reason)}" if item.ignore_reason else " (no reason given)"
        body = f"*ignored by {text(item.ignored_by or '?')}{reason}*<br>{body}"
    return f"{head}: {body}"


def _summary(results, fail_on: str) -> str:
    rows = ["| entry | target | result | errors | warnings |", "|---|---|---|---|---|"]
    for index, result in enumerate(results, 1):
        if isinstance(result, TargetFailure):
            cells = [str(index), code(result.target), "could not run", "", ""]
        else:
            outcome = "**failed**" if fails(result, fail_on) else "ok"
            cells = [str(index), code(result.target), outcome, str(result.count(ERROR)), str(result.count(WARNING))]
        rows.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return "\n".join(rows)
