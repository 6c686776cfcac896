"""The report: plain, frozen data that every check fills and every renderer reads.

Nothing here imports TensorFlow, so renderers and their tests run without it. The vocabulary of
finding codes lives in codes.py; `finding()` is the one way to make a Finding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Optional

from .codes import CODES, ERROR, INFO, SEVERITY_ORDER, WARNING, Code, Severity
from .options.settings import DEFAULT_EXPLODING, DEFAULT_VANISHING
from .statuses import GradientStatus, NumericVerdict, SecondOrderVerdict

__all__ = ["CODES", "ERROR", "INFO", "SEVERITY_ORDER", "WARNING", "Finding", "Report", "TargetFailure", "finding"]


@dataclass(frozen=True)
class Finding:
    code: str  # a name of codes.CODES
    severity: Severity
    tensor: Optional[str]
    message: str
    location: Optional[str]  # "path/to/file.py:LINE", relative to the working folder when inside it
    # The op and line that explain the finding, the same string for every tensor that one op cuts,
    # kills, saturates or turns NaN ("ArgMax at layers.py:14"); None when the finding has no such
    # shared cause. Renderers for people show the findings of one code and one cause as one.
    cause: Optional[str] = None
    # Set by the gate (gate/) after the check: a suppression or a baseline entry matched it. An
    # ignored finding is still reported, but never counts toward a verdict or the exit status.
    ignored: bool = False
    ignore_reason: Optional[str] = None  # the reason written beside the suppression, if any
    ignored_by: Optional[str] = None  # "comment at FILE:LINE", "--ignore", "pyproject.toml", "baseline FILE"
    backend: Optional[str] = None  # the Keras backend it was found on (pipeline.py and compare/ set it)


def finding(
    code: Code | str,
    tensor: Optional[str],
    message: str,
    location: Optional[str] = None,
    *,
    cause: Optional[str] = None,
) -> Finding:
    """Make a Finding whose severity comes from the code table (so no check can disagree with it).

    `code` is one of codes.py's constants (a check's way), or its name (a hand-built Report in a test).
    `cause` is `op_cause(...)` of the op that explains it, when other tensors may share that op.
    """
    known = code if isinstance(code, Code) else CODES[code]
    return Finding(
        code=known.name, severity=known.severity, tensor=tensor, message=message, location=location, cause=cause
    )


def op_cause(op_type: str, location: Optional[str]) -> Optional[str]:
    """The `cause` of a finding an op explains: "ArgMax at layers.py:14"; None without the user's
    line (two ops of one type inside a library cannot be told apart, so they share nothing)."""
    return f"{op_type} at {location}" if location else None


@dataclass(frozen=True)
class TensorInfo:
    """One tensor that call() uses or that the layer holds: a variable, or a constant posing as one."""

    name: str  # attribute path on the layer ("proj.kernel", "blocks[1].w") or the variable's name
    kind: str  # trainable | non-trainable | overwritten (Keras assigns it in fit()) | untracked | constant | state
    shape: tuple[int, ...]
    dtype: str
    layer: Optional[str] = None  # the (inner) layer that owns it, for Models and nested layers
    created_at: Optional[str] = None
    read_by_call: bool = True
    gradient_norm: Optional[float] = None
    gradient_status: Optional[GradientStatus] = None  # statuses.GRADIENT_STATUSES
    gradient_ratio: Optional[float] = None  # RMS(gradient) / max(RMS(tensor), 1): what the thresholds compare
    trains_under_fit: Optional[bool] = None  # did one optimizer step over trainable_weights change it?
    numeric_error: Optional[float] = None  # worst relative error against finite differences
    numeric_verdict: Optional[NumericVerdict] = None  # statuses.NumericVerdict
    numeric_skip_reason: Optional[str] = None  # why it was not compared, when numeric_verdict is skipped
    # The rows finite differences compared when call() reads this weight only by looking rows up
    # (an embedding's table): those the probe batch looks up, the others getting no gradient from
    # either side. None when every entry was within reach of the comparison.
    numeric_rows: Optional[int] = None
    second_order_error: Optional[float] = (
        None  # with --order 2: worst relative error of H·u (and of the penalty's gradient)
    )
    second_order_verdict: Optional[SecondOrderVerdict] = None  # with --order 2: statuses.SECOND_ORDER_VERDICTS
    backend: Optional[str] = None  # the Keras backend the row was checked on


@dataclass(frozen=True)
class InputInfo:
    name: str  # "input" for one; for several, call()'s names: `x`, `context` or `inputs[0]` (calling.input_names)
    shape: tuple[int, ...]
    dtype: str
    value_range: tuple[float, float]
    differentiable: bool
    gradient_norm: Optional[float] = None
    gradient_status: Optional[GradientStatus] = None
    gradient_ratio: Optional[float] = None  # as for TensorInfo, the gradient first multiplied by the batch size
    numeric_error: Optional[float] = None
    numeric_verdict: Optional[NumericVerdict] = None
    numeric_skip_reason: Optional[str] = None
    second_order_error: Optional[float] = None
    second_order_verdict: Optional[SecondOrderVerdict] = None
    backend: Optional[str] = None


@dataclass(frozen=True)
class PolicyResult:
    """The layer run again under one Keras dtype policy, compared with the float32 run."""

    policy: str  # mixed_float16 | mixed_bfloat16 | float16 | bfloat16
    compute_dtype: str
    output_dtypes: tuple[str, ...] = ()
    output_error: Optional[float] = None  # worst relative difference of an output from float32
    gradient_errors: dict = field(default_factory=dict)  # tensor or input name -> relative difference
    status: str = "ok"  # ok | ignored | loss | "raised: why" | "skipped: why"


@dataclass(frozen=True)
class Report:
    target: str
    variables: tuple[TensorInfo, ...] = ()  # every tensor found: variables, and constants posing as weights
    inputs: tuple[InputInfo, ...] = ()
    findings: tuple[Finding, ...] = ()
    training_modes: tuple[str, ...] = ()  # which values of `training` were checked: "true", "false", "n/a"
    stochastic: bool = False
    seed: int = 0
    # The thresholds gradient_ratio was held to (--vanishing-threshold, --exploding-threshold), so a
    # renderer can place a ratio between them without knowing the options.
    vanishing_threshold: float = DEFAULT_VANISHING
    exploding_threshold: float = DEFAULT_EXPLODING
    versions: dict = field(default_factory=dict)  # tensorflow, keras, python
    dtype_policies: tuple[PolicyResult, ...] = ()  # one per --dtype-policy
    reload: Optional[str] = None  # ok | failed | mismatch | "skipped: why"; None with --no-reload
    backend: str = "tensorflow"  # the Keras backend it was checked on: tensorflow, jax or torch
    # With several backends (compare/): {"backends": [...], "modes": [...], "status": "..."}: what this
    # backend's outputs and gradients were compared with, in which training modes, and how it went.
    cross_backend: Optional[dict] = None

    @property
    def ok(self) -> bool:
        """No finding of severity error: the verdict under the default --fail-on error.

        Under --fail-on warning a report can be `ok` and still fail the run; `fails(report, fail_on)`
        is the rule the exit status, the text verdict and `assert_trainable` follow.
        """
        return not fails(self, ERROR)

    def count(self, severity: str) -> int:
        """Findings of `severity` that count: an ignored finding is left out, as the verdict leaves it out."""
        return sum(1 for f in self.findings if f.severity == severity and not f.ignored)

    @property
    def ignored_count(self) -> int:
        return sum(1 for f in self.findings if f.ignored)

    def to_dict(self) -> dict:
        """The JSON contract: the dataclasses as they are, plus the derived `ok`."""
        document = {"target": self.target, "ok": self.ok}
        document.update(asdict(self))
        return document

    @classmethod
    def from_dict(cls, document: dict) -> Report:
        """The Report that `to_dict()` described: how a worker's result crosses the process boundary.

        Every field is rebuilt from the dataclasses themselves, so a field added to the Report
        crosses without a change here (lists become the tuples the dataclasses hold).
        """
        nested = {"variables": TensorInfo, "inputs": InputInfo, "findings": Finding, "dtype_policies": PolicyResult}
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in document:
                continue
            value = document[item.name]
            if item.name in nested:
                value = tuple(_rebuild(nested[item.name], entry) for entry in value)
            values[item.name] = _tuples(value) if item.name != "versions" else dict(value)
        return cls(**values)


def _rebuild(kind, document: dict):
    # Keys the dataclass does not have (the JSON renderer's "help") are left out, not a TypeError.
    known = {item.name for item in fields(kind)}
    return kind(**{key: _tuples(value) for key, value in document.items() if key in known})


def _tuples(value):
    """JSON lists back into the tuples the frozen dataclasses hold (shapes, ranges, dtypes)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def sort_findings(findings) -> tuple[Finding, ...]:
    """Errors first, then by tensor and code, so output is stable from run to run."""
    return tuple(sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.tensor or "", f.code, f.location or "")))


