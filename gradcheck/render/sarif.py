"""SARIF 2.1.0, the format GitHub code scanning (and other static-analysis dashboards) upload.

Workflow annotations (`--format github`) stop at 10 errors per step; code scanning takes every
result. One run: the tool's rules are the finding codes the report uses, each with its summary and
its whole page (`gradcheck --explain CODE`) as `help`, which code scanning shows beside an alert;
the project has no web address to link to, so the help is embedded rather than pointed at. Each
finding is a result with its level (error, warning, note for info), the message prefixed with its
target, and a physical location: the file relative to the folder gradcheck ran in (uriBaseId
SRCROOT), with its line. A finding with no line points at its target's file. An ignored finding
carries a suppression (inSource for a `# gradcheck: ignore` comment, external for --ignore,
pyproject.toml and the baseline) with its reason, so code scanning closes it rather than alerting.
A target that could not run is a tool execution notification, and the run is then unsuccessful.
"""

from __future__ import annotations

import json
import os
from typing import Optional
from urllib.parse import quote

from ..codes import CODES, ERROR, INFO, WARNING
from ..report import Report, TargetFailure

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {ERROR: "error", WARNING: "warning", INFO: "note"}


def render(results, **_presentation) -> str:
    from .. import __version__

    used = sorted({f.code for r in results if isinstance(r, Report) for f in r.findings})
    index = {code: number for number, code in enumerate(used)}
    failures = [r for r in results if isinstance(r, TargetFailure)]
    run = {
        "tool": {
            "driver": {
                "name": "gradcheck",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [_rule(code) for code in used],
            }
        },
        "originalUriBaseIds": {"SRCROOT": {"description": {"text": "The folder gradcheck ran in."}}},
        "invocations": [
            {
                "executionSuccessful": not failures,
                "toolExecutionNotifications": [
                    {"level": "error", "message": {"text": f"{r.target}: could not run. {r.message}"}} for r in failures
                ],
            }
        ],
        "results": [
            _result(report, item, index) for report in results if isinstance(report, Report) for item in report.findings
        ],
    }
    document = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _rule(code: str) -> dict:
    from ..explain import help_command, page

    text = page(code)
    return {
        "id": code,
        "name": "".join(word.capitalize() for word in code.split("-")),
        "shortDescription": {"text": CODES[code].summary},
        "fullDescription": {"text": f"{CODES[code].summary}. {help_command(code)} prints the whole page."},
        "help": {"text": text, "markdown": text},
        "defaultConfiguration": {"level": _LEVEL[CODES[code].severity]},
        "properties": {"tags": ["gradcheck", CODES[code].severity]},
    }


def _result(report: Report, item, index: dict) -> dict:
    result: dict = {
        "ruleId": item.code,
        "ruleIndex": index[item.code],
        "level": _LEVEL[item.severity],
        "message": {"text": f"{report.target}: {item.message}"},
        "locations": _locations(item.location, report.target),
        "properties": {"target": report.target, "tensor": item.tensor},
    }
    if item.ignored:
        kind = "inSource" if (item.ignored_by or "").startswith("comment at") else "external"
        reason = item.ignore_reason or "no reason given"
        result["suppressions"] = [{"kind": kind, "status": "accepted", "justification": f"{item.ignored_by}: {reason}"}]
    return result


def _locations(location: Optional[str], target: str) -> list:
    path, line = _split(location)
    if path is None:
        from ..gate.sources import target_file

        path, line = target_file(target), 1
    if path is None:
        return []
    physical: dict = {"artifactLocation": _artifact(path)}
    if line is not None:
        physical["region"] = {"startLine": line}
    return [{"physicalLocation": physical}]


def _split(location: Optional[str]) -> tuple[Optional[str], Optional[int]]:
    if not location:
        return None, None
    path, _, line = location.rpartition(":")
    if not path or not line.isdigit() or int(line) < 1:
        return None, None
    return path, int(line)


def _artifact(path: str) -> dict:
    """A relative path under SRCROOT (what code scanning maps to the repository), or a file: URI."""
    if os.path.isabs(path):
        posix = path.replace(os.sep, "/")
        return {"uri": "file://" + ("" if posix.startswith("/") else "/") + quote(posix, safe="/:")}
    return {"uri": quote(path.replace(os.sep, "/")), "uriBaseId": "SRCROOT"}
