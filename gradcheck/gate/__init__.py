"""The gate: what a team decided about findings, applied to the Reports after the check.

- `sources.py`: the user's files read as text (never imported): `# gradcheck: ignore[...]`
  comments found with tokenize, the function a line is in found with ast.
- `suppressions.py`: inline comments, pyproject `ignore` and `--ignore` mark findings ignored,
  with their reasons; unused, bare or misspelt suppressions are warnings of their own.
- `baseline.py`: `--write-baseline` / `--baseline`, findings recorded so only new ones fail.

It is pure post-processing in the supervisor: it reads Reports and text files and returns new
Reports, so every renderer and the exit status (report.fails) see the same result. It may import
report.py, codes.py, errors.py and options/ (the rules), never TensorFlow, layer/ or the checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Optional

from ..options.ignores import IgnoreRule
from .sources import files_named, forget_sources
from .suppressions import apply_suppressions

__all__ = ["apply_gate", "files_named"]


def apply_gate(
    results: Sequence, rules: Sequence[Iterable[IgnoreRule]], files: Optional[Sequence[Iterable[str]]] = None
) -> list:
    """`results` with the suppressions applied (baseline.apply_baseline comes after, when asked for).

    `rules` holds, per result, the rules of its Options; `files`, per result, the files whose
    comments apply (default: files_named of each result).
    """
    forget_sources()  # a file edited since the last run in this process is read again
    if files is None:
        files = [files_named(result) for result in results]
    return apply_suppressions(results, rules, files)
