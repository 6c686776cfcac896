"""The terminal report: a table of tensors, then the findings, then a one-line verdict.

rich decides colour: none when stdout is not a terminal; NO_COLOR turns off every style.
"""

from __future__ import annotations

import math
import os

from .report import ERROR, INFO, WARNING, Report, TargetFailure

_STYLE = {ERROR: "bold red", WARNING: "yellow", INFO: "cyan"}
_STATUS_STYLE = {"ok": "green", "none": "bold red", "nonfinite": "bold red", "zero": "yellow",
                 "vanishing": "yellow", "exploding": "yellow", "mismatch": "bold red"}
_BAR_WIDTH = 8
_BAR_LOW, _BAR_HIGH = -8.0, 4.0  # log10 of the gradient norms the bar spans


def console(stream):
    from rich.console import Console

    # Off a terminal (CI logs, pipes, files) nobody can widen the window, and rich would cut long
    # tensor names to fit 80 columns: lines are as long as their content (tables are not expanded).
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", 0)) or 10_000
    # rich's own NO_COLOR handling drops colours but keeps bold and dim; no-color.org asks for
    # plain text, and a log scraper wants no escape codes at all.
    plain = bool(os.environ.get("NO_COLOR"))
    return Console(file=stream, width=width, highlight=False, soft_wrap=False,
                   color_system=None if plain else "auto")


def gradient_bar(norm) -> str:
    """A log-scale bar of a gradient norm, so a glance down the table shows where flow dies."""
    if norm is None:
        return ""
    if not math.isfinite(norm):
        return "!" * _BAR_WIDTH
    if norm == 0:
        return "·"
    position = (math.log10(norm) - _BAR_LOW) / (_BAR_HIGH - _BAR_LOW)
    filled = max(1, min(_BAR_WIDTH, round(position * _BAR_WIDTH)))
    return "█" * filled


def _number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.2e}"


def _fit(value) -> str:
    return {True: "yes", False: "no", None: ""}[value]


def render(results, stream, quiet: bool = False) -> None:
    from rich.markup import escape

    out = console(stream)
    for result in results:
        if isinstance(result, TargetFailure):
            continue  # its message went to stderr when it failed; the summary lists it
        if not quiet:
            _header(out, result)
            _table(out, result)
        elif len(results) > 1 and result.findings:
            out.print(f"[bold]{escape(result.target)}[/]")  # whose findings follow, when there are several
        _findings(out, result, quiet)
        if not quiet:
            _verdict(out, result)
    if len(results) > 1 and not quiet:
        _summary(out, results)


def _header(out, report: Report) -> None:
    from rich.text import Text

    versions = report.versions
    modes = ", ".join(report.training_modes)
    line = Text()
    line.append("gradcheck ", style="bold")
    line.append(report.target)
    line.append(
        f"   TensorFlow {versions.get('tensorflow', '?')} · Keras {versions.get('keras', '?')}"
        f" · seed {report.seed} · training={modes}" + (" · stochastic" if report.stochastic else ""),
        style="dim",
    )
    out.print(line)


def _table(out, report: Report) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("tensor", "kind", "shape", "gradient norm", "", "status", "trains under fit()", "finite diff."):
        table.add_column(column, no_wrap=True)
    second = any(row.second_order_verdict for row in (*report.variables, *report.inputs))  # --order 2 ran
    if second:
        table.add_column("2nd order", no_wrap=True)
    for tensor in report.variables:
        name = tensor.name + (f" ({tensor.layer})" if tensor.layer else "")
        status = tensor.gradient_status or ("not read" if not tensor.read_by_call else "")
        table.add_row(
            name,
            tensor.kind,
            "x".join(map(str, tensor.shape)) or "scalar",
            _number(tensor.gradient_norm),
            gradient_bar(tensor.gradient_norm),
            f"[{_STATUS_STYLE.get(status, '')}]{status}[/]" if status in _STATUS_STYLE else status,
            _fit(tensor.trains_under_fit),
            _numeric(tensor.numeric_verdict, tensor.numeric_error),
            *([_numeric(tensor.second_order_verdict, tensor.second_order_error)] if second else []),
        )
    for item in report.inputs:
        status = item.gradient_status or ("not differentiable" if not item.differentiable else "")
        table.add_row(
            item.name,
            f"input {item.dtype}",
            "x".join(map(str, item.shape)),
            _number(item.gradient_norm),
            gradient_bar(item.gradient_norm),
            f"[{_STATUS_STYLE.get(status, '')}]{status}[/]" if status in _STATUS_STYLE else status,
            "",
            _numeric(item.numeric_verdict, item.numeric_error),
            *([_numeric(item.second_order_verdict, item.second_order_error)] if second else []),
        )
    out.print(table)


def _numeric(verdict, error) -> str:
    if verdict is None:
        return ""
    return f"{verdict} {_number(error)}".strip() if error is not None else verdict


def _findings(out, report: Report, quiet: bool) -> None:
    from rich.text import Text

    if not report.findings:
        return
    if not quiet:
        out.print()
    for item in report.findings:
        line = Text()
        line.append(f"{item.severity.upper():7} ", style=_STYLE[item.severity])
        line.append(item.code, style="bold")
        if item.tensor:
            line.append(f"  {item.tensor}")
        if item.location:
            line.append(f"  {item.location}", style="dim")
        out.print(line)
        out.print(Text("        " + item.message), soft_wrap=True)


def _verdict(out, report: Report) -> None:
    errors, warnings = report.count(ERROR), report.count(WARNING)
    counted = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    out.print()
    if report.ok:
        out.print(f"[bold green]OK[/] {report.target}: {counted}; every weight call() uses is tracked and trainable.")
    else:
        out.print(f"[bold red]FAILED[/] {report.target}: {counted}.")


def _summary(out, results) -> None:
    from rich.table import Table

    table = Table(title="summary", box=None, pad_edge=False, header_style="bold", title_justify="left")
    for column in ("target", "result", "errors", "warnings"):
        table.add_column(column, no_wrap=True)
    for result in results:
        if isinstance(result, TargetFailure):
            table.add_row(result.target, "[bold red]could not run[/]", "", "")
        else:
            verdict = "[green]ok[/]" if result.ok else "[bold red]failed[/]"
            table.add_row(result.target, verdict, str(result.count(ERROR)), str(result.count(WARNING)))
    out.print()
    out.print(table)