@dataclass(frozen=True)
class TargetFailure:
    """A target that could not be checked (bad input, the layer raised): exit status 2."""

    target: str
    message: str
    backend: Optional[str] = None  # the Keras backend it was to be checked on (the command sets it)
    # The layer's own code raised (building or calling it), at this user line ("" when not known);
    # None for every other way a check ends. Not part of the JSON: compare/ reads it.
    layer_raised_at: Optional[str] = field(default=None, compare=False)

    ok = False

    def to_dict(self) -> dict:
        document = {"target": self.target, "ok": False, "error": self.message}
        if self.backend is not None:
            document["backend"] = self.backend
        return document

    @classmethod
    def from_dict(cls, document: dict) -> TargetFailure:
        return cls(target=document["target"], message=document["error"], backend=document.get("backend"))


# The name each backend's framework goes by, and the key of its version in Report.versions.
FRAMEWORKS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def versions_line(report: Report) -> str:
    """ "TensorFlow 2.21.0 · Keras 3.15.1": the framework the report was checked on, and Keras."""
    backend = report.backend if report.backend in FRAMEWORKS else "tensorflow"
    versions = report.versions
    return f"{FRAMEWORKS[backend]} {versions.get(backend, '?')} · Keras {versions.get('keras', '?')}"


def comparison_line(report: Report) -> str | None:
    """ "backends: compared with jax, torch (training=True with the same random draws, training=False):
    ok": what this backend's outputs and gradients were compared with, in which modes, and how it went."""
    compared = report.cross_backend
    if not compared:
        return None
    modes = [
        "training=True with the same random draws" if m == "true" else f"training={m.capitalize()}"
        for m in compared.get("modes", ())
        if m != "n/a"
    ]
    left_out = compared.get("left_out") or {}
    modes += [f"training={m.capitalize()} left out: {why}" for m, why in left_out.items()]
    others = ", ".join(FRAMEWORKS.get(b, b) for b in compared.get("backends", ()))
    return f"backends: compared with {others}{' (' + '; '.join(modes) + ')' if modes else ''}: {compared.get('status')}"


