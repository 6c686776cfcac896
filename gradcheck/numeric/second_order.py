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

from dataclasses import dataclass

import numpy as np

from ..checks.interface import CheckResult, Context
from ..errors import LayerRaised
from ..layer.rows import RowKey
from ..layer.sampling import generator
from ..layer.source import error_text
from ..progress import Notify, Progress, silent
from ..runtime import backend
from ..statuses import SECOND_ORDER_VERDICTS, rank
from .hessian import Block, compare
from .results import select_targets
from .second_order_findings import second_order_findings
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
    lookup_mode: str | None = None  # the training mode it was raised in

    def mode(self) -> str | None:
        """The training mode of its worst comparison: where its finding is located."""
        for record in (self.worst, self.penalty):
            if record is not None and record[0].verdict == self.verdict:
                return record[2]
        return self.lookup_mode


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
        from ..layer.twin import release_twins

        probe, tensors, inputs = context.probe, context.tensors, context.inputs
        try:
            facts, input_facts, findings = check_second_order(probe, tensors, inputs, self, progress=context.progress)
        finally:
            release_twins(probe)  # the last check to compare on it
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
    curvatures: dict = {}  # per training mode: a finding is located in its own mode's graph
    try:
        modes = probe.distinct_traces()
        for index, trace in enumerate(modes):
            curvatures[trace.mode] = curvature = backend().curvature(
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
    found = second_order_findings(probe, ordered, curvatures, dtype)  # may mark a verdict "approximate": facts after it
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
    gradient = curvature.center
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
                blocks = compare(curvature, direction, step, tolerance, dtype, wanted)
            except LookupError as error:  # an op on the path has no gradient of its gradient
                for target in targets:
                    target.verdict, target.lookup, target.lookup_mode = "none", error_text(error, 200), mode
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
