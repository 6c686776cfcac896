"""Finite-difference checks: does the gradient the tape gives agree with the loss it differentiates?

A wrong `tf.custom_gradient` or hand-written backward gives a gradient that exists and is finite,
and is wrong; only a comparison with finite differences shows it. For each trainable weight call()
reads and each float input, on a float64 twin of the layer (twin.py):

0. Joint screen (screening.py): every float64 tensor displaced at once along its own first two
   directions; when that one comparison agrees within the smallest tensor's allowance, their
   directional passes below are skipped (halves of a failing group are looked at again).
1. Directional check (every tensor, any size): the tape's r·J·u (the gradient of the probe loss
   dotted with a seeded random unit direction u) against the central difference
   (L(θ + h·u) − L(θ − h·u)) / 2h. Two forward passes per direction, whatever the tensor's size.
2. Per-entry check (tensors of at most SMALL_TENSOR entries, or all with --exhaustive): the same
   with u = each unit vector, which finds an error confined to a few entries and names them.
3. Only a comparison that fails is looked at again (the cheap check first, detail on failure):
   with steps 10x and 100x smaller, and with one-sided differences. A smooth function with a wrong
   gradient keeps the same disagreement as h shrinks, and its one-sided slopes agree with each
   other; at a kink (ReLU, abs, max within h of the point) the one-sided slopes differ by the jump
   in slope, so it is reported as a non-differentiable point (info), not a mismatch. A steep but
   smooth function gets smaller steps still, until the estimates settle (steps.py).

The forward pass is compiled once per training mode (tf.function); weights are perturbed by
assign and inputs passed as arguments, so nothing retraces. Layers with randomness get their
Keras SeedGenerator states (and any RNN state, state.py) restored before every pass, so both sides
see the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks.interface import CheckResult, Context
from ..errors import LayerRaised
from ..layer.source import error_text, user_frame_of
from ..options.settings import Options
from ..progress import Notify, Progress, silent
from ..runtime import backend
from .places import places as make_places
from .results import UNREAD_ROWS, ordered, record, results, select_targets, skipped_facts
from .rowscreen import compare_rows
from .screening import SCREEN_DIRECTIONS, along, draw_directions, first_step, screen
from .steps import Comparison, compare, relative_error
from .subbatch import Samples, leading_count, leading_samples, whole_batch
from .tolerances import DIRECTIONS, SMALL_TENSOR, tolerance_for

_REFINED_ENTRIES = 8  # failing entries looked at again with smaller steps (the worst first)


@dataclass(frozen=True)
class FiniteDifferences:
    """The tape's gradient of every weight and float input against finite differences."""

    eps: float | None
    rtol: float | None
    atol: float | None
    exhaustive: bool
    twin_wanted_later: bool = False  # the second order compares on the same float64 twin
    stage = "comparing gradients with finite differences"

    @classmethod
    def from_options(cls, options: Options) -> FiniteDifferences | None:
        if not options.numeric:
            return None
        return cls(options.eps, options.rtol, options.atol, options.exhaustive, options.order == 2)

    def run(self, context: Context) -> CheckResult:
        from ..layer.twin import release_twins

        probe, tensors, inputs = context.probe, context.tensors, context.inputs
        try:
            facts, input_facts, findings = check_numeric(probe, tensors, inputs, self, progress=context.progress)
        finally:
            if not self.twin_wanted_later:
                release_twins(probe)  # its memory goes to the checks after (the reload's copies)
        return CheckResult(facts, input_facts, findings)