def with_backends_named(results) -> list:
    """The results with each target followed by its backend (`layers.py:MyLayer [jax]`) when the run
    is not TensorFlow's alone, for the formats people read: every line that names a target (a
    header, a verdict, an annotation, a testcase) then names the backend too. A run on TensorFlow
    alone reads as it always has; the JSON document carries `backend` fields instead."""
    backends = {getattr(r, "backend", None) or "tensorflow" for r in results}
    if backends == {"tensorflow"}:
        return list(results)
    return [replace(r, target=f"{r.target} [{getattr(r, 'backend', None) or 'tensorflow'}]") for r in results]


def fails(report, fail_on: str = ERROR) -> bool:
    """Does `report` fail the run under `--fail-on fail_on`: a finding of that severity or worse?

    The one verdict rule: exit_status, the text and Markdown verdicts and `assert_trainable` all
    call it, so the words on the screen always match the exit status. A TargetFailure is not a
    failing report (it could not run: exit status 2). An ignored finding (a suppression or a
    baseline entry matched it) never fails a report.
    """
    return bool(failing_findings(report, fail_on))


def failing_findings(report, fail_on: str = ERROR) -> list[Finding]:
    """The findings of `report` that make it fail under `--fail-on fail_on` (see `fails`)."""
    if isinstance(report, TargetFailure):
        return []
    limit = SEVERITY_ORDER[fail_on]
    return [f for f in report.findings if SEVERITY_ORDER[f.severity] <= limit and not f.ignored]


def counted(report: Report) -> str:
    """The counts of a report in the one wording every format uses: "1 error, 2 warnings" (", 3 ignored")."""
    errors, warnings, ignored = report.count(ERROR), report.count(WARNING), report.ignored_count
    words = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    return words + (f", {ignored} ignored" if ignored else "")


def not_compared(report: Report) -> list[str]:
    """The tensors and inputs whose gradient was not compared with finite differences (skipped)."""
    rows: list[TensorInfo | InputInfo] = [*report.variables, *report.inputs]
    return [row.name for row in rows if row.numeric_verdict == "skipped"]


def not_compared_note(report: Report) -> str:
    """ "; 2 tensors not compared: `a`, `b`" for a verdict line ("" when every one was compared)."""
    names = not_compared(report)
    if not names:
        return ""
    shown = ", ".join(f"`{name}`" for name in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"; {len(names)} tensor{'s' * (len(names) != 1)} not compared with finite differences: {shown}"


def exit_status(results, fail_on: str = ERROR) -> int:
    """The one exit-status policy: 0 clean, 1 a finding at or above `fail_on`, 2 a check that could not run.

    `results` holds a Report or a TargetFailure per target; "could not run" wins over "found
    problems", so CI can tell a broken setup from a broken layer.
    """
    if any(isinstance(result, TargetFailure) for result in results):
        return 2
    if any(fails(report, fail_on) for report in results):
        return 1
    return 0
