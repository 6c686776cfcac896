"""A JUnit XML report, the format CI dashboards read (GitLab, Jenkins, GitHub test-report actions).

One <testsuite>, one <testcase> per target. Each error finding is a <failure> (type = the finding
code); warnings and infos go to the testcase's <system-out>, since they do not fail it by default.
A target that could not run is an <error>, as JUnit marks a test that broke rather than failed.
No timings are written, so the same command gives the same bytes.

Any text may reach the file (a layer's exception message can hold a NUL, an escape sequence or
a lone surrogate), and XML 1.0 cannot hold every character, even escaped: those are written as
visible escapes (`\x00`, `\udc80`) so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..report import ERROR, TargetFailure

# Characters XML 1.0 allows (its `Char` production); everything else is replaced.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` with every character XML 1.0 cannot hold written as a Python-style escape."""
    return _NOT_XML.sub(lambda match: match.group().encode("unicode_escape", "backslashreplace").decode("ascii"), text)


def _make_safe(element) -> None:
    for child in element.iter():
        child.text = xml_text(child.text) if child.text else child.text
        child.tail = xml_text(child.tail) if child.tail else child.tail
        for key, value in child.attrib.items():
            child.attrib[key] = xml_text(value)


def _detail(item) -> str:
    where = f" at {item.location}" if item.location else ""
    tensor = f" `{item.tensor}`" if item.tensor else ""
    return f"{item.severity.upper()} {item.code}{tensor}{where}\n{item.message}"


def _testcase(suite, result) -> tuple[int, int]:
    case = ET.SubElement(suite, "testcase", classname="gradcheck", name=result.target)
    if isinstance(result, TargetFailure):
        error = ET.SubElement(case, "error", type="could-not-run", message=result.message)
        error.text = result.message
        return 0, 1
    failures = [f for f in result.findings if f.severity == ERROR]
    for item in failures:
        failure = ET.SubElement(case, "failure", type=item.code, message=item.message)
        failure.text = _detail(item)
    others = [f for f in result.findings if f.severity != ERROR]
    if others:
        ET.SubElement(case, "system-out").text = "\n\n".join(_detail(f) for f in others)
    return (1 if failures else 0), 0


def render(results, **_presentation) -> str:
    suite = ET.Element("testsuite", name="gradcheck")
    failed = errored = 0
    for result in results:
        failure, error = _testcase(suite, result)
        failed += failure
        errored += error
    suite.set("tests", str(len(results)))
    suite.set("failures", str(failed))
    suite.set("errors", str(errored))
    suite.set("skipped", "0")
    _make_safe(suite)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