def check_numeric(probe, tensors, inputs, options, *, progress: Notify = silent):
    """Return ({tensor: facts}, {input: facts}, findings) from the finite-difference comparison
    under `options` (its tolerances, steps and --exhaustive); `progress` hears the passes counted."""
    targets = select_targets(probe, tensors, inputs)
    if not targets:
        return {}, {}, []
    if not probe.traces:  # call() cannot be compiled; trace-failed says why
        reason = "call() could not be traced, so there is no compiled pass to compare"
        return skipped_facts(targets, reason, explained=True)
    from ..layer.twin import original_layer, shared_twin

    variables = [t.variable for t in targets if t.variable is not None]
    twin = shared_twin(probe, variables, leading=leading_count(probe))
    fewer = leading_samples(probe, twin)
    if fewer is not None:  # a large batch: its leading samples first (subbatch.py)
        try:
            _compare_all(probe, options, twin, targets, fewer, progress)
            return results(options, twin, targets, tensors)
        except LayerRaised:  # e.g. a batch size written into call(): the whole batch decides
            targets = select_targets(probe, tensors, inputs)
    try:
        _compare_all(probe, options, twin, targets, whole_batch(probe, twin), progress)
    except LayerRaised as raised:  # raised by the layer in a pass the probe did not make
        error = raised.error
        reason = f"{type(error).__name__}: {error_text(error, 200)}"
        targets = select_targets(probe, tensors, inputs)
        if twin.reason is None:  # the float64 twin raised: try the layer itself, in float32
            twin = original_layer(probe, variables, f"the layer raised in float64 ({reason})", user_frame_of(error))
            try:
                _compare_all(probe, options, twin, targets, whole_batch(probe, twin), progress)
            except LayerRaised as again:
                return _raised(probe, targets, again)
        else:
            return _raised(probe, targets, raised)
    return results(options, twin, targets, tensors)


def _raised(probe, targets, raised: LayerRaised):
    """Every target skipped because the layer raised in a pass the comparison made; a backward that
    raises is the backward-failed finding's to tell."""
    error = raised.error
    reason = f"the layer raised {type(error).__name__} while {raised.doing} ({error_text(error, 200).rstrip('.')})"
    explained = bool(probe.backward_failures) and "gradient" in raised.doing
    return skipped_facts(targets, reason, user_frame_of(error), explained=explained)


