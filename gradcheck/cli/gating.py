"""The command's side of the gate: --baseline read and --write-baseline checked before any target runs,
the gate applied to the results, and the baseline written after them.

Everything that can be refused is refused before TensorFlow loads: a missing or malformed
--baseline, a --write-baseline that is a folder, sits in a missing folder, is a file the run reads
(a target's source, pyproject.toml, the --baseline file, the --output file) or an existing file
that is not a baseline. The new baseline is written whole (a temporary file, then a rename), like
--output, and holds the entries of targets this run did not check as they were.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from ..errors import GradcheckError
from ..gate import apply_gate, files_named
from ..gate.baseline import Entry, apply_baseline, baseline_text, merged, read_baseline
from ..layer.source import shown_path
from .destination import check_writable, files_read, write_output


@dataclass(frozen=True)
class BaselineFiles:
    """--baseline's path and entries, --write-baseline's path and the entries the file held before."""

    read_from: Optional[str] = None
    entries: tuple[Entry, ...] = ()
    write_to: Optional[str] = None
    kept: tuple[Entry, ...] = field(default=())


def prepare_baseline(
    baseline: Optional[str], write_baseline: Optional[str], output: Optional[str], targets: list[str]
) -> BaselineFiles:
    """Read --baseline and check --write-baseline, before the checks (GradcheckError: exit status 2)."""
    entries: tuple[Entry, ...] = ()
    if baseline is not None:
        entries = tuple(read_baseline(baseline))
    kept: tuple[Entry, ...] = ()
    if write_baseline is not None:
        read = files_read(targets)
        if baseline is not None:
            read[baseline] = "the --baseline file"
        if output is not None:
            read[output] = "the --output file"
        check_writable("--write-baseline", write_baseline, read, "gradcheck-baseline.json", "baseline")
        kept = _existing(write_baseline)
    return BaselineFiles(baseline, entries, write_baseline, kept)


def _existing(path: str) -> tuple[Entry, ...]:
    """The entries of the baseline already at `path` (none when there is no file); a file there that
    is not a baseline is refused rather than overwritten."""
    if not os.path.exists(path):
        return ()
    try:
        return tuple(read_baseline(path))
    except GradcheckError:
        raise GradcheckError(
            f"--write-baseline {path} exists and is not a gradcheck baseline, so gradcheck will not overwrite it. "
            "Give another file name, or remove the file if it is yours to drop."
        ) from None


def gated(
    results: list, jobs: list, files: BaselineFiles, imported: Optional[list] = None
) -> tuple[list, Optional[str]]:
    """`results` after the gate (suppressions, then the baseline read or the one just written), and a
    note for stderr when a baseline was written. `imported`: per target, the user's source files it
    imported (supervisor.Outcome.user_files), whose comments apply as well as those of the files
    the report names."""
    rules = [() if isinstance(options, GradcheckError) else options.ignore for _, options in jobs]
    imported = imported or [()] * len(results)
    scanned = [
        list(dict.fromkeys([*files_named(result, target), *map(shown_path, extra)]))
        for result, (target, _), extra in zip(results, jobs, imported)
    ]
    results = apply_gate(results, rules, scanned)
    if files.write_to is not None:
        entries = merged(files.kept, results)
        write_output(files.write_to, baseline_text(entries), "--write-baseline", "baseline")
        count = len(entries)
        note = f"gradcheck: wrote {count} finding{'s' * (count != 1)} to the baseline {files.write_to}."
        return apply_baseline(results, entries, files.write_to), note
    if files.read_from is not None:
        return apply_baseline(results, files.entries, files.read_from), None
    return results, None
