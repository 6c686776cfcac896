"""Which findings to ignore: `--ignore CODE[:TENSOR]`, pyproject's `ignore = [...]`, check(ignore=...).

Every source ends in `parse_ignores`, so a rule is accepted or refused the same way wherever it is
written: the code must be one gradcheck has (a misspelt code would silently ignore nothing), and a
tensor, when given, must be a non-empty name. The command line's form has no room for a reason; a
pyproject entry or check() can give one with a table (`{code = "...", tensor = "...", reason =
"..."}`). Nothing here imports TensorFlow: a bad rule is refused before any check starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..codes import CODES
from ..errors import GradcheckError
from .values import quote

IGNORE_KEYS = ("code", "tensor", "reason")


@dataclass(frozen=True)
class IgnoreRule:
    """Ignore the findings of `code` (on `tensor` only, when given), for `reason`."""

    code: str
    tensor: Optional[str] = None
    reason: Optional[str] = None
    source: str = "--ignore"  # where the rule was written: "--ignore", "pyproject.toml", "check(ignore=...)"

    def __str__(self) -> str:
        return self.code + (f":{self.tensor}" if self.tensor is not None else "")


def known_codes() -> str:
    return ", ".join(sorted(CODES))


def parse_ignore(value, source: str = "--ignore") -> IgnoreRule:
    """One rule: "CODE", "CODE:TENSOR", or a {code, tensor, reason} table (pyproject.toml, check())."""
    if isinstance(value, IgnoreRule):
        return value
    if isinstance(value, dict):
        return _from_table(value, source)
    if not isinstance(value, str):
        raise GradcheckError(
            f"{_option(source)} {quote(value)} is not a rule: give CODE or CODE:TENSOR as a string "
            '(e.g. "none-gradient:target_kernel"), or a table {code = "...", tensor = "...", reason = "..."}.'
        )
    # A code holds no colon, so the first one ends it; a tensor name may hold more (params['a:b']).
    code, sep, tensor = value.partition(":")
    return _rule(code.strip(), tensor.strip() if sep else None, None, source, shown=value)


def parse_ignores(values, source: str = "--ignore") -> tuple[IgnoreRule, ...]:
    """A rule or a list of rules (the API and pyproject accept both), each validated."""
    if values is None:
        return ()
    if isinstance(values, (str, dict, IgnoreRule)):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise GradcheckError(
            f"{_option(source)} {quote(values)} is not a list of rules. Give e.g. "
            '["none-gradient:target_kernel", "zero-gradient"].'
        )
    return tuple(parse_ignore(value, source) for value in values)


def _from_table(table: dict, source: str) -> IgnoreRule:
    unknown = sorted(str(key) for key in set(table) - set(IGNORE_KEYS))
    if unknown:
        raise GradcheckError(
            f"{_option(source)}: the rule {quote(table)} has the unknown key {', '.join(map(repr, unknown))}. "
            f"A rule's keys are: {', '.join(IGNORE_KEYS)} (code is required)."
        )
    for key in IGNORE_KEYS:
        if key in table and not isinstance(table[key], str):
            raise GradcheckError(f"{_option(source)}: {key} = {quote(table[key])} is not a string.")
    if "code" not in table:
        raise GradcheckError(
            f'{_option(source)}: the rule {quote(table)} has no code. Give e.g. {{code = "none-gradient", '
            'tensor = "target_kernel", reason = "frozen target branch"}.'
        )
    tensor = table.get("tensor")
    reason = table.get("reason")
    return _rule(
        table["code"].strip(), tensor.strip() if tensor is not None else None, reason, source, shown=quote(table)
    )


def _rule(code: str, tensor: Optional[str], reason: Optional[str], source: str, *, shown: str) -> IgnoreRule:
    if code not in CODES:
        raise GradcheckError(
            f"{_option(source)} {shown}: {quote(code)} is not a finding code. The codes are: {known_codes()}. "
            "Run gradcheck --explain CODE for what one means."
        )
    if tensor is not None and not tensor:
        raise GradcheckError(
            f"{_option(source)} {shown}: the tensor after the colon is empty. Give CODE alone for every tensor, "
            "or CODE:TENSOR with the tensor's name as the report prints it (e.g. none-gradient:target_kernel)."
        )
    reason = " ".join(reason.split()) if reason else None
    return IgnoreRule(code=code, tensor=tensor, reason=reason or None, source=source)


def _option(source: str) -> str:
    return {"pyproject.toml": "ignore", "check(ignore=...)": "ignore="}.get(source, source)
