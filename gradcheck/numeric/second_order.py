"""The second-order check (--order 2): is the gradient itself differentiable, and rightly so?

A `tf.custom_gradient` whose grad function is right but built from `tf.stop_gradient`, numpy or an
op without a second derivative passes every first-order check, and then breaks whatever
differentiates a gradient: a gradient penalty (WGAN-GP), a physics-informed loss on ∂y/∂x, MAML,
sharpness-aware minimisation. For each trainable weight and float input whose first-order gradient
exists and agrees with finite differences, on the float64 twin (twin.py), hessian.py compares:

1. H·v from a tape over the tape, along DIRECTIONS seeded random unit directions over every
   checked tensor at once (and with --exhaustive along each entry of every tensor, a column of
   the Hessian each), against central differences of the tape gradient. Every entry of every
   block is compared, so an error confined to one entry of the Hessian is diluted only by that
   entry's share of its row, not by the tensor's size: unlike the first-order check, whose
   directional test sees a dot product, the second order needs no per-entry passes to see it
   (they would cost 3 passes per entry: 4.4x the first-order check on the smallest bench Dense);
2. the gradient penalty's term, ∇_W ‖∂L/∂x‖², the same way (one more direction).

A tensor whose tape block is None while the differences move gets `second-order-none`; one that
disagrees beyond the first-order tolerance table at 10x and 100x smaller steps gets
`second-order-mismatch`; a disagreement explained by a jump in the gradient (a ReLU kink within
the step) is not a finding, and a second derivative of zero (ReLU, a linear layer) is right.
Findings point at the line that applies the custom gradient, else at the op of the double-backward
graph that cuts the path (found as cuts.py finds none-gradient's op), else at the tensor's creation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from .. import codes
from ..checks.interface import CheckResult, Context
from ..errors import LayerRaised
from ..graph.paths import downstream_op, is_custom_gradient
from ..layer.rows import RowKey
from ..layer.sampling import generator
from ..layer.source import error_text
from ..progress import Notify, Progress, silent
from ..report import finding
from ..statuses import SECOND_ORDER_VERDICTS, rank
from .hessian import Block, Curvature, compare
from .results import select_targets
from .steps import SMALLER_STEPS
from .tolerances import DIRECTIONS, tolerance_for

SECOND_ORDER_STREAM = 3  # its own stream of directions (sampling.py): the first-order draws stay as they were
_USABLE_GRADIENT = (None, "ok", "zero", "vanishing", "exploding")  # a first-order gradient exists and is finite


@dataclass
class _Target:
    key: RowKey
    name: str
    variable: object  # the original tf.Variable, or None for an input
    input_index: int | None
    location: str | None  # where the tensor is made (the last resort for a location)
    verdict: str = "skipped"
    error: float = 0.0
    worst: tuple | None = None  # (Block, what the direction was, mode) of the worst comparison
    penalty: tuple | None = None  # the same for the gradient penalty's term
    lookup: str | None = None  # the LookupError TensorFlow raised for the double backward


@dataclass(frozen=True)
class SecondOrder:
    """--order 2: Hessian-vector products and a gradient penalty's gradient against finite differences."""

    eps: float | None
    rtol: float | None
    atol: float | None
    exhaustive: bool
    stage = "checking second derivatives"

    @classmethod
    def from_options(cls, options) -> SecondOrder | None:
        return cls(options.eps, options.rtol, options.atol, options.exhaustive) if options.order == 2 else None

    def run(self, context: Context) -> CheckResult:
        probe, tensors, inputs = context.probe, context.tensors, context.inputs
        facts, input_facts, findings = check_second_order(probe, tensors, inputs, self, progress=context.progress)
        return CheckResult(facts, input_facts, findings)


def check_second_order(probe, tensors, inputs, options, *, progress: Notify = silent):
    """Return ({tensor: facts}, {input: facts}, findings) from the second-order comparison."""
    rows = {**dict(tensors.keyed()), **dict(inputs.keyed())}
    targets = []
    for first in select_targets(probe, tensors, inputs):
        row = rows[first.key]
        if row.gradient_status in _USABLE_GRADIENT and row.numeric_verdict not in ("skipped", "mismatch"):
            targets.append(_Target(first.key, first.name, first.variable, first.input_index, first.location))
    if not targets or not probe.traces:
        return {}, {}, []
    from ..layer.twin import shared_twin

    twin = shared_twin(probe, [t.variable for t in targets if t.variable is not None])
    fallback = twin.dtype != "float64" or any(rows[t.key].numeric_verdict == "float32-fallback" for t in targets)
    dtype = "float32" if fallback else "float64"
    weights = [t for t in targets if t.variable is not None]
    ordered = weights + [t for t in targets if t.variable is None]
    try:
        modes = probe.distinct_traces()
        for index, trace in enumerate(modes):
            curvature = Curvature(
                probe,
                twin,
                trace.mode,
                [twin.variables[id(t.variable)] for t in weights],
                [t.input_index for t in ordered if t.input_index is not None],
            )
            _check_mode(probe, options, curvature, trace.mode, ordered, dtype, _in_mode(progress, index, len(modes)))
    except LayerRaised:  # the layer raised in a pass the probe did not make: no verdict
        for target in ordered:
            target.verdict = "skipped"
        return (*_facts(ordered), [])
    found = _findings(probe, ordered, curvature, dtype)  # may mark a verdict "approximate": facts after it
    return (*_facts(ordered), found)


