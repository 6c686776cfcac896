"""A JUnit XML report, the format CI dashboards read (GitLab, Jenkins, GitHub test-report actions).

One <testsuite> per target (its name is the target), one <testcase> per finding, so a dashboard
lists each: classname = the target, name = the code and the tensor. A finding that fails the run
under --fail-on is a <failure> (type = the code); one that does not (a warning under the default,
an info) is a passing testcase with the message in <system-out>; an ignored one is <skipped>, with
its reason. A target with no finding is one passing testcase, and a target that could not run one
testcase with an <error>. No timings are written, so the same command gives the same bytes.

Any text may reach the file (a layer's exception message can hold a NUL, an escape sequence or
a lone surrogate), and XML 1.0 cannot hold every character, even escaped: render.visible has
written those as visible escapes, and `xml_text` catches whatever is left, so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..report import ERROR, TargetFailure, failing_findings

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


def _names(findings) -> list[str]:
    """Each finding's testcase name: code and tensor, with the location when two would share a name."""
    names = [f"{f.code} {f.tensor}" if f.tensor else f.code for f in findings]
    return [
        f"{name} ({f.location})" if names.count(name) > 1 and f.location else name for name, f in zip(names, findings)
    ]


def _suite(root, result, fail_on: str) -> None:
    suite = ET.SubElement(root, "testsuite", name=result.target)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if isinstance(result, TargetFailure):
        case = ET.SubElement(suite, "testcase", classname=result.target, name="could not run")
        ET.SubElement(case, "error", type="could-not-run", message=result.message).text = result.message
        counts.update(tests=1, errors=1)
    elif not result.findings:
        ET.SubElement(suite, "testcase", classname=result.target, name="no findings")
        counts["tests"] = 1
    else:
        failing = {id(f) for f in failing_findings(result, fail_on)}
        for item, name in zip(result.findings, _names(result.findings)):
            case = ET.SubElement(suite, "testcase", classname=result.target, name=name)
            counts["tests"] += 1
            if item.ignored:
                reason = item.ignore_reason or "no reason given"
                ET.SubElement(case, "skipped", message=f"ignored by {item.ignored_by}: {reason}").text = _detail(item)
                counts["skipped"] += 1
            elif id(item) in failing:
                ET.SubElement(case, "failure", type=item.code, message=item.message).text = _detail(item)
                counts["failures"] += 1
            else:
                ET.SubElement(case, "system-out").text = _detail(item)
    for key, value in counts.items():
        suite.set(key, str(value))


def render(results, *, fail_on: str = ERROR, **_presentation) -> str:
    root = ET.Element("testsuites", name="gradcheck")
    for result in results:
        _suite(root, result, fail_on)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(suite.get(key, "0")) for suite in root)))
    _make_safe(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
