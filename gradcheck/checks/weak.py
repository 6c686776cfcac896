"""Findings for a gradient that exists but cannot train well: zero, vanishing, exploding, or
rounding noise of a gradient that is mathematically zero.

Each points at the op where the gradient dies or explodes (dying.py), when one op explains it;
the tensor's creation line stays in the inventory (`created_at`) and is the location otherwise.

Rounding noise is decided once, before the vanishing threshold: a gradient whose norm is below
NOISE_FACTOR · ε · G (ε the layer's compute dtype's machine epsilon, G the largest gradient norm of
the same backward pass) and that no saturated op explains is what rounding leaves of an exact zero
(attention's key bias: softmax ignores a shift shared by all scores; a bias before a
normalisation). It gets its own status `noise` and info `rounding-noise-gradient`, whatever side
of the vanishing threshold its ratio falls on, so the verdict does not come and go between models.
"""

from __future__ import annotations

import numpy as np

from .. import codes
from ..layer.precision import epsilon
from ..report import finding, op_cause
from ..runtime import backend

# Rounding in a sum of n float32 terms of the largest gradient's size leaves about sqrt(n)·ε of
# it; 64·ε (7.6e-6 in float32) covers sums of a few thousand terms.
NOISE_FACTOR = 64.0
# Under half precision that would reach 0.5 (bfloat16): a gradient of 1e-4 of the largest one or
# more is never taken for noise.
_NOISE_CAP = 1e-4


def is_rounding_noise(probe, run, worst, source) -> bool:
    """Is the (finite, nonzero) gradient of `worst` rounding noise of an exact zero?"""
    if worst.norm is None or worst.norm == 0 or worst.status not in ("ok", "vanishing"):
        return False
    peak = _peak(probe, run)
    eps = epsilon(getattr(probe.layer, "compute_dtype", "float32"))
    if peak == 0 or worst.norm > min(NOISE_FACTOR * eps, _NOISE_CAP) * peak:
        return False
    return backend().culprit(probe, run, source, "vanishing") is None  # a saturated op: a real vanishing gradient


def noise_finding(name, worst, peak_ratio_text: str, created):
    return finding(
        codes.ROUNDING_NOISE_GRADIENT,
        name,
        f"`{name}`'s gradient is rounding noise{peak_ratio_text}: the math gives it no gradient at all, "
        "so it never learns. The usual case is a bias that a later step cancels: a shift before a softmax "
        "(attention's key bias) or before a normalisation (a bias before BatchNormalization in training). "
        "It is harmless; in your own layer, leave that bias out (use_bias=False).",
        created,
    )


def _peak(probe, run) -> float:
    """The largest gradient norm among the weights; 0 (no decision) with fewer than two weights.

    Inputs' gradients have their own scale (an input gradient of 1e5 says nothing about the
    weights' rounding), and a lone weight has nothing to be measured against."""
    weights = run.result["grads"][: len(probe.gradient_variables)]
    chosen = [g for g in weights if g is not None and np.isfinite(g).all() and np.any(g)]
    if len(chosen) < 2:
        return 0.0
    return max(float(np.linalg.norm(g)) for g in chosen)


def peak_ratio(probe, run, worst) -> str:
    peak = _peak(probe, run)
    return f" (its norm is {worst.norm / peak:.0e} of the largest gradient in the same pass)" if peak else ""


def weak_finding(probe, run, name, source, worst, where, subject, is_input, created, threshold: float):
    """zero-gradient, vanishing-gradient or exploding-gradient, located at the op that explains it."""
    op = backend().culprit(probe, run, source, worst.status)
    at_op = f" It {'dies' if worst.status != 'exploding' else 'explodes'} at {op.describe()}: {op.note}." if op else ""
    location = (op.location if op else None) or created
    shared = op_cause(op.op_type, op.location) if op else None  # every tensor that op starves shares it
    if worst.status == "zero":
        # The advice follows the op that stops it (a ReLU, a clip's bound, a closed gate) when one does.
        advice = (
            op.advice
            if op and op.advice
            else "A ReLU whose inputs are all negative (a large negative bias), a clip, a mask, or a "
            "multiplication by zero are the usual causes: check the values feeding them."
        )
        return finding(
            codes.ZERO_GRADIENT,
            name,
            f"{subject} is exactly zero on the probe batch{where}, so "
            f"{'layers before this one get no signal through it' if is_input else 'an optimizer step leaves it unchanged'}."
            f"{at_op} {advice}",
            location,
            cause=shared,
        )
    vanishing = worst.status == "vanishing"
    advice = (
        op.advice
        if op and op.advice
        else "A saturated sigmoid/tanh, a tiny scale or a long chain of small factors shrinks it: keep "
        "pre-activations near zero (normalise, rescale the initialiser) or use a non-saturating activation."
        if vanishing
        else "An exp, a large scale or a division by a small number blows it up: rescale the inputs or the "
        "initialiser, clip the argument, or normalise."
    )
    return finding(
        codes.VANISHING_GRADIENT if vanishing else codes.EXPLODING_GRADIENT,
        name,
        f"{subject} is {worst.status}{where}: RMS(gradient) / max(RMS(tensor), 1) = {worst.ratio:.1e}, "
        f"{'below' if vanishing else 'above'} the threshold {threshold:g} "
        f"({'--vanishing-threshold' if vanishing else '--exploding-threshold'}), so "
        f"{'one optimizer step cannot move it' if vanishing else 'one optimizer step moves it far beyond its own size'}."
        f"{at_op} {advice}",
        location,
        cause=shared,
    )
