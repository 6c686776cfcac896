"""Second derivatives of the probe loss: tape-of-tape Hessian-vector products against finite
differences of the tape gradient (the maths of second_order.py, which writes the findings).

For a direction v over every checked tensor at once (weights and float inputs, one unit vector):

    tape:    H·v = ∇_θ (∇_θ L · v), a second tape over the first one's gradient computation;
    numeric: (∇L(θ + h·v) − ∇L(θ − h·v)) / 2h, the tape *gradient* differenced.

The first-order check (numeric.py) has already shown ∇L right, so the numeric side is the true
Hessian times v, up to O(h²); the tape side is what differentiating the gradient gives — what a
gradient penalty, a physics-informed loss on ∂y/∂x, MAML or sharpness-aware training get. Each
tensor's block of the two vectors is compared entry by entry with the first-order tolerance table,
so an error confined to one entry is not diluted by the size of the tensor. One direction costs
two gradient passes and one double-backward pass for the whole layer, not per tensor.

The gradient penalty's mixed term, ∇_W ‖∂L/∂x‖² = 2·H_{W,x}·∂L/∂x, is the weight block of H·v
for v = (0 on the weights, ∂L/∂x on the inputs): it is checked as one more direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .steps import Settled, ladder

_NO_GRADIENT = "gradient registry has no entry for"


@dataclass
class Block:
    """One tensor's part of H·v, tape against finite differences."""

    tape: np.ndarray | None  # None: the tape's second gradient is None for this tensor
    numeric: np.ndarray
    error: float  # the worst entry's relative error (floored denominator, as in numeric.py)
    step: float
    verdict: str = "ok"  # ok | none | mismatch | kink | skipped
    worst: list = field(default_factory=list)  # (entry index, tape, numeric) of the worst entries


def compare(curvature, direction, step, tolerance, dtype, wanted) -> list:
    """Blocks of H·v (tape) against central differences of the tape gradient, one per source;
    `wanted` says which sources are compared (the penalty direction compares weights only).

    The first-order check's ladder (steps.ladder) applied to the gradient: a failing block is looked
    at again at smaller steps, then told apart as a kink (the gradient jumps within the step: ReLU,
    max) or a wrong second derivative. A block whose tape is None and that fails is `none`.
    """
    tape = curvature.hessian_vector(direction)

    def evaluate(h: float) -> list:
        return curvature.gradient([h * d for d in direction])

    first = (evaluate(step), evaluate(-step))
    numeric = [(p - m) / (2 * step) for p, m in zip(*first)]
    # The floor, as in the first-order check: atol of the largest block's norm, below which an entry
    # is rounding noise (a structural zero of the Hessian, differenced) and not held to rtol.
    scale = max([float(np.linalg.norm(n)) for n in numeric] + [float(np.linalg.norm(t)) for t in tape if t is not None])
    floor = tolerance.atol * scale
    settled = ladder(tape, evaluate, curvature.center, step, tolerance.rtol, floor, dtype, wanted, first)
    return [None if done is None else _block(t, done, tolerance.rtol) for t, done in zip(tape, settled)]


def _block(tape, settled: Settled, rtol: float) -> Block:
    errors = settled.errors
    order = np.argsort(-errors, axis=None)[:3]
    worst = [
        (
            tuple(int(i) for i in np.unravel_index(k, errors.shape)),
            0.0 if tape is None else float(tape.reshape(-1)[k]),
            float(settled.numeric.reshape(-1)[k]),
        )
        for k in order
        if errors.reshape(-1)[k] > rtol
    ]
    verdict = "none" if tape is None and settled.verdict == "mismatch" else settled.verdict
    return Block(tape, settled.numeric, settled.error, settled.step, verdict, worst)
