"""Gradient diagnosis: does every trainable weight and float input get a usable gradient?

The probe (probe.py) already traced call() per `training` mode together with the probe loss
sum(r * y) / batch and its gradients. Here each gradient is classified — none, nonfinite, zero,
vanishing, exploding or ok — and the worst mode is reported. Only on failure is the graph read in
detail: which op cuts a None gradient (cuts.py), which op made the first non-finite value.

The scale measure for vanishing/exploding is

    ratio = RMS(gradient) / max(RMS(tensor), SCALE_FLOOR)

the size of one SGD step (learning rate 1) relative to the tensor it moves. The probe loss has unit
scale (Gaussian projections, averaged over the batch), so a tensor smaller than SCALE_FLOOR = 1 (a
zero-initialised bias) is measured against 1: any O(1) update moves it, and its own near-zero RMS
must not make a healthy gradient look huge. For an input the gradient is multiplied by the batch
size first: the loss averages over the batch, a 1/batch factor that says nothing about the layer.
The thresholds (options.py) say when one step cannot move a float32 value (1e-7, its relative
rounding step) or moves it far more than its own size at any usual learning rate (1e4).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import codes
from ..errors import LayerRaised
from ..layer import state
from ..layer.rows import input_key, variable_key
from ..layer.source import eager_cut_location
from ..report import finding, op_cause
from ..runtime import backend
from ..statuses import GRADIENT_STATUSES, rank
from .fitstep import trains_under_fit
from .interface import CheckResult, Context
from .weak import is_rounding_noise, noise_finding, peak_ratio, weak_finding

SCALE_FLOOR = 1.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    mode: str
    status: str
    norm: float | None
    ratio: float | None


@dataclasses.dataclass
class ProbePass:
    """One forward+backward pass of the probe for one mode, as numpy."""

    mode: str
    trace: object  # the Trace, or None for the eager fallback
    result: dict


@dataclasses.dataclass(frozen=True)
class Gradients:
    """Each gradient's status (none, nonfinite, zero, vanishing, exploding, noise, ok), the op that
    explains a bad one, and whether one optimizer step moves each weight."""

    vanishing_threshold: float
    exploding_threshold: float
    stage = "computing gradients"

    @classmethod
    def from_options(cls, options) -> Gradients:
        return cls(options.vanishing_threshold, options.exploding_threshold)

    def run(self, context: Context) -> CheckResult:
        tensors, inputs, findings = check_gradients(context.probe, context.tensors, context.inputs, self)
        return CheckResult(tensors, inputs, findings)


def check_gradients(probe, tensors, inputs, options):
    """Return ({tensor: facts}, {input: facts}, findings) for every gradient the probe takes."""
    runs = _probe_passes(probe)
    if not runs:  # every backward pass raised: nothing to classify
        return {}, {}, list(probe.backward_failures)
    tensor_updates: dict = {}
    input_updates: dict = {}
    findings: list = []
    sources = _sources(probe, inputs)

    for index, (name, variable, input_index) in enumerate(sources):
        key = variable_key(variable) if variable is not None else input_key(input_index)
        row = tensors.get(key) if variable is not None else None
        if variable is not None and (row is None or not row.read_by_call):
            continue  # an unread weight is already reported as unused-variable
        if row is not None and row.kind == "overwritten":
            continue  # what its "gradient" holds is its next value, which fit() assigns (inventory.py)
        outcomes = []
        for run in runs:
            if (
                variable is not None
                and run.trace is not None
                and _source_placeholder(probe, run, variable, None) is None
            ):
                continue  # not read in this mode (e.g. a branch taken only when training)
            value = _value(probe, variable, input_index)
            scale = probe.batch_size if variable is None else 1
            outcomes.append(_classify(options, run.mode, run.result["grads"][index], value, scale))
        if not outcomes:
            continue
        worst = min(outcomes, key=lambda o: rank(o.status, GRADIENT_STATUSES))  # over the traced modes
        worst_run = next(r for r in runs if r.mode == worst.mode)
        source = worst_run.trace.source(variable, input_index) if worst_run.trace else None
        if is_rounding_noise(probe, worst_run, worst, source):
            worst = dataclasses.replace(worst, status="noise")
        facts = {"gradient_norm": worst.norm, "gradient_status": worst.status, "gradient_ratio": worst.ratio}
        (tensor_updates if variable is not None else input_updates)[key] = facts
        made = _finding(probe, options, runs, name, variable, input_index, index, worst, outcomes, row)
        if made is not None:
            findings.append(made)

    findings += backend().nonfinite_outputs(probe, runs, findings) + probe.backward_failures
    for key, trains in trains_under_fit(probe, runs, tensors).items():
        tensor_updates.setdefault(key, {})["trains_under_fit"] = trains
    return tensor_updates, input_updates, findings


# --- running the probe -----------------------------------------------------------------------------


def _probe_passes(probe) -> list[ProbePass]:
    """One ProbePass per traced mode, each from the same fixed random state so stochastic layers repeat."""
    framework = backend()
    saved = state.snapshot(probe.layer)
    fixed = state.fixed(probe.layer, probe.seed)
    runs: list[ProbePass] = []
    failures: list = []
    for trace in probe.distinct_traces():
        state.restore(fixed)
        try:
            runs.append(ProbePass(trace.mode, trace, framework.run(probe, trace)))
        except LayerRaised as raised:  # the forward pass ran in the probe: its backward raised
            failure = framework.backward_failure(trace, raised.error, trace.mode)
            if failure is None:
                raise
            if all(f.location != failure.location for f in failures):
                failures.append(failure)
    if not probe.traces:
        state.restore(fixed)
        runs.append(ProbePass("n/a", None, framework.eager_run(probe)))
    state.restore(saved)
    probe.backward_failures = failures
    return runs


def _sources(probe, inputs):
    """(name, variable or None, input index or None), in the order of the probe's gradients."""
    names = [probe.tensor_name(v) for v in probe.gradient_variables]
    sources = [(name, v, None) for name, v in zip(names, probe.gradient_variables)]
    sources += [(inputs[i].name, None, i) for i in probe.float_input_indexes]
    return sources


