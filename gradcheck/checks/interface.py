"""The one interface every check has: `run(context) -> CheckResult`.

A check is a small frozen dataclass holding the settings it needs (never the whole Options), made
by its `from_options(options)` (None when the run did not ask for it), with a `stage` phrase the
pipeline announces as it starts. `run` reads the probe and the rows the checks before it filled,
and returns its facts per row (keyed by row identity, never by display name), its findings, and
the Report fields it alone fills (the dtype-policy results, the reload status). The pipeline
(pipeline.py) runs the list in order and applies each result; adding a check is one module and one
entry in `pipeline.CHECKS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from ..layer.rows import RowKey, Rows
from ..options.settings import Options
from ..progress import Notify, silent
from ..report import Finding, InputInfo, TensorInfo

Facts = Mapping[RowKey, Mapping[str, Any]]


@dataclass
class Context:
    """What a check reads: the probe, and the rows as the checks before it left them."""

    probe: Any  # layer.probe.Probe
    tensors: Rows[TensorInfo] = field(default_factory=Rows)
    inputs: Rows[InputInfo] = field(default_factory=Rows)
    progress: Notify = silent  # told how far a counted stage has got (progress.py)
    findings: list[Finding] = field(default_factory=list)  # what the checks before it found


@dataclass(frozen=True)
class CheckResult:
    """What one check found: facts for existing rows, findings, and Report fields of its own.

        `tensor_rows`/`input_rows` replace the tables themselves: only the inventory makes rows.
    `amended` replaces findings of the checks before it (read from `Context.findings`) rather than
    adding a second finding of the same cause.
    """

    tensors: Facts = field(default_factory=dict)
    inputs: Facts = field(default_factory=dict)
    findings: Sequence[Finding] = ()
    report: Mapping[str, Any] = field(default_factory=dict)  # Report field name -> value
    tensor_rows: Optional[Rows[TensorInfo]] = None
    input_rows: Optional[Rows[InputInfo]] = None
    # Earlier findings restated with what this check adds to them: one root cause stays one finding
    # (a reload that loses a raw variable's value is part of its untracked-variable error).
    amended: Mapping[Finding, Finding] = field(default_factory=dict)


class Check(Protocol):
    """A check: its stage phrase (None: part of the stage before it) and what it does.

    A check that has something to say about a layer whose call() returns no float tensor (what it
    reads, whether it reloads) sets the class attribute `needs_float_output = False`; the pipeline
    skips every other check for such a layer (a missing attribute means True).
    """

    @property
    def stage(self) -> Optional[str]: ...

    def run(self, context: Context) -> CheckResult: ...


class CheckKind(Protocol):
    """What pipeline.CHECKS lists: a check class, made from the run's options when it was asked for."""

    @classmethod
    def from_options(cls, options: Options) -> Optional[Check]: ...
