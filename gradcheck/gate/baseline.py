"""A baseline: the findings a project had when it adopted the gate, so CI fails only on new ones.

`--write-baseline FILE` records each error and warning of the run; `--baseline FILE` marks the
findings it lists as ignored ("in the baseline") and adds a `baseline-fixed` info for each entry no
finding matches any more, so the file can be rewritten without it.

An entry must still match after edits that do not touch the finding, so it holds nothing that moves:
the target, the code, the tensor, the function or class the finding's line is in (found with ast,
"Net.call"), and the finding's message with every file:line and every number taken out (the op and
the words stay; the line, a ratio that moves with the seed, the worst entry's index go). Entries are
matched as a multiset, so reordering targets or findings changes nothing: word for word first, then
a finding left over takes a left-over entry of the same target, code, tensor and scope, so a message
a newer gradcheck words differently keeps its entry. They are written sorted, with no date, so the
same findings give the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from .. import codes
from ..codes import CODES, ERROR, GATE_CODES, WARNING
from ..errors import GradcheckError
from ..report import Finding, Report, finding, sort_findings
from .sources import scope_of

FORMAT = 1
_KEY = "gradcheck_baseline"
_LOCATION = re.compile(r"(?:[A-Za-z]:)?[^\s`'\"(),;]*\.pyw?:\d+")
# A number standing alone (not the 32 of int32 or float32): a ratio, an error, an index, a step.
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w])")
ABOUT = (
    "Findings accepted when this project adopted gradcheck. `gradcheck --baseline FILE` fails only on "
    "findings not listed here and says which entries are fixed; `gradcheck --write-baseline FILE` rewrites it. "
    "An entry names no line, so it survives edits elsewhere in the file."
)


@dataclass(frozen=True, order=True)
class Entry:
    target: str
    code: str
    tensor: Optional[str]
    scope: Optional[str]  # "Net.call": the function or class the finding's line is in
    message: str  # the message without locations and numbers

    def describe(self) -> str:
        tensor = f" `{self.tensor}`" if self.tensor else ""
        scope = f" in {self.scope}" if self.scope else ""
        return f"{self.code}{tensor}{scope}"

    def sort_key(self) -> tuple:
        return (self.target, self.code, self.tensor or "", self.scope or "", self.message)


def stable_message(message: str) -> str:
    """`message` without what moves: locations (file:line) and numbers."""
    return " ".join(_NUMBER.sub("#", _LOCATION.sub("<location>", message)).split())


def entry_of(target: str, item: Finding) -> Entry:
    return Entry(target, item.code, item.tensor, scope_of(item.location), stable_message(item.message))


def recordable(item: Finding) -> bool:
    """Errors and warnings of the layer that nothing else ignored (infos never fail a run)."""
    return item.severity in (ERROR, WARNING) and item.code not in GATE_CODES and not item.ignored


def entries_of(results: Sequence) -> list[Entry]:
    return sorted(
        (entry_of(r.target, f) for r in results if isinstance(r, Report) for f in r.findings if recordable(f)),
        key=Entry.sort_key,
    )


def read_baseline(path: str) -> list[Entry]:
    """The entries of the baseline at `path`.

    Raises:
        GradcheckError: the file is missing, unreadable, not JSON, or not a gradcheck baseline.
    """
    try:
        with open(path, encoding="utf-8") as stream:
            document = json.load(stream)
    except FileNotFoundError:
        raise GradcheckError(
            f"--baseline {path}: there is no such file. Record today's findings first with "
            f"gradcheck --write-baseline {path}, commit it, then use --baseline {path} in CI."
        ) from None
    except IsADirectoryError:
        raise GradcheckError(f"--baseline {path} is a folder. Give the baseline's file.") from None
    except OSError as error:
        raise GradcheckError(f"--baseline {path} cannot be read ({error.strerror}). Check its permissions.") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise GradcheckError(
            f"--baseline {path} is not JSON ({error}). Write a baseline with gradcheck --write-baseline {path}."
        ) from None
    return _entries(document, path)


def _entries(document, path: str) -> list[Entry]:
    def bad(why: str) -> GradcheckError:
        return GradcheckError(
            f"--baseline {path} is not a gradcheck baseline ({why}). Write one with gradcheck --write-baseline FILE."
        )

    if not isinstance(document, dict) or _KEY not in document:
        raise bad(f'no "{_KEY}" key')
    if document[_KEY] != FORMAT:
        raise bad(f"format {document[_KEY]!r}; this gradcheck reads format {FORMAT}")
    items = document.get("findings")
    if not isinstance(items, list):
        raise bad('"findings" is not a list')
    entries = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise bad(f"finding {number} is not an object")
        values: dict[str, Optional[str]] = {}
        for name in ("target", "code", "tensor", "scope", "message"):
            value = item.get(name)
            if not (isinstance(value, str) or (value is None and name in ("tensor", "scope"))):
                raise bad(f"finding {number} has no string {name!r}")
            values[name] = value
        if values["code"] not in CODES:
            raise bad(f"finding {number} has the unknown code {values['code']!r}")
        target, code, message = (str(values[name]) for name in ("target", "code", "message"))
        entries.append(Entry(target, code, values["tensor"], values["scope"], message))
    return entries


def baseline_text(entries: Sequence[Entry]) -> str:
    """The baseline file's text: sorted entries, no date, so the same findings give the same bytes."""
    document = {
        _KEY: FORMAT,
        "about": ABOUT,
        "findings": [dataclasses.asdict(e) for e in sorted(entries, key=Entry.sort_key)],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def merged(old: Sequence[Entry], results: Sequence) -> list[Entry]:
    """The entries to write: this run's, and the old entries of targets it did not check (or that
    could not run), so checking one target does not drop every other target's entries."""
    checked = {r.target for r in results if isinstance(r, Report)}
    return sorted([*entries_of(results), *(e for e in old if e.target not in checked)], key=Entry.sort_key)


def apply_baseline(results: Sequence, entries: Sequence[Entry], path: str) -> list:
    """Mark the findings `entries` list as ignored, and add a `baseline-fixed` info per entry of a
    checked target that no finding matches any more."""
    left = Counter(entries)
    # Two passes: first the entries that match word for word, then, for findings still unmatched, an
    # entry with the same target, code, tensor and scope whose message differs. A newer gradcheck
    # that rewords a message must not turn a whole baseline into new findings; the message only
    # decides between entries that agree on everything else.
    pending = [
        (index, position, entry_of(result.target, item))
        for index, result in enumerate(results)
        if isinstance(result, Report)
        for position, item in enumerate(result.findings)
        if recordable(item)
    ]
    matched: set[tuple[int, int]] = set()
    for exact in (True, False):
        for index, position, entry in pending:
            if (index, position) in matched:
                continue
            chosen = entry if exact else _same_place(left, entry)
            if chosen is None or left[chosen] <= 0:
                continue
            left[chosen] -= 1
            matched.add((index, position))
    left = +left
    marked = []
    for index, result in enumerate(results):
        if not isinstance(result, Report):
            marked.append(result)
            continue
        findings = tuple(
            dataclasses.replace(
                item, ignored=True, ignore_reason="recorded in the baseline", ignored_by=f"baseline {path}"
            )
            if (index, position) in matched
            else item
            for position, item in enumerate(result.findings)
        )
        marked.append(dataclasses.replace(result, findings=findings))
    checked = {r.target: index for index, r in reversed(list(enumerate(marked))) if isinstance(r, Report)}
    fixed: dict[int, list[Finding]] = {}
    for entry in sorted(left.elements(), key=Entry.sort_key):
        if entry.target in checked:
            fixed.setdefault(checked[entry.target], []).append(_fixed(entry, path))
    for index, found in fixed.items():
        report = marked[index]
        marked[index] = dataclasses.replace(report, findings=sort_findings([*report.findings, *found]))
    return marked


def _same_place(left: Counter, entry: Entry) -> Optional[Entry]:
    """The first entry (in sorted order) still left with `entry`'s target, code, tensor and scope."""
    place = (entry.target, entry.code, entry.tensor, entry.scope)
    candidates = [e for e, count in left.items() if count > 0 and (e.target, e.code, e.tensor, e.scope) == place]
    return min(candidates, key=Entry.sort_key) if candidates else None


def _fixed(entry: Entry, path: str) -> Finding:
    return finding(
        codes.BASELINE_FIXED,
        entry.tensor,
        f"The baseline {path} lists {entry.describe()}, and this run no longer finds it: it was fixed (or its "
        f"function was renamed). Run gradcheck --write-baseline {path} to drop the entry, so the finding cannot "
        "come back unnoticed.",
        None,
    )