def _value(probe, variable, input_index):
    if variable is None:
        return probe.inputs[input_index]
    return np.asarray(backend().to_numpy(variable))


def _source_placeholder(probe, run, variable, input_index):
    return run.trace.source(variable, input_index)


# --- classification --------------------------------------------------------------------------------


# Numbers per float64 piece when measuring a large array: a 25.6M-number gradient is summed piece
# by piece rather than copied whole into float64 (205 MB, and as much again for its squares).
# An array of at most this many numbers is one piece: its sums are exactly those of the whole.
_PIECE = 1 << 20


def _pieces(values):
    flat = np.asarray(values).reshape(-1)
    for start in range(0, flat.size, _PIECE):
        yield np.asarray(flat[start : start + _PIECE], dtype=np.float64)


def _rms(values) -> float:
    """sqrt(mean(values²)), summed in float64."""
    size = np.size(values)
    total = 0.0
    for piece in _pieces(values):
        total += float(np.add.reduce(np.square(piece)))
    return math.sqrt(total / size) if size else 0.0


def _norm(values) -> float:
    """The Euclidean norm, as np.linalg.norm takes it (sqrt of the dot product), in float64."""
    total = 0.0
    for piece in _pieces(values):
        total += float(piece.dot(piece))
    return math.sqrt(total)


def _classify(options, mode, grad, value, scale) -> Outcome:
    if grad is None:
        return Outcome(mode, "none", None, None)
    grad = np.asarray(grad)
    norm = _norm(grad)
    if not np.all(np.isfinite(grad)):
        return Outcome(mode, "nonfinite", norm, None)
    if not np.any(grad):
        return Outcome(mode, "zero", 0.0, 0.0)
    ratio = _rms(grad) * scale / max(_rms(value), SCALE_FLOOR)
    if ratio < options.vanishing_threshold:
        return Outcome(mode, "vanishing", norm, ratio)
    if ratio > options.exploding_threshold:
        return Outcome(mode, "exploding", norm, ratio)
    return Outcome(mode, "ok", norm, ratio)


