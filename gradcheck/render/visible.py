"""Text from the layer made safe to show: every character that could act rather than print is written
as a visible escape.

A target, a tensor name, a message quoting the layer's exception, a suppression's reason: any of them
can hold a control character. Printed raw, an ESC sequence recolours or rewrites a terminal, a CR
cuts a Markdown table row or starts a GitHub workflow command, a NUL or a lone surrogate makes XML
(JUnit, SVG) unparseable, and a bidi override reorders what a reviewer reads. So before any format
but JSON (whose encoder escapes them itself, and whose readers want the exact text) draws a
report, every string that came from the layer passes through `visible`: C0 controls, DEL, C1
controls, lone surrogates, line and paragraph separators and bidi controls become `\\x1b`,
`\\r`, `\\udc80`, `\\u202e`; a newline stays only in messages, which are drawn line by line.
"""

from __future__ import annotations

import dataclasses
import re

from ..report import Report, TargetFailure

_ACTING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ACTING_OR_NEWLINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match) -> str:
    return match.group().encode("unicode_escape", "backslashreplace").decode("ascii")


def visible(text: str, *, multiline: bool = False) -> str:
    """`text` with every acting character escaped; `multiline` keeps newlines and tabs."""
    return (_ACTING if multiline else _ACTING_OR_NEWLINE).sub(_escape, text)


def _line(value):
    return visible(value) if isinstance(value, str) else value


def shown(result):
    """A copy of a Report or TargetFailure whose every string from the layer is `visible`."""
    if isinstance(result, TargetFailure):
        # replace(), not a new TargetFailure: its backend is kept (a verdict counts a run by it).
        return dataclasses.replace(result, target=_line(result.target), message=visible(result.message, multiline=True))
    if not isinstance(result, Report):
        return result
    findings = tuple(
        dataclasses.replace(
            item,
            tensor=_line(item.tensor),
            message=visible(item.message, multiline=True),
            location=_line(item.location),
            cause=_line(item.cause),
            ignore_reason=_line(item.ignore_reason),
            ignored_by=_line(item.ignored_by),
        )
        for item in result.findings
    )
    variables = tuple(
        dataclasses.replace(t, name=_line(t.name), layer=_line(t.layer), created_at=_line(t.created_at))
        for t in result.variables
    )
    inputs = tuple(dataclasses.replace(i, name=_line(i.name)) for i in result.inputs)
    policies = tuple(dataclasses.replace(p, status=_line(p.status)) for p in result.dtype_policies)
    return dataclasses.replace(
        result,
        target=_line(result.target),
        findings=findings,
        variables=variables,
        inputs=inputs,
        dtype_policies=policies,
        reload=_line(result.reload),
    )
