"""One finite-difference comparison, with a step that adapts to the function's own scale.

The comparison is of a derivative along a direction v: the tape's value T against the central
difference (Q(θ + h·v) − Q(θ − h·v)) / 2h of a quantity Q. For the first-order check Q is the
probe loss (a number, T = r·J·u); for the second-order check Q is the tape gradient, in blocks
(one per tensor, T = H·v): the same ladder, applied to every entry of every block at once, as
torch's gradgradcheck and JAX's check_grads reuse their first-order check on the gradient.

The first step is `eps · max(RMS(θ), 1)`: right for a function that varies on the scale of its
argument. A steep but correct function varies on a much smaller scale (a layer normalisation over
nearly constant rows moves by its whole range within a change of the rows' standard deviation), and
a central difference across it is no derivative. So a block that fails is looked at again with
steps 10x and 100x smaller; when its disagreement falls like h² between them (a smooth function,
sampled too coarsely), further down to 10,000x smaller while the estimates still move: a fixed
budget of 2 evaluations per step, spent only on failures. Then, per block:
- an estimate within tolerance of the tape at any step: ok (the first step was too coarse);
- one-sided slopes that differ as much as the disagreement: a kink (ReLU, abs, max), info;
- successive estimates that agree with each other but not with the tape: the difference
  quotient has converged to a derivative the tape does not give, a wrong derivative (mismatch);
- estimates that never settle within the budget: the step cannot resolve the function here, and
  the comparison says nothing either way (`skipped`), never a mismatch.
A true relative error of 1e-3 on a smooth function converges at the first steps and is caught.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Steps tried after a failure, as divisors of the first step. The first ones always; the rest only
# while successive estimates disagree. Below h/10 float32 rounding dominates the estimate.
SMALLER_STEPS = {"float64": (10.0, 100.0), "float32": (10.0,), "float16": (), "bfloat16": ()}
_MORE = {"float64": (1e3, 1e4), "float32": (), "float16": (), "bfloat16": ()}


@dataclass
class Comparison:
    label: str  # "a random direction" or "entry [2, 1]"
    tape: float
    numeric: float
    error: float  # |tape − numeric| / max(|tape|, |numeric|, floor / rtol)
    step: float
    verdict: str = "ok"  # statuses.COMPARISONS: ok | mismatch | kink | skipped


@dataclass
class Settled:
    """Where the ladder left one block: its last estimate, the per-entry errors there, the step."""

    numeric: np.ndarray
    errors: np.ndarray
    step: float
    verdict: str  # statuses.COMPARISONS

    @property
    def error(self) -> float:
        return float(self.errors.max()) if self.errors.size else 0.0


def relative_error(tape: float, numeric: float, rtol: float, floor: float) -> float:
    """Relative error with its denominator floored, so error <= rtol exactly when they agree."""
    denominator = max(abs(tape), abs(numeric), floor / rtol, 1e-300)
    return abs(tape - numeric) / denominator


def entry_errors(tape, numeric: np.ndarray, rtol: float, floor: float) -> np.ndarray:
    """relative_error entry by entry (a None tape counts as zeros: its finding says None)."""
    tape = np.zeros_like(numeric) if tape is None else np.asarray(tape, "float64")
    denominator = np.maximum(np.maximum(np.abs(tape), np.abs(numeric)), max(floor / rtol, 1e-300))
    return np.abs(tape - numeric) / denominator


def ladder(
    tapes: Sequence,
    evaluate: Callable[[float], list],
    center: list,
    step: float,
    rtol: float,
    floor: float,
    dtype: str,
    wanted: Sequence[bool] | None = None,
    first: tuple[list, list] | None = None,
) -> list[Settled | None]:
    """Compare each block of `tapes` with central differences of `evaluate`, stepping down on failure.

    Args:
        tapes: the tape's derivative along v, one array (or None) per block.
        evaluate: h -> [Q(θ + h·v) per block]; h may be negative.
        center: Q(θ) per block (for the one-sided slopes of the kink test).
        step: the first step h.
        rtol, floor: the relative tolerance and the absolute floor of the allowed difference.
        dtype: the dtype the arithmetic runs in (how far the step may shrink).
        wanted: which blocks to compare (None: all); the others come back None.
        first: (evaluate(step), evaluate(-step)) when the caller made them already.

    Returns:
        A Settled per wanted block: ok, mismatch, kink or skipped (see the module's docstring).
    """
    wanted = [True] * len(tapes) if wanted is None else list(wanted)
    plus, minus = first if first is not None else (evaluate(step), evaluate(-step))
    history: dict[int, list[Settled]] = {}
    for index, keep in enumerate(wanted):
        if keep:
            numeric = (plus[index] - minus[index]) / (2 * step)
            history[index] = [_settled(tapes[index], numeric, step, rtol, floor)]
    last = {index: (plus, minus, step) for index in history}  # the evaluations each block ended on

    def look_again(small: float, blocks: list[int]) -> None:
        ahead, behind = evaluate(small), evaluate(-small)
        for index in blocks:
            history[index].append(
                _settled(tapes[index], (ahead[index] - behind[index]) / (2 * small), small, rtol, floor)
            )
            last[index] = (ahead, behind, small)

    failing = [index for index, tried in history.items() if tried[-1].verdict != "ok"]
    for factor in SMALLER_STEPS.get(dtype, ()):
        if not failing:
            break
        look_again(step / factor, failing)
        failing = [index for index in failing if history[index][-1].verdict != "ok"]
    converging = [index for index in failing if _converging([s.error for s in history[index]])]
    # A smooth function's central difference approaches the tape like h²: the disagreement fell
    # about 100x for a 10x smaller step, so the step is still too coarse for it. Go on shrinking
    # while the estimates still move.
    moving = list(converging)
    for factor in _MORE.get(dtype, ()):
        if not moving:
            break
        look_again(step / factor, moving)
        moving = [
            index
            for index in moving
            if history[index][-1].verdict != "ok" and not _settled_estimates(history[index], rtol, floor)
        ]
    result: list[Settled | None] = [None] * len(tapes)
    for index, tried in history.items():
        final = tried[-1]
        if final.verdict != "ok":
            if index in converging and not _settled_estimates(tried, rtol, floor):
                final.verdict = "skipped"
            else:
                ahead, behind, small = last[index]
                jump = np.abs((ahead[index] - center[index]) - (center[index] - behind[index])) / small
                tape = np.zeros_like(final.numeric) if tapes[index] is None else np.asarray(tapes[index], "float64")
                apart = np.abs(tape - final.numeric)
                failing_entries = final.errors > rtol
                kink = failing_entries.any() and np.all(jump[failing_entries] >= apart[failing_entries])
                final.verdict = "kink" if kink else "mismatch"
        result[index] = final
    return result


def compare(label, tape, evaluate, direction, step, loss0, tolerance, floor, dtype) -> Comparison:
    """Compare the tape's directional derivative `tape` with central differences of the loss
    `evaluate(displacement)` along `direction`: the ladder on one block of one number."""
    settled = ladder(
        [np.float64(tape)],
        lambda h: [np.float64(evaluate(h * direction))],
        [np.float64(loss0)],
        step,
        tolerance.rtol,
        floor,
        dtype,
    )[0]
    assert settled is not None  # one wanted block
    return Comparison(label, tape, float(settled.numeric), settled.error, settled.step, settled.verdict)


def _settled(tape, numeric, step: float, rtol: float, floor: float) -> Settled:
    numeric = np.asarray(numeric, "float64")
    errors = entry_errors(tape, numeric, rtol, floor)
    return Settled(numeric, errors, step, "ok" if (errors.max() if errors.size else 0.0) <= rtol else "mismatch")


def _converging(errors) -> bool:
    """The last 10x smaller step cut the disagreement by far more than 10x (h² convergence); a
    wrong derivative keeps it, a kink straddled by fewer entries cuts it about 10x."""
    return len(errors) >= 2 and errors[-1] < errors[-2] / 30


def _settled_estimates(tried: list[Settled], rtol: float, floor: float) -> bool:
    """The last two estimates agree with each other as closely as a passing check must."""
    if len(tried) < 2:
        return False
    return bool(entry_errors(tried[-1].numeric, tried[-2].numeric, rtol, floor).max() <= rtol)