def _in_modes(worst: Outcome, outcomes) -> str:
    """' with training=True (with training=False it is ok)' when the modes disagree."""
    others = [o for o in outcomes if o.mode != worst.mode]
    if worst.mode == "n/a" or all(o.status == worst.status for o in others):
        return ""
    return f" with training={worst.mode.capitalize()}" + "".join(
        f" (with training={o.mode.capitalize()} it is {o.status})" for o in others
    )


# --- findings ---------------------------------------------------------------------------------------


def _finding(probe, options, runs, name, variable, input_index, index, worst, outcomes, row):
    is_input = variable is None
    where = _in_modes(worst, outcomes)
    subject = f"The gradient with respect to `{name}`" if is_input else f"`{name}`'s gradient"
    created = row.created_at if row is not None else None
    run = next(r for r in runs if r.mode == worst.mode)
    if worst.status == "none":
        return _none_finding(probe, run, name, variable, input_index, where, created)
    if worst.status == "nonfinite":
        return backend().nonfinite_finding(probe, run, name, variable, index, where, created, subject)
    if worst.status in ("zero", "vanishing", "exploding"):
        source = run.trace.source(variable, input_index) if run.trace else None
        threshold = options.vanishing_threshold if worst.status != "exploding" else options.exploding_threshold
        return weak_finding(probe, run, name, source, worst, where, subject, is_input, created, threshold)
    if worst.status == "noise":
        return noise_finding(name, worst, peak_ratio(probe, run, worst), created)
    return None


def _none_finding(probe, run, name, variable, input_index, where, created):
    code = codes.INPUT_GRADIENT_NONE if variable is None else codes.NONE_GRADIENT
    consequence = (
        "so layers before this one get no gradient from it and cannot train"
        if variable is None
        else 'so fit() never changes it (Keras only says "Gradients do not exist for variables")'
    )
    if run.trace is None:
        location = eager_cut_location(probe.layer)
        place = f" (probably at {location})" if location else ""
        framework = backend().words.framework
        return finding(
            code,
            name,
            f"`{name}` gets a None gradient{where}: the path from it to the output leaves {framework}{place}, "
            f"{consequence}. call() could not be traced, so the op that cuts the path cannot be named; "
            f"a `.numpy()` or numpy call on a tensor is the usual cause. Keep the computation in {framework} ops.",
            location or created,
        )
    source = run.trace.source(variable, input_index)
    cuts = backend().cuts(run.trace, source) if source is not None else []
    if variable is None and all(cut.shape_only for cut in cuts):
        # The output depends on the input's shape only (a position embedding, keras-hub's
        # SinePositionEncoding): by design, and the layers before it train through the sum the
        # caller makes. Say so, without failing the check.
        return finding(
            codes.INPUT_UNUSED,
            name,
            f"The output of call() does not depend on the values of `{name}`{where}, only on its shape, "
            "so no gradient flows back through this layer to it. That is right for a position "
            "embedding whose result is added to its input outside the layer; otherwise use the input in call().",
            None,
        )
    if not cuts:
        return finding(
            code,
            name,
            f"`{name}` is used by call() but its gradient is None{where}: no path from it reaches the output, "
            f"{consequence}. Check that its result is used in what call() returns.",
            created,
        )
    first = cuts[0]
    others = "".join(f" and {c.describe()}" for c in cuts[1:])
    return finding(
        code,
        name,
        f"`{name}` reaches the output only through {first.describe()}{others}{where}; "
        f"{first.written_as} passes no gradient ({first.why}), {consequence}. {first.advice}",
        first.location or created,
        cause=_cut_cause(cuts),
    )


def _cut_cause(cuts) -> str | None:
    """The ops that cut the path, each at its line: tensors cut by the same ones share a cause."""
    parts = [op_cause(cut.op_type, cut.location) for cut in cuts]
    return None if None in parts else " and ".join(part for part in parts if part)
