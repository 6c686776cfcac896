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


@dataclass(frozen=True)
class CheckResult:
    """What one check found: facts for existing rows, findings, and Report fields of its own.

    `tensor_rows`/`input_rows` replace the tables themselves: only the inventory makes rows.
    """

    tensors: Facts = field(default_factory=dict)
    inputs: Facts = field(default_factory=dict)
    findings: Sequence[Finding] = ()
    report: Mapping[str, Any] = field(default_factory=dict)  # Report field name -> value
    tensor_rows: Optional[Rows[TensorInfo]] = None
    input_rows: Optional[Rows[InputInfo]] = None


class Check(Protocol):
    """A check: its stage phrase (None: part of the stage before it) and what it does."""

    @property
    def stage(self) -> Optional[str]: ...

    def run(self, context: Context) -> CheckResult: ...


class CheckKind(Protocol):
    """What pipeline.CHECKS lists: a check class, made from the run's options when it was asked for."""

    @classmethod
    def from_options(cls, options: Options) -> Optional[Check]: ...
