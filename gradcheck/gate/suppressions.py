"""Suppressions: a finding someone decided to accept, with the reason written beside the decision.

Three ways to write one, all matched here after the check, in the supervisor:
- an inline comment, `# gradcheck: ignore[none-gradient, input-gradient-none] frozen stem`, on the
  line a finding points at or on the line that created its tensor (`TensorInfo.created_at`), or
  anywhere on the same statement when it spans several lines (where a formatter puts it);
- `ignore = ["none-gradient:target_kernel", ...]` in a pyproject.toml target entry;
- `--ignore CODE[:TENSOR]` on the command line (every target), or check(ignore=...).

A matched finding stays in the report, marked `ignored` with its reason and where it was ignored;
the verdict rule (report.fails) leaves it out. A suppression that matches nothing is a warning of
its own (`unused-ignore`), as ruff's unused `noqa` and mypy's `warn_unused_ignores` are, so stale
ones do not pile up; so is a comment without codes or with a code gradcheck does not have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Optional

from .. import codes
from ..codes import CODES, GATE_CODES
from ..options.ignores import IgnoreRule, known_codes
from ..report import Finding, Report, TargetFailure, finding, sort_findings
from .sources import Comment, comments_in, file_key, split_location

Result = Report | TargetFailure


def apply_suppressions(
    results: Sequence[Result], rules: Sequence[Iterable[IgnoreRule]], files: Sequence[Iterable[str]]
) -> list[Result]:
    """`results` with every suppressed finding marked ignored, and the gate's own warnings added.

    Args:
        results: a Report or TargetFailure per target, in the run's order.
        rules: per result, the rules of its Options (its pyproject entry's and --ignore's).
        files: per result, the files whose `# gradcheck: ignore` comments apply: the target's own
            file and every file its findings name (files_named). The comments of all of them apply
            to every target's findings; each comment's warnings go to the first target that scanned
            its file (none when only targets that could not run did: nothing can be judged there).
    """
    owners: dict[str, int] = {}  # file key -> the first result that scanned it
    comments: dict[tuple[str, int], list[Comment]] = {}
    unjudged: set[str] = set()  # files of a target that could not run: its findings are unknown
    for index, paths in enumerate(files):
        for path in paths:
            key = file_key(path)
            if isinstance(results[index], TargetFailure):
                unjudged.add(key)
            if key in owners:
                continue
            owners[key] = index
            for comment in comments_in(path):
                for line in comment.covers:
                    comments.setdefault((key, line), []).append(comment)
    used: set[tuple] = set()
    marked = [
        _marked(result, tuple(rule_list), comments, used, index) if isinstance(result, Report) else result
        for index, (result, rule_list) in enumerate(zip(results, rules))
    ]
    extra: dict[int, list[Finding]] = {}
    judged = set()
    for (key, _), found in comments.items():
        owner = owners[key]
        if key in unjudged or not isinstance(marked[owner], Report):
            continue
        for comment in found:
            if comment not in judged:  # listed once per line it covers, judged once
                judged.add(comment)
                extra.setdefault(owner, []).extend(_comment_warnings(comment, used))
    for index, rule_list in enumerate(rules):
        for rule in rule_list:
            if rule.code in GATE_CODES or not isinstance(marked[index], Report):
                continue
            if rule.source == "--ignore":  # given once for the whole run: unused when no target used it
                first = next(i for i, r in enumerate(marked) if isinstance(r, Report))
                if index == first and not any(("rule", i, rule) in used for i in range(len(marked))):
                    extra.setdefault(index, []).append(_unused_rule(rule, None))
            else:
                # One entry checked on several backends shares its rules (one tuple): a rule is used
                # when any of its backends used it, and said unused once, on the first.
                entry = [i for i, other in enumerate(rules) if other is rule_list and isinstance(marked[i], Report)]
                if index == entry[0] and not any(("rule", i, rule) in used for i in entry):
                    extra.setdefault(index, []).append(_unused_rule(rule, marked[index].target))
    for index, warnings in extra.items():
        report = marked[index]
        assert isinstance(report, Report)
        gate = [_by_rules(item, tuple(rules[index]), used, index) for item in warnings]
        marked[index] = dataclasses.replace(report, findings=sort_findings([*report.findings, *gate]))
    return marked


def _marked(report: Report, rules: tuple[IgnoreRule, ...], comments, used: set, index: int) -> Report:
    created: dict[str, list[tuple[str, int]]] = {}
    for tensor in report.variables:
        place = split_location(tensor.created_at)
        if place is not None:
            created.setdefault(tensor.name, []).append(place)
    findings = []
    for item in report.findings:
        places = [split_location(item.location), *created.get(item.tensor or "", [])]
        for place in dict.fromkeys(p for p in places if p is not None):
            for comment in comments.get(place, []):
                if item.code in comment.codes and item.code not in GATE_CODES:
                    used.add(("comment", comment, item.code))
                    if not item.ignored:
                        item = dataclasses.replace(
                            item,
                            ignored=True,
                            ignore_reason=comment.reason,
                            ignored_by=f"comment at {comment.location}",
                        )
        findings.append(_by_rules(item, rules, used, index))
    return dataclasses.replace(report, findings=tuple(findings))


def _by_rules(item: Finding, rules: tuple[IgnoreRule, ...], used: set, index: int) -> Finding:
    for rule in rules:
        if rule.code == item.code and (rule.tensor is None or rule.tensor == item.tensor):
            used.add(("rule", index, rule))
            if not item.ignored:
                where = f"{rule.source} {rule}" if rule.source == "--ignore" else f"{rule.source} ignore {rule}"
                item = dataclasses.replace(item, ignored=True, ignore_reason=rule.reason, ignored_by=where)
    return item


def _comment_warnings(comment: Comment, used: set) -> list[Finding]:
    where = comment.location
    if not comment.codes:
        problem = "has `[` without a closing `]`" if not comment.closed else "names no code"
        return [
            finding(
                codes.IGNORE_WITHOUT_CODE,
                None,
                f"The `# gradcheck: ignore` comment at {where} {problem}, so it ignores nothing. Name the codes "
                "it is for and why, e.g. `# gradcheck: ignore[none-gradient] frozen target branch`: a comment "
                "that ignored every finding on its line would also hide the next, unrelated one.",
                where,
            )
        ]
    warnings = []
    unknown = [code for code in comment.codes if code not in CODES or code in GATE_CODES]
    if unknown:
        gate = [code for code in unknown if code in GATE_CODES]
        note = (
            f" {', '.join(f'`{c}`' for c in gate)} is about the gate itself and cannot be ignored by a comment "
            f"(use --ignore {gate[0]})."
            if gate
            else ""
        )
        warnings.append(
            finding(
                codes.UNKNOWN_IGNORE_CODE,
                None,
                f"The `# gradcheck: ignore` comment at {where} names {_listed(unknown)}, which "
                f"{'is not a code' if len(unknown) == 1 else 'are not codes'} it can ignore.{note} The codes are: "
                f"{known_codes()}.",
                where,
            )
        )
    for code in comment.codes:
        if code in CODES and code not in GATE_CODES and ("comment", comment, code) not in used:
            warnings.append(
                finding(
                    codes.UNUSED_IGNORE,
                    None,
                    f"`# gradcheck: ignore[{code}]` at {where} matched no finding: no `{code}` finding of this run "
                    "points at this line or at the line that made its tensor. Remove the code from the comment (or "
                    "the comment) if the finding is gone; if it moved, put the comment on the line the report names.",
                    where,
                )
            )
    return warnings


def _unused_rule(rule: IgnoreRule, target: Optional[str]) -> Finding:
    if target is None:
        text = f"--ignore {rule} matched no finding of any target of this run. Drop it from the command line."
    else:
        text = (
            f'The {rule.source} ignore rule "{rule}" matched no finding of {target}. Remove it from the entry '
            "if the finding is gone (or check the code and the tensor's name against the report)."
        )
    return finding(codes.UNUSED_IGNORE, None, text, None)


def _listed(names: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)
