"""The table of tensors in the text report, laid out for the width it gets.

A table that does not fit is never cut: the layouts below are tried from the richest to the
leanest and the first that fits is used. Low-value columns go first (the raw gradient norm, the
finite-difference error figure, the ratio's digits, the shape), then the tensor names move to a
line of their own above their row, and last each tensor becomes a small block. Names, kinds and
statuses are therefore always whole, with no ellipsis.

The gradient column places RMS(gradient) / max(RMS(tensor), 1) — the measure the vanishing and
exploding thresholds compare — on a log scale whose left edge is the vanishing threshold and right
edge the exploding threshold, so a glance down the column shows how close each tensor is to either.
"""

from __future__ import annotations

import math
from typing import Optional

from ..report import Report

BAR_WIDTH = 12
_GAP = "  "
_STATUS_STYLE = {
    "ok": "green",
    "none": "bold red",
    "nonfinite": "bold red",
    "zero": "yellow",
    "vanishing": "yellow",
    "exploding": "yellow",
    "mismatch": "bold red",
}
_HEADERS = {
    "tensor": "tensor",
    "kind": "kind",
    "shape": "shape",
    "norm": "gradient norm",
    "gradient": "gradient",
    "bar": "gradient",
    "status": "status",
    "fit": "trains under fit()",
    "fit_short": "trains",
    "numeric": "finite diff.",
    "verdict": "finite diff.",
    "second": "2nd order",
    "second_verdict": "2nd order",
}
# (columns, names on their own line); the first that fits the width is used.
_LAYOUTS = (
    (("tensor", "kind", "shape", "norm", "gradient", "status", "fit", "numeric", "second"), False),
    (("tensor", "kind", "shape", "gradient", "status", "fit", "numeric", "second"), False),
    (("tensor", "kind", "shape", "gradient", "status", "fit", "verdict", "second_verdict"), False),
    (("tensor", "kind", "shape", "bar", "status", "fit_short", "verdict", "second_verdict"), False),
    (("tensor", "kind", "bar", "status", "fit_short", "verdict", "second_verdict"), False),
    (("kind", "shape", "bar", "status", "fit_short", "verdict", "second_verdict"), True),
    (("kind", "bar", "status", "fit_short", "verdict", "second_verdict"), True),
)


def gradient_bar(ratio: Optional[float], status: Optional[str], low: float, high: float):
    """The ratio's place between the thresholds: `●` inside, `◀` below vanishing, `▶` above exploding."""
    from rich.text import Text

    style = _STATUS_STYLE.get(status or "", "")
    if status == "nonfinite":
        return Text("NaN/Inf", style=style)
    if ratio is None or not math.isfinite(ratio):
        return Text("")
    track = ["·"] * BAR_WIDTH
    if ratio < low:  # zero included
        track[0] = "◀"
        at = 0
    elif ratio > high:
        track[-1] = "▶"
        at = BAR_WIDTH - 1
    else:
        span = math.log10(high) - math.log10(low)
        at = round((math.log10(ratio) - math.log10(low)) / span * (BAR_WIDTH - 1)) if span > 0 else 0
        track[at] = "●"
    bar = Text("".join(track), style="dim")
    bar.stylize(style or "bold", at, at + 1)
    return bar


def legend(report: Report, width: Optional[int]):
    """One line under the table: what the gradient column measures and where its edges are."""
    from rich.text import Text

    edges = f"◀ {report.vanishing_threshold:.0e} vanishing to exploding {report.exploding_threshold:.0e} ▶"
    for words in ("RMS(gradient) / max(RMS(tensor), 1) on a log scale,", "RMS(grad)/max(RMS(tensor),1);"):
        line = f"gradient: {words} {edges}"
        if width is None or len(line) <= width:
            break
    return Text(line, style="dim")


def table_lines(report: Report, width: Optional[int]) -> list:
    """[(Text, hanging indent of its continuation lines)]: the table, and the legend when a gradient is shown; [] without tensors."""
    from rich.text import Text

    rows = _rows(report)
    if not rows:
        return []
    lines = None
    for columns, stacked in _LAYOUTS if width is not None else _LAYOUTS[:1]:
        lines = _laid_out(rows, columns, stacked, width)
        if lines is not None:
            break
    if lines is None:
        lines = _blocks(rows)
    if any(row["bar"].plain for row in rows):
        lines.append((legend(report, width), 2))
    return [(Text(text) if isinstance(text, str) else text, indent) for text, indent in lines]


