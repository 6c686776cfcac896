"""Findings that share a cause, drawn as one: the tensors one op cuts, kills, saturates or turns NaN.

The Report keeps one finding per tensor: JSON, SARIF and JUnit list them so, and the gate
suppresses or baselines each on its own. A reader wants one paragraph per op at fault, not one per
tensor it starves (a dead ReLU repeats the same text for the kernel, the bias and the input). So
the formats written for people (text, Markdown, GitHub annotations) draw the findings of one code
and one `cause` (report.Finding.cause), ignored alike, as one finding: every tensor named, the
first one's message, and a sentence naming the others and the cause.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ..report import Finding


def one_per_cause(findings: Iterable[Finding]) -> list[Finding]:
    """`findings` in their order, those of one code and one cause merged into the first of them."""
    groups: dict[tuple, list[Finding]] = {}
    order: list = []
    for item in findings:
        if item.cause is None:
            order.append([item])
            continue
        key = (item.code, item.cause, item.ignored, item.ignored_by, item.ignore_reason)
        if key not in groups:
            groups[key] = []
            order.append(groups[key])
        groups[key].append(item)
    return [_merged(group) for group in order]


def _merged(group: list[Finding]) -> Finding:
    first = group[0]
    if len(group) == 1:
        return first
    tensors = []
    for item in group:
        if item.tensor and item.tensor not in tensors:
            tensors.append(item.tensor)
    others = [f"`{name}`" for name in tensors if name != first.tensor]
    listed = others[0] if len(others) == 1 else ", ".join(others[:-1]) + f" and {others[-1]}"
    return dataclasses.replace(
        first,
        tensor=", ".join(tensors) or None,
        message=f"{first.message}\nThe same for {listed}: one cause, {first.cause}." if others else first.message,
    )
