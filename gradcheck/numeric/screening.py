"""A joint screen before the per-tensor finite-difference checks: clear many tensors in 4 passes.

The per-tensor directional check (numeric.py) costs 2 forward passes per direction and tensor: on
a layer of 20 tensors, 120 full-batch float64 passes. Most layers are right, so most of that work
confirms what one joint look would. The screen perturbs every eligible tensor at once, each along
the very direction (and with the very step) its own check would use first, and compares the one
central difference with the sum of the tape's directional derivatives:

    N = (L(θ + d) − L(θ − d)) / 2,  d_i = h_i·u_i,      T = Σ_i h_i·(g_i · u_i).

If tensor i's gradient is off by e_i, N − T = Σ_i h_i·(e_i · u_i) (plus rounding and truncation,
which a float64 step keeps ~1e-10 of T). Its own check would fail when h_i·|e_i · u_i| exceeds
A_i = h_i·max(rtol·|g_i · u_i|, floor). The screen passes only when |N − T| ≤ min_i A_i: the
smallest tensor's allowance, not the sum's, so an error in one small bias is not diluted by big
kernels. Unless the errors of several tensors cancel (independent random signs), whatever would
fail a tensor's own check on these directions fails the screen.

The screen only ever clears; it never reports. A look that fails with one-sided differences that
bend as much as it disagrees, L(θ + d) − 2·L(θ) + L(θ − d) at least N − T (the ladder's kink test,
steps.py), is made again with steps 10x and 100x smaller before it counts as failed: a wide layer
with ReLUs (a transformer's feed-forward, a ResNet block) has, among its hundreds of thousands of
pre-activations, some within the first step of their kink, and a central difference across a kink
is no derivative; at a smaller step far fewer are straddled. A wrong gradient on a smooth loss
fails at once and for good (its share of N − T, like the allowance, is proportional to the step,
and the loss barely bends), so a look at a group holding it costs no more passes than before.
When the group still fails (a wrong gradient, a steep function, a stop_gradient path) the screen
halves it and looks again, clearing the halves that agree (_bisect), and the tensors it could not
clear go through the per-tensor checks as before, which find and name the culprit with the same
directions and messages. Tensors the screen cannot vouch for are left out of it: a float32 twin,
a tensor whose path computes in lower precision, a gradient that is None or not finite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..layer.sampling import DIRECTION_STREAM, generator
from .places import places as make_places
from .steps import SMALLER_STEPS, Comparison, relative_error

SCREEN_DIRECTIONS = 2  # joint directions: the first two of each tensor's own three
_MIN_TENSORS = 2  # with one tensor the screen is its own check
_AGREED, _BENT, _FAILED = "agreed", "bent", "failed"  # how a look ended


# Tensors holding more numbers than this in all draw each direction from a stream of its own, when
# it is first used: the screen uses two of each tensor's three, and drawing the third of every
# tensor of a 7M-parameter block (and holding it) was a second's numpy work for nothing. Such a
# direction is a random vertex of the hypercube, scaled to unit length, rather than a Gaussian one:
# an error e of the gradient shows as e·u with the same spread, ‖e‖/sqrt(n), for either, and
# random signs cost a fifth of the Gaussian draws (0.7 s for the decoder's two directions).
_DRAWN_WHEN_USED = 1 << 20
# A directional derivative g·u of a tensor larger than this is taken as a dot product, without the
# temporary g*u; a smaller tensor's is summed as it always was, to the last bit.
_DOT_ABOVE = 1 << 20


def along(grad: np.ndarray, direction: np.ndarray) -> float:
    """The directional derivative g·u."""
    if grad.size <= _DOT_ABOVE:
        return float(np.sum(grad * direction))
    return float(np.dot(grad.reshape(-1), direction.reshape(-1)))


def draw_directions(seed: int, grads: Sequence[np.ndarray | None], per_tensor: int, kept: int) -> list:
    """The unit directions numeric.py draws for each tensor, in its order (the first `kept` of
    `per_tensor`); none for a gradient it skips (None or not finite), exactly as it skips.

    One stream serves every tensor in turn; on a layer whose tensors hold more than
    _DRAWN_WHEN_USED numbers, each direction has a stream of its own and is drawn when used."""
    usable = [grad if grad is not None and np.all(np.isfinite(grad)) else None for grad in grads]
    if sum(grad.size for grad in usable if grad is not None) > _DRAWN_WHEN_USED:
        return [[] if grad is None else _Drawn(seed, index, grad.shape, kept) for index, grad in enumerate(usable)]
    rng = generator(seed, DIRECTION_STREAM)
    directions: list = []
    for grad in usable:
        if grad is None:
            directions.append([])
            continue
        drawn = []
        for _ in range(per_tensor):
            direction = rng.standard_normal(grad.shape)
            direction /= max(float(np.linalg.norm(direction)), 1e-300)
            drawn.append(direction)
        directions.append(drawn[:kept])
    return directions


class _Drawn(Sequence):
    """One tensor's unit directions of random signs, the k-th drawn from stream (seed,
    DIRECTION_STREAM, tensor, k) the first time it is asked for."""

    def __init__(self, seed: int, tensor: int, shape: tuple, total: int) -> None:
        self.seed, self.tensor, self.shape, self.total = seed, tensor, shape, total
        self.drawn: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self.total))]
        if not -self.total <= k < self.total:
            raise IndexError(k)
        k %= self.total
        if k not in self.drawn:
            rng = np.random.default_rng([self.seed, DIRECTION_STREAM, self.tensor, k])
            length = float(np.sqrt(max(int(np.prod(self.shape)), 1)))
            self.drawn[k] = np.where(rng.random(self.shape, dtype=np.float32) < 0.5, -1.0, 1.0) / length
        return self.drawn[k]


class _Joint:
    """L(θ + s·d) with every screened tensor displaced at once; restore() puts them back."""

    def __init__(self, forward, places: dict, base) -> None:
        self.forward, self.places, self.base = forward, places, base

    def __call__(self, displacements: dict[int, np.ndarray], targets, sign: float) -> float:
        xs = list(self.base)
        moved = {id(t) for t in targets}
        for key, place in self.places.items():
            if key not in moved:  # left displaced by a look at a larger group
                place.restore()
        for target in targets:
            self.places[id(target)].move(xs, displacements[id(target)], sign)
        return self.forward.loss(xs)

    def restore(self) -> None:
        for place in self.places.values():
            place.restore()


def screen(
    forward,
    twin,
    targets,
    grads,
    base,
    steps: Callable,
    eligible: Callable,
    tolerance,
    floor: float,
    seed: int,
    per_tensor: int,
    directions: list[list] | None = None,
    advance: Callable[[int], None] = lambda steps: None,
    center: float | None = None,
    places: dict | None = None,
) -> dict[int, list[Comparison]]:
    """{id(target): its comparisons} for the tensors the joint screen clears ({} when none).

    `targets` and `grads` are in the gradient function's order; `steps(target)` is the first step
    numeric.py would use for it, `eligible(target)` whether its check runs in float64.
    `directions`: draw_directions(seed, grads, per_tensor, ...) when the caller drew them already.
    `advance(steps)` counts SCREEN_DIRECTIONS steps in all, whatever the screen does: one as each
    direction of the look at every tensor agrees (on a big layer that look is most of the check's
    time, and a progress bar should move during it), the rest when the screen ends.
    `center`: L(θ), for the kink test that decides whether a failed look is made again with
    smaller steps (None: never). `places`: {id(target): Place} (places.py), where each tensor is
    moved; made here when not given.
    """
    counted = [0]

    def agreed() -> None:  # a direction agreed; at a smaller step the same direction may agree again
        if counted[0] < SCREEN_DIRECTIONS:
            counted[0] += 1
            advance(1)

    try:
        if twin.dtype != "float64":  # a float32 comparison sees gross errors only: each tensor its own
            return {}
        if directions is None:
            directions = draw_directions(seed, grads, per_tensor, SCREEN_DIRECTIONS)
        directions = [drawn[:SCREEN_DIRECTIONS] for drawn in directions]
        chosen = [(t, g, d) for t, g, d in zip(targets, grads, directions) if d and eligible(t)]
        if len(chosen) < _MIN_TENSORS:
            return {}
        screened = [t for t, _, _ in chosen]
        if places is None:
            places = make_places(forward, twin, screened, base)
        look = _Look(
            _Joint(forward, {id(t): places[id(t)] for t in screened}, base),
            {id(t): steps(t) for t, _, _ in chosen},
            tolerance.rtol,
            floor,
            center,
        )
        cleared: dict[int, list[Comparison]] = {}
        try:
            if not look(chosen, cleared, agreed):
                _bisect(look, chosen, cleared)
        finally:
            look.joint.restore()
        return cleared
    finally:
        advance(SCREEN_DIRECTIONS - counted[0])


def _bisect(look, group, cleared) -> None:
    """Narrow a failing group down to its culprit: halves of two or more tensors are looked at
    again (4 passes each when they agree) and a passing half is cleared. When the first half
    agrees, the second holds what failed the group: it is halved at once rather than looked at
    as a whole, a look that could only fail. A lone tensor is left to its own check, and so is a
    group whose halves both fail: several culprits, or a cause shared by all (a steep function),
    where halving further would cost more than it saves."""
    first, second = group[: len(group) // 2], group[len(group) // 2 :]
    if len(first) > 1 and look(first, cleared):
        if len(second) > 1:
            _bisect(look, second, cleared)
        return
    failed = [first] if len(first) > 1 else []  # looked at, and failed
    if len(second) > 1 and not look(second, cleared):
        failed.append(second)
    if len(failed) == 1:
        _bisect(look, failed[0], cleared)


class _Look:
    """One joint comparison of a group of tensors along their first SCREEN_DIRECTIONS directions."""

    def __init__(self, joint: _Joint, step: dict, rtol: float, floor: float, center: float | None) -> None:
        self.joint, self.step, self.rtol, self.floor, self.center = joint, step, rtol, floor, center

    def __call__(self, group, cleared: dict, agreed: Callable[[], None] = lambda: None) -> bool:
        """True (and each tensor's comparisons put in `cleared`) when the group agrees at the first
        steps, or at a smaller one after a look that failed like a kink; `agreed()` is called as
        each direction does."""
        for factor in (1.0, *SMALLER_STEPS["float64"]):
            verdict = self.at(group, cleared, agreed, factor)
            if verdict != _BENT:
                return verdict == _AGREED
        return False

    def at(self, group, cleared: dict, agreed: Callable[[], None], factor: float) -> str:
        """The look with every tensor's step divided by `factor`: _AGREED, _BENT (failed, with
        one-sided differences bending at least as much as it disagrees) or _FAILED."""
        step = {key: value / factor for key, value in self.step.items()}
        rtol, floor = self.rtol, self.floor
        tensors = [t for t, _, _ in group]
        found: dict[int, list[Comparison]] = {id(t): [] for t in tensors}
        for k in range(SCREEN_DIRECTIONS):
            tapes = {id(t): along(g, d[k]) for t, g, d in group}
            displacements = {id(t): step[id(t)] * d[k] for t, _, d in group}
            total = sum(step[key] * tapes[key] for key in tapes)
            ahead, behind = self.joint(displacements, tensors, 1.0), self.joint(displacements, tensors, -1.0)
            numeric = (ahead - behind) / 2
            allowance = min(step[key] * max(rtol * abs(tapes[key]), floor) for key in tapes)
            if not np.isfinite(numeric):
                return _FAILED
            if abs(numeric - total) > allowance:
                bend = abs((ahead - self.center) - (self.center - behind)) if self.center is not None else 0.0
                return _BENT if bend >= abs(numeric - total) else _FAILED
            for key, tape in tapes.items():
                # Were the whole gap this tensor's, its own estimate would be this: an upper bound
                # on its error, within its tolerance since the gap is within its allowance.
                estimate = tape + (numeric - total) / step[key]
                found[key].append(
                    Comparison(
                        "a random direction", tape, estimate, relative_error(tape, estimate, rtol, floor), step[key]
                    )
                )
            agreed()
        cleared.update(found)
        return _AGREED


def first_step(eps: float, theta: np.ndarray) -> float:
    """The first finite-difference step for a tensor of values `theta`: eps · max(RMS(θ), 1)."""
    return eps * max(float(np.sqrt(np.mean(theta**2))) if theta.size else 0.0, 1.0)
