"""One finite-difference comparison, with a step that adapts to the function's own scale.

The first step is `eps · max(RMS(θ), 1)` (numeric.py): right for a function that varies on the
scale of its argument. A steep but correct function varies on a much smaller scale — a layer
normalisation over nearly constant rows moves by its whole range within a change of the rows'
standard deviation, far below that step — and a central difference across it is no derivative.
So a comparison that fails is repeated with steps 10x and 100x smaller (as before); when the
disagreement falls like h² between them (a smooth function, sampled too coarsely), further down to
10,000x smaller while the estimates still move: a fixed budget of 2 passes per step, spent only on
failures. Then:
- an estimate within tolerance of the tape at any step: ok (the first step was too coarse);
- one-sided slopes that differ as much as the disagreement: a kink (ReLU, abs, max), info;
- successive estimates that agree with each other but not with the tape: the difference
  quotient has converged to a derivative the tape does not give, a wrong gradient (mismatch);
- estimates that never settle within the budget: the step cannot resolve the function here, and
  the comparison says nothing either way (`skipped`), never a mismatch.
A true relative error of 1e-3 on a smooth function converges at the first steps and is caught.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    verdict: str = "ok"  # ok | mismatch | kink | skipped (the step could not resolve the function)


def relative_error(tape: float, numeric: float, rtol: float, floor: float) -> float:
    """Relative error with its denominator floored, so error <= rtol exactly when they agree."""
    denominator = max(abs(tape), abs(numeric), floor / rtol, 1e-300)
    return abs(tape - numeric) / denominator


def compare(label, tape, evaluate, direction, step, loss0, tolerance, floor, dtype) -> Comparison:
    """Compare the tape's directional derivative `tape` with central differences of `evaluate`."""
    rtol = tolerance.rtol
    plus, minus = evaluate(step * direction), evaluate(-step * direction)
    numeric = (plus - minus) / (2 * step)
    error = relative_error(tape, numeric, rtol, floor)
    if error <= rtol:
        return Comparison(label, tape, numeric, error, step)
    estimates, errors, small = [numeric], [error], step

    def look_again(factor: float) -> bool:
        """One more central difference at step / factor; True when it agrees with the tape."""
        nonlocal small, plus, minus
        small = step / factor
        plus, minus = evaluate(small * direction), evaluate(-small * direction)
        estimates.append((plus - minus) / (2 * small))
        errors.append(relative_error(tape, estimates[-1], rtol, floor))
        return errors[-1] <= rtol

    for factor in SMALLER_STEPS.get(dtype, ()):
        if look_again(factor):
            return Comparison(label, tape, estimates[-1], errors[-1], small)
    if _converging(errors):
        # A smooth function's central difference approaches the tape like h²: the disagreement
        # fell about 100x for a 10x smaller step, so the step is still too coarse for this
        # function. Go on shrinking while the estimates still move.
        for factor in _MORE.get(dtype, ()):
            if look_again(factor):
                return Comparison(label, tape, estimates[-1], errors[-1], small)
            if _settled(estimates, rtol, floor):
                break
        if not _settled(estimates, rtol, floor):
            return Comparison(label, tape, estimates[-1], errors[-1], small, "skipped")
    if _is_kink(tape, estimates[-1], plus, minus, loss0, small):
        return Comparison(label, tape, estimates[-1], errors[-1], small, "kink")
    return Comparison(label, tape, estimates[-1], errors[-1], small, "mismatch")


def _converging(errors) -> bool:
    """The last 10x smaller step cut the disagreement by far more than 10x (h² convergence); a
    wrong gradient keeps it, a kink straddled by fewer entries cuts it about 10x."""
    return len(errors) >= 2 and errors[-1] < errors[-2] / 30


def _is_kink(tape, numeric, plus, minus, loss0, step) -> bool:
    """One-sided slopes tell a kink from a wrong gradient: for a smooth function they differ by
    h·|f''| (tiny); at a kink by the jump in slope, at least the disagreement itself."""
    jump = abs((plus - loss0) - (loss0 - minus)) / step
    return jump >= abs(tape - numeric)


def _settled(estimates, rtol: float, floor: float) -> bool:
    """The last two estimates agree with each other as closely as a passing check must."""
    return len(estimates) >= 2 and relative_error(estimates[-1], estimates[-2], rtol, floor) <= rtol