def _facts(targets) -> tuple[dict, dict]:
    """{row key: facts} for the weights, then for the inputs, as pipeline.build_report applies them."""
    facts: tuple[dict, dict] = ({}, {})
    for t in targets:
        error = None if t.verdict == "skipped" else float(t.error)
        facts[t.variable is None][t.key] = {"second_order_verdict": t.verdict, "second_order_error": error}
    return facts


def _in_mode(notify: Notify, index: int, count: int) -> Notify:
    """One count over every training mode: each mode has the same directions, so mode `index`
    counts on from where the modes before it ended, out of `count` times its own total."""
    return lambda done, total: notify(index * total + done, count * total)


def _check_mode(probe, options, curvature, mode, targets, dtype, notify: Notify) -> None:
    tolerance = tolerance_for(options, dtype)
    gradient = curvature.gradient()
    if any(g is None or not np.all(np.isfinite(g)) for g in gradient):
        return  # gradients.py reports a None or NaN gradient; the other mode may still be compared
    theta = np.concatenate([t.reshape(-1) for t in curvature.value()])
    step = tolerance.eps * max(float(np.sqrt(np.mean(theta**2))) if theta.size else 0.0, 1.0)
    shapes = [g.shape for g in gradient]
    everything = [True] * len(targets)
    directions = [(d, "a random direction", everything) for d in _random_directions(probe, shapes)]
    for index, (target, shape) in enumerate(zip(targets, shapes)):
        size = int(np.prod(shape))
        if options.exhaustive:
            for entry in range(size):
                unit = [np.zeros(s) for s in shapes]
                unit[index].reshape(-1)[entry] = 1.0
                where = [int(i) for i in np.unravel_index(entry, shape)] if len(shape) else []
                directions.append((unit, f"the unit direction of `{target.name}`{where if where else ''}", everything))
    penalty = _penalty_direction(targets, gradient)
    if penalty is not None:
        directions.append((penalty, "penalty", [t.variable is not None for t in targets]))
    progress = Progress(len(directions), notify)
    try:
        for direction, label, wanted in directions:
            try:
                blocks = compare(curvature, direction, step, tolerance, SMALLER_STEPS[dtype], wanted)
            except LookupError as error:  # an op on the path has no gradient of its gradient
                for target in targets:
                    target.verdict, target.lookup = "none", error_text(error, 200)
                return
            for target, block in zip(targets, blocks):
                if block is not None:
                    _record(target, block, label, mode)
            progress.advance()
    finally:
        progress.close()


def _random_directions(probe, shapes) -> list:
    rng = generator(probe.seed, SECOND_ORDER_STREAM)
    directions = []
    for _ in range(DIRECTIONS):
        parts = [rng.standard_normal(shape) for shape in shapes]
        norm = max(float(np.sqrt(sum(np.sum(p**2) for p in parts))), 1e-300)
        directions.append([p / norm for p in parts])
    return directions


def _penalty_direction(targets, gradient):
    """v = (0 on the weights, ∂L/∂x on the inputs), as a unit vector: H·v's weight blocks are
    ∇_W ‖∂L/∂x‖² / (2‖∂L/∂x‖), the gradient penalty's term up to a positive factor."""
    kinds = {t.variable is not None for t in targets}
    if kinds != {True, False}:
        return None
    parts = [np.zeros_like(g) if t.variable is not None else g for t, g in zip(targets, gradient)]
    norm = float(np.sqrt(sum(np.sum(p**2) for p in parts)))
    return None if norm == 0.0 else [p / norm for p in parts]


def _record(target, block: Block, label: str, mode: str) -> None:
    if label == "penalty":
        if target.penalty is None or _worse(block, target.penalty[0]):
            target.penalty = (block, label, mode)
    elif target.worst is None or _worse(block, target.worst[0]):
        target.worst = (block, label, mode)
    if target.verdict == "skipped" or _rank(block.verdict) < _rank(target.verdict):
        target.verdict = block.verdict
    if np.isfinite(block.error):
        target.error = max(target.error, block.error)