def _compare_all(probe, options, twin, targets, samples: Samples, notify: Notify) -> None:
    progress = Progress(_total_steps(probe, options, samples, targets), notify)
    try:
        seen: list = []
        for trace in probe.distinct_traces():
            forward = backend().forward(probe, twin, trace.mode, targets, samples)
            loss0, grads = forward.gradients([np.array(x) for x in samples.inputs])
            # A layer that computes the same thing in both modes (most do) is checked once: the same
            # function and the same gradients give the same comparisons.
            if any(_same(loss0, grads, other) for other in seen):
                progress.skip(progress.total // len(probe.distinct_traces()))
                continue
            seen.append((loss0, grads))
            _check_mode(probe, options, twin, trace.mode, targets, progress, forward, loss0, grads, samples)
    finally:
        progress.close()
        if twin.layer is probe.layer:
            twin.reset_seeds()  # the user's layer: its RNG and statistics as they were


def _size(samples, target) -> int:
    if target.variable is not None:
        return int(np.prod(target.variable.shape))
    return int(samples.inputs[target.input_index].size)


def _total_steps(probe, options, samples, targets) -> int:
    per_mode = SCREEN_DIRECTIONS  # the joint screen's, counted whether or not it runs
    for target in targets:
        size = _size(samples, target)
        per_mode += DIRECTIONS + (size if size <= SMALL_TENSOR or options.exhaustive else 0)
    return per_mode * len(probe.distinct_traces())


def _same(loss0, grads, other) -> bool:
    other_loss, other_grads = other
    return loss0 == other_loss and all(
        (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
        for a, b in zip(grads, other_grads)
    )


def _check_mode(probe, options, twin, mode, targets, progress, forward, loss0, grads, samples) -> None:
    base = [np.array(x) for x in samples.inputs]
    if not np.isfinite(loss0) or forward.loss(base) != forward.loss(base):
        # NaN output, or randomness outside Keras's seed generators: this mode cannot be compared.
        why = "its loss is not finite" if not np.isfinite(loss0) else "two calls with the same input differ"
        for target in targets:
            target.skip_reasons.append(f"with training={mode.capitalize()}, {why}" if mode != "n/a" else why)
        return
    # With a stop_gradient in the layer, what the tape gives (what fit() uses) beside the derivative
    # the comparison is made with: a straight-through estimator shows as the difference.
    taped = forward.gradients(base, tape=True)[1] if forward.stops else grads
    finite = [g for g in grads if g is not None and np.all(np.isfinite(g))]
    scale = max((float(np.linalg.norm(g)) for g in finite), default=0.0)  # the largest gradient norm
    # Each tensor's DIRECTIONS unit directions, drawn once for the screen and the per-tensor checks.
    directions = draw_directions(probe.seed, grads, DIRECTIONS, DIRECTIONS)
    float64 = tolerance_for(options, "float64")  # one joint look first: it may clear them all (screening.py)
    spots = make_places(forward, twin, ordered(targets), base)  # each target's values, read once (places.py)
    cleared = screen(
        forward,
        twin,
        ordered(targets),
        grads,
        base,
        steps=lambda t: first_step(float64.eps, spots[id(t)].value()),
        # An embedding's table is checked row by row (rowscreen.py): a random direction over all
        # its rows would dilute an error in one of them below the tolerance.
        eligible=lambda t: forward.low_precision(t) is None and spots[id(t)].rows is None,
        tolerance=float64,
        floor=float64.atol * scale,
        seed=probe.seed,
        per_tensor=DIRECTIONS,
        directions=directions,
        advance=progress.advance,
        center=loss0,
        places=spots,
    )
    for index, (target, grad, drawn, tape_grad) in enumerate(zip(ordered(targets), grads, directions, taped)):
        if grad is None or not np.all(np.isfinite(grad)):
            # gradients.py reports a None or NaN gradient
            target.skip_reasons.append("its gradient is None" if grad is None else "its gradient is not finite")
            continue
        dtype = twin.dtype
        low = forward.low_precision(target) if dtype == "float64" else None
        if low is not None:
            dtype, target.fallback_op = low.dtype, target.fallback_op or low
        if dtype != "float64":
            target.dtype = dtype
        tolerance = tolerance_for(options, dtype)
        place = spots[id(target)]
        if place.rows is not None:  # an embedding's table: the looked-up rows alone (places.py)
            target.rows = (int(place.rows.size), place.total_rows)
        evaluate = _DisplacedLoss(forward, place, base)
        step = first_step(tolerance.eps, place.value())
        floor = tolerance.atol * scale
        comparisons = []
        # The directions its comparisons were made along: the screen's, when it cleared the tensor
        # (their comparisons stand in for its own), else all of its own.
        used = drawn[:SCREEN_DIRECTIONS] if id(target) in cleared else drawn
        try:
            settled = id(target) in cleared  # no directions of its own needed
            if place.rows is not None and dtype == "float64":
                found, settled = compare_rows(
                    grad, evaluate, step, loss0, tolerance, floor, dtype, probe.seed, index, place.row_label
                )
                comparisons += found
            if settled:
                progress.advance(len(drawn))
            else:
                for direction in drawn:
                    comparisons.append(
                        compare(
                            "a random direction",
                            along(grad, direction),
                            evaluate,
                            direction,
                            step,
                            loss0,
                            tolerance,
                            floor,
                            dtype,
                        )
                    )
                    progress.advance()
            comparisons += cleared.get(id(target), [])
            if grad.size <= SMALL_TENSOR or options.exhaustive:
                comparisons += _entries(grad, place, evaluate, step, loss0, tolerance, floor, dtype, progress)
        finally:
            evaluate.restore()  # the weight exactly as it was, even when the layer raised
        unread = _unread_rows(forward, target, step, tolerance.rtol, floor)
        comparisons += [unread] if unread is not None else []
        mismatched = any(c.verdict == "mismatch" for c in comparisons)
        numpy_line = forward.no_gradient_by_design(target) if mismatched else None
        if numpy_line is not None:
            # A tf.numpy_function moves the loss, finite differences see it, and it has no gradient
            # at all: the disagreement says nothing about the gradient (its cut is reported).
            where = f" at {numpy_line}" if numpy_line else ""
            target.skip_reasons.append(f"its path runs through tf.numpy_function{where}, which has no gradient")
            target.skip_location = target.skip_location or numpy_line or None
            continue
        # A gradient on rows the loss does not read is wrong whatever the layer meant by it.
        stray = unread is not None and unread.verdict != "ok"
        surrogate = None if stray else _surrogate(forward, target, comparisons, used, tape_grad, grad, tolerance.rtol)
        if surrogate is not None:
            target.surrogate = surrogate
            target.checked = True
            continue
        if mismatched:
            target.gradient_location = target.gradient_location or forward.custom_gradient_line(target)
            target.custom_gradients = target.custom_gradients or forward.custom_gradients(target)
        record(target, comparisons, mode, dtype, step, probe)


def _surrogate(forward, target, comparisons, directions, tape_grad, grad, rtol: float) -> str | None:
    """The line of a straight-through estimator on the target's path, or None.

    A surrogate gradient stands in for a derivative that is zero almost everywhere (round, floor,
    sign, argmax, a cast): finite differences see a flat loss, the tape a gradient the layer chose.
    Written as a custom gradient, the comparison disagrees with numeric estimates of zero; written
    as `x + stop_gradient(f(x) - x)`, the derivative (stops passed through) is zero while the tape's
    is not. Either way the gradient is a deliberate stand-in, not a wrong one.
    """
    mismatches = [c for c in comparisons if c.verdict == "mismatch"]
    if mismatches and all(c.verdict in ("mismatch", "kink", "ok") for c in comparisons):
        # Entries judged without a look of their own (past the refined few) carry no estimate.
        flat = all(abs(c.numeric) <= rtol * abs(c.tape) for c in mismatches if np.isfinite(c.numeric))
        line = forward.custom_gradient_line(target) if flat else None
        if line is not None:
            return line
    if tape_grad is None or tape_grad is grad or any(c.verdict != "ok" for c in comparisons):
        return None
    line = forward.stop_line(target)
    if line is None:
        return None
    for direction in directions:
        derivative, taken = along(grad, direction), along(tape_grad, direction)
        if abs(taken) > 0 and abs(derivative) <= rtol * abs(taken):
            return line
    return None


class _DisplacedLoss:
    """L(θ + d) for a displacement d of one target (places.py): assigned for a weight, passed for an input."""

    def __init__(self, forward, place, base):
        self.forward, self.place, self.base = forward, place, base
        self.tensors = [backend().constant(x) for x in base]  # unchanged inputs, converted once

    def __call__(self, displacement) -> float:
        xs = list(self.base)
        self.place.move(xs, displacement)
        if self.place.variable is not None:
            return self.forward.loss(self.base, self.tensors)
        return self.forward.loss(xs)

    def restore(self) -> None:
        self.place.restore()


def _unread_rows(forward, target, step: float, rtol: float, floor: float) -> Comparison | None:
    """The tape's gradient on the rows of an embedding's table the samples do not look up, against
    the zero the loss gives them (it does not read them); None for a tensor compared whole."""
    norm = forward.unread(target)
    if norm is None:
        return None
    error = relative_error(norm, 0.0, rtol, floor) if np.isfinite(norm) else float("inf")
    return Comparison(UNREAD_ROWS, norm, 0.0, error, step, "ok" if error <= rtol else "mismatch")


def _entries(grad, place, evaluate, step, loss0, tolerance, floor, dtype, progress):
    """The per-entry check; only failing entries are looked at again, the worst first."""
    rough = []
    flat = grad.reshape(-1)
    for index in range(flat.size):
        unit = np.zeros(flat.size)
        unit[index] = 1.0
        unit = unit.reshape(grad.shape)
        numeric = (evaluate(step * unit) - evaluate(-step * unit)) / (2 * step)
        rough.append((index, unit, float(flat[index]), numeric))
        progress.advance()
    comparisons = []
    failing = []
    for index, unit, tape, numeric in rough:
        label = f"entry {place.entry(np.unravel_index(index, grad.shape))}" if grad.ndim else "the entry"
        error = relative_error(tape, numeric, tolerance.rtol, floor)
        if error <= tolerance.rtol:
            comparisons.append(Comparison(label, tape, numeric, error, step))
        else:
            failing.append((error, label, unit, tape))
    failing.sort(key=lambda item: -item[0])
    for rank, (error, label, unit, tape) in enumerate(failing):
        if rank < _REFINED_ENTRIES:
            comparisons.append(compare(label, tape, evaluate, unit, step, loss0, tolerance, floor, dtype))
        else:  # judged like the worst refined one: the same cause, most likely
            verdict = next((c.verdict for c in reversed(comparisons) if c.verdict != "ok"), "mismatch")
            comparisons.append(Comparison(label, tape, float("nan"), error, step, verdict))
    return comparisons