def grid(headers: list[str], rows: list[list], width: Optional[int], indent: int = 0) -> Optional[list]:
    """Rows of Text cells in aligned columns (two spaces apart, no trailing spaces), or None if wider than `width`."""
    from rich.text import Text

    widths = [max([len(h)] + [row[i].cell_len for row in rows]) for i, h in enumerate(headers)]
    if width is not None and indent + sum(widths) + len(_GAP) * (len(widths) - 1) > width:
        return None

    def line(cells):
        text = Text(" " * indent)
        for i, cell in enumerate(cells):
            text.append_text(cell)
            if i < len(cells) - 1:
                text.append(" " * (widths[i] - cell.cell_len) + _GAP)
        return text

    return [line([Text(h, style="bold") for h in headers])] + [line(row) for row in rows]


def _laid_out(rows, columns, stacked: bool, width: Optional[int]):
    from rich.text import Text

    columns = [c for c in columns if any(row[c].plain for row in rows)]  # an empty column says nothing

    body = grid(
        [_HEADERS[c] for c in columns], [[row[c] for c in columns] for row in rows], width, indent=2 if stacked else 0
    )
    if body is None:
        return None
    if not stacked:
        return [(text, 0) for text in body]
    lines = [(Text("tensor", style="bold"), 0), (body[0], 2)]
    for row, text in zip(rows, body[1:]):
        lines += [(row["tensor"], 2), (text, 2)]
    return lines


def _blocks(rows):
    """The leanest layout: a name line, then its facts wrapped under it."""
    from rich.text import Text

    lines = []
    for row in rows:
        facts = Text(" · ").join(
            [row["kind"], row["shape"], row["status"]]
            + [Text.assemble("trains: ", row["fit_short"])] * bool(row["fit_short"].plain)
            + [Text.assemble("finite diff.: ", row["verdict"])] * bool(row["verdict"].plain)
            + [Text.assemble("2nd order: ", row["second_verdict"])] * bool(row["second_verdict"].plain)
        )
        lines += [(row["tensor"], 2), (Text.assemble("  ", facts), 4)]
        if row["bar"].plain:
            lines.append((Text.assemble("  ", row["bar"]), 4))
    return lines


def _rows(report: Report) -> list[dict]:
    """One dict of cells per tensor and input, every variant a layout may pick."""
    rows = []
    for tensor in report.variables:
        status: str = tensor.gradient_status or ("not read" if not tensor.read_by_call else "")
        name = tensor.name + (f" ({tensor.layer})" if tensor.layer else "")
        rows.append(
            _row(
                report,
                name,
                tensor.kind,
                tensor.shape,
                tensor.gradient_norm,
                tensor.gradient_ratio,
                status,
                "written" if tensor.kind == "overwritten" else _yes_no(tensor.trains_under_fit),
                tensor.numeric_verdict,
                tensor.numeric_error,
                tensor.second_order_verdict,
                tensor.second_order_error,
            )
        )
    for item in report.inputs:
        status = item.gradient_status or ("not differentiable" if not item.differentiable else "")
        rows.append(
            _row(
                report,
                item.name,
                f"input {item.dtype}",
                item.shape,
                item.gradient_norm,
                item.gradient_ratio,
                status,
                "",
                item.numeric_verdict,
                item.numeric_error,
                item.second_order_verdict,
                item.second_order_error,
            )
        )
    return rows


def _row(report, name, kind, shape, norm, ratio, status, fit, verdict, error, second=None, second_error=None) -> dict:
    from rich.text import Text

    bar = gradient_bar(ratio, status, report.vanishing_threshold, report.exploding_threshold)
    digits = f"{ratio:.1e}" if ratio is not None and math.isfinite(ratio) and status != "nonfinite" else ""
    gradient = Text.assemble(bar, " " if bar.plain and digits else "", digits)
    verdict_style = _STATUS_STYLE.get(verdict or "", "")
    return {
        "tensor": Text(name),
        "kind": Text(kind),
        "shape": Text("x".join(map(str, shape)) or "scalar"),
        "norm": Text(_number(norm)),
        "gradient": gradient,
        "bar": bar,
        "status": Text(status, style=_STATUS_STYLE.get(status, "")),
        "fit": Text(fit),
        "fit_short": Text(fit),
        "numeric": Text.assemble(
            (verdict or "", verdict_style), f" {_number(error)}" if verdict and error is not None else ""
        ),
        "verdict": Text(verdict or "", style=verdict_style),
        # the second-order verdict (--order 2); an empty column is dropped, so order 1 shows none
        "second": Text.assemble(
            (second or "", _STATUS_STYLE.get(second or "", "")),
            f" {_number(second_error)}" if second and second_error is not None else "",
        ),
        "second_verdict": Text(second or "", style=_STATUS_STYLE.get(second or "", "")),
    }


def _number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.2e}"


def _yes_no(value) -> str:
    return {True: "yes", False: "no", None: ""}[value]