def _worse(block: Block, other: Block) -> bool:
    return (_rank(block.verdict), -block.error) < (_rank(other.verdict), -other.error)


def _rank(verdict: str) -> int:
    return rank(verdict, SECOND_ORDER_VERDICTS)


# -- findings ---------------------------------------------------------------------------------

_USES = "a gradient penalty (WGAN-GP), a physics-informed loss on ∂y/∂x, MAML or sharpness-aware training"
_ADVICE = (
    "Build the grad function of the custom gradient from differentiable TensorFlow ops (no "
    "tf.stop_gradient, numpy or integer casts on values it returns), or give it a gradient of its "
    "own with a nested @tf.custom_gradient."
)


def _findings(probe, targets, curvature, dtype) -> list:
    findings = []
    for target in targets:
        if target.verdict not in ("none", "mismatch"):
            continue
        location = _location(probe, curvature, target)
        context = "float64 twin" if dtype == "float64" else "float32"
        if target.verdict == "none":
            findings.append(
                finding(codes.SECOND_ORDER_NONE, target.name, _none_message(target, context, location), location.where)
            )
        elif location.stop_in_library and not location.custom:
            # The tf.stop_gradient sits in a library function the user calls (tf.nn.moments inside
            # LayerNormalization): true, worth knowing, and not a bug in the user's own code.
            target.verdict = "approximate"
            message = _mismatch_message(target, context, location)
            findings.append(finding(codes.SECOND_ORDER_APPROXIMATE, target.name, message, location.where))
        else:
            findings.append(
                finding(
                    codes.SECOND_ORDER_MISMATCH,
                    target.name,
                    _mismatch_message(target, context, location),
                    location.where,
                )
            )
    return findings


@dataclass
class _Location:
    where: str | None
    cut: Any = None  # the cuts.Cut of the double-backward graph, when one was named
    custom: bool = False  # `where` is the line applying a tf.custom_gradient
    stop: str | None = None  # where a tf.stop_gradient on the forward path is, described
    stop_in_library: bool = False  # that tf.stop_gradient is called by library code, not the user's


def _location(probe, curvature, target) -> _Location:
    """The line applying a tf.custom_gradient on the tensor's path, else the op of the double
    backward that passes no gradient, else where the tensor is made."""
    graph = curvature.gradient_function.graph
    forward = SimpleNamespace(graph=graph, placeholder=lambda t: _placeholder(graph, curvature, t))
    custom = downstream_op(forward, target, is_custom_gradient)
    stops: list = []

    def is_stop(op) -> bool:
        if op.type == "StopGradient":
            stops.append(op)
            return True
        return False

    stop_line = downstream_op(forward, target, is_stop)
    stop = _describe_stop(stops[0], stop_line) if stops else None
    library = stop is not None and stop.startswith("inside ")
    cut = None
    if target.verdict == "none":
        cut = _double_backward_cut(curvature, target)
    if custom:
        return _Location(custom, cut, True, stop, library)
    if cut is not None and cut.location:
        return _Location(cut.location, cut, stop=stop, stop_in_library=library)
    if stop_line:
        return _Location(stop_line, cut, stop=stop, stop_in_library=library)
    return _Location(target.location, cut, stop=stop, stop_in_library=library)


def _describe_stop(op, user_line) -> str:
    """Where the tf.stop_gradient is: the user's line, or the library function that calls it
    (tf.nn.moments does, so LayerNormalization and BatchNormalization hold one)."""
    from ..layer.source import is_user_file

    frames = list(op.traceback)
    first = next((i for i, frame in enumerate(frames) if frame.name == "stop_gradient"), None)
    # TensorFlow's dispatch and error-handling wrappers sit between the caller and the op.
    callers = [f for f in frames[: first or 0] if "/python/util/" not in f.filename and f.name != "wrapper"]
    if callers and not is_user_file(callers[-1].filename):
        caller = callers[-1]
        inside = f"inside `{caller.name}` ({caller.filename.rsplit('/', 1)[-1]}:{caller.lineno})"
        return inside + (f", reached from {user_line}" if user_line else "")
    return f"at {user_line}" if user_line else "in library code"


def _placeholder(graph, curvature, target):
    if target.variable is None:
        return graph.inputs[target.input_index]
    handle = curvature.twin.variables[id(target.variable)].handle
    return next((internal for external, internal in graph.captures if external is handle), None)


def _double_backward_cut(curvature, target):
    from ..graph.cuts import find_cuts, forward_op_of_kernel

    try:
        graph, product = curvature.product_graph()
    except LayerRaised:  # only the location is at stake: another one is used
        return None
    source = _placeholder(graph, curvature, target)
    if source is None:
        return None
    cuts = find_cuts(SimpleNamespace(graph=graph, loss=product), source)
    if not cuts:
        return None
    cut = cuts[0]
    if cut.location is None or cut.op_type.endswith("Grad"):
        # A gradient kernel (ResizeNearestNeighborGrad) was made by gradcheck's tape, so its stack
        # is not the user's; the forward op it differentiates (its name minus the tape's scope) is.
        # Ops the user wrote in a grad function (tf.stop_gradient) keep their own line.
        forward = forward_op_of_kernel(graph, cut.op_type)
        if forward is not None:
            from ..layer.source import user_location

            cut = dataclasses.replace(
                cut, written_as=f"the gradient of {forward.type}", location=user_location(forward.traceback)
            )
    return cut


def _mode_text(mode: str) -> str:
    return f", training={mode.capitalize()}" if mode in ("true", "false") else ""


def _none_message(target, context, location: _Location) -> str:
    name = target.name
    where = ""
    if location.cut is not None:
        where = f" The path of the gradient's own gradient is cut at {location.cut.describe()}: {location.cut.why}."
    penalty = target.penalty is not None and target.penalty[0].verdict == "none"
    hessian = target.worst is not None and target.worst[0].verdict == "none"
    parts = []
    if hessian:
        block, label, mode = target.worst
        parts.append(
            f"the gradient of its gradient (H·u along {label}{_mode_text(mode)}) is None, while finite "
            f"differences of the gradient give a norm of {np.linalg.norm(block.numeric):.3g}"
        )
    if penalty:
        block, _, mode = target.penalty
        parts.append(
            f"the gradient of the penalty ‖∂loss/∂input‖² with respect to it is None{_mode_text(mode)}, "
            f"while finite differences give a norm of {np.linalg.norm(block.numeric):.3g}"
        )
    breaks = (
        f"a gradient penalty never trains `{name}`"
        if penalty and target.variable is not None
        else f"{_USES} get no second-order signal through `{name}`"
    )
    advice = (
        _ADVICE
        if location.custom
        or location.cut is None
        or location.cut.op_type in ("StopGradient", "PyFunc", "PyFuncStateless", "EagerPyFunc", "Cast")
        else (
            'Use an op that TensorFlow can differentiate twice on this path (e.g. resize with "bilinear" '
            'rather than "nearest" or "bicubic"), or give it a @tf.custom_gradient whose grad function '
            "is differentiable."
        )
    )
    if target.lookup:
        return (
            f"TensorFlow cannot differentiate the gradient of the loss for `{name}` ({context}): "
            f"{target.lookup}.{where} So {breaks}: differentiating its gradient raises. {advice}"
        )
    detail = "; ".join(parts) or "the gradient of its gradient is None"
    return (
        f"The second derivative of the loss for `{name}` is not zero, but the tape cannot compute it "
        f"({context}): {detail}.{where} So {breaks}, silently. {advice}"
    )


def _mismatch_message(target, context, location: _Location) -> str:
    parts = []
    for kind, record in (("H·u", target.worst), ("the penalty's gradient", target.penalty)):
        if record is None or record[0].verdict != "mismatch":
            continue
        block, label, mode = record
        shown = "; ".join(
            f"{list(index) if index else ''} tape {tape:.6g} vs numeric {numeric:.6g}".strip()
            for index, tape, numeric in block.worst
        )
        along = "u = ∂L/∂input" if label == "penalty" else f"u = {label}"
        parts.append(
            f"{kind} along {along}{_mode_text(mode)}: relative error {block.error:.1e} (step "
            f"{block.step:.0e}), worst entries {shown}"
        )
    detail = "; ".join(parts)
    if location.stop is not None and not location.custom:
        return (
            f"The second derivative of the loss for `{target.name}` disagrees with finite differences of its "
            f"gradient ({context}): {detail}. The first-order gradient agrees: its path holds a tf.stop_gradient "
            f"({location.stop}) that leaves the first derivative exact at this point and the second one "
            f"wrong, so {_USES} would train on a wrong gradient. Compute that statistic without "
            "tf.stop_gradient (e.g. the variance as mean((x - mean(x))²)) if the layer is to be "
            "differentiated twice."
        )
    return (
        f"The second derivative of the loss for `{target.name}` disagrees with finite differences of its "
        f"gradient ({context}): {detail}. The first-order gradient agrees and the disagreement stays at "
        f"10x and 100x smaller steps, so differentiating the gradient gives a wrong result: {_USES} "
        f"would train on it. Check the grad function of the custom gradient this tensor flows through "
        "(its own derivative, or a nested custom gradient)."
    )
