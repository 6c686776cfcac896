"""An embedding's looked-up rows, each moved along a unit direction of its own: one joint look
clears them all, and halving the rows finds one whose gradient is wrong.

A random unit direction over an embedding's looked-up rows (places.py) spreads its length over
every row: an error confined to one row of 512 numbers among 1,011 such rows moves the directional
derivative by 1e-3 / 32 of that row's share, below the float64 tolerance, and three such
directions pass a table whose gradient is 1e-3 too large on one row. A wrong gradient for one
token is how an embedding's gradient goes wrong (a custom gradient per id, a mask off by one), so
the rows are checked as the joint screen (screening.py) checks tensors: every row r is moved by
h·u_r at once, u_r a unit direction of its own, and the one central difference N is compared with
the tape's T = Σ_r h·(g_r · u_r). A row whose gradient is off by e_r adds h·(e_r · u_r) to N − T,
its full share, and the look agrees only when |N − T| stays within the smallest row's allowance
h·max(rtol·|g_r · u_r|, floor), as each row's own check would require. Two directions; a look that
fails like a kink is made again at smaller steps, as the screen's.

When the rows do not agree they are halved, and a half that agrees is cleared (as the screen
halves tensors); a row left alone is compared by itself, along its own direction, with the ladder
of steps.py, which tells a wrong gradient from a kink and names the row. At most _NAMED_ROWS rows
are compared alone (a gradient wrong on every row shows on the first of them); rows beyond those,
and a failure none of whose parts fails, are left to the tensor's own directional check
(first_order.py), as the joint screen leaves a tensor it cannot clear.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..layer.sampling import DIRECTION_STREAM
from .steps import SMALLER_STEPS, Comparison, compare

LOOKED_UP = "a random direction per looked-up row"  # the label of a joint look's comparison
_DIRECTIONS = 2
_NAMED_ROWS = 8
_ROWS_STREAM = 1  # under the direction stream: (seed, DIRECTION_STREAM, _ROWS_STREAM, tensor)


class _Rows:
    """The looks at groups of one tensor's looked-up rows (numbers into its compared values)."""

    def __init__(self, grad, evaluate, step, tolerance, floor, center, seed, tensor) -> None:
        self.grad, self.evaluate, self.step, self.center = grad, evaluate, step, center
        self.rtol, self.floor = tolerance.rtol, floor
        rng = np.random.default_rng([seed, DIRECTION_STREAM, _ROWS_STREAM, tensor])
        self.units = []  # per direction: every row a unit vector of its own
        self.along = []  # per direction: each row's g_r · u_r
        for _ in range(_DIRECTIONS):
            unit = rng.standard_normal(grad.shape)
            flat = unit.reshape(grad.shape[0], -1)
            flat /= np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-300)
            self.units.append(unit)
            self.along.append(np.sum((grad * unit).reshape(grad.shape[0], -1), axis=1))

    def look(self, rows: np.ndarray) -> tuple[bool, list[Comparison]]:
        """Do `rows` agree, at the first step or at a smaller one after a look that failed like a
        kink? With their comparisons when they do."""
        for factor in (1.0, *SMALLER_STEPS["float64"]):
            agreed, bent, found = self._at(rows, self.step / factor)
            if agreed:
                return True, found
            if not bent:
                break
        return False, []

    def _at(self, rows, step: float) -> tuple[bool, bool, list[Comparison]]:
        found = []
        for k in range(_DIRECTIONS):
            displacement = np.zeros_like(self.grad)
            displacement[rows] = step * self.units[k][rows]
            ahead, behind = self.evaluate(displacement), self.evaluate(-displacement)
            numeric, total = (ahead - behind) / 2, step * float(np.sum(self.along[k][rows]))
            scales = np.maximum(np.abs(self.along[k][rows]), self.floor / self.rtol)  # each row's allowance / rtol
            gap = abs(numeric - total)
            if not np.isfinite(numeric) or gap > self.rtol * step * float(np.min(scales)):
                bend = abs((ahead - self.center) - (self.center - behind)) if self.center is not None else 0.0
                return False, bool(np.isfinite(numeric)) and bend >= gap, []
            # The gap against the scale of the row it would matter most to: within rtol, as agreed.
            error = gap / (step * float(np.min(scales)))
            found.append(Comparison(LOOKED_UP, total / step, numeric / step, error, step))
        return True, False, found

    def alone(self, row: int, label: str, loss0, tolerance, dtype) -> Comparison:
        """Row `row` compared by itself along its first direction, with the ladder (steps.py)."""
        direction = np.zeros_like(self.grad)
        direction[row] = self.units[0][row]
        tape = float(self.along[0][row])
        return compare(label, tape, self.evaluate, direction, self.step, loss0, tolerance, self.floor, dtype)


def compare_rows(
    grad: np.ndarray,
    evaluate: Callable,
    step: float,
    loss0: float,
    tolerance,
    floor: float,
    dtype: str,
    seed: int,
    tensor: int,
    name_row: Callable[[int], str],
) -> tuple[list[Comparison], bool]:
    """(comparisons, whether they cover every row) for a tensor of looked-up rows (grad: its
    gradient on them, rows first): the joint look's when every row agrees; else those of the halves
    that agree and of the rows compared alone. When they do not cover every row (more rows left
    alone than are compared, or a failure no part of which fails), the caller's own directional
    check decides, as for a tensor the joint screen does not clear. `name_row(r)` labels row r of
    the compared values ("row 4711")."""
    rows = _Rows(grad, evaluate, step, tolerance, floor, loss0, seed, tensor)
    everything = np.arange(grad.shape[0])
    agreed, found = rows.look(everything)
    if agreed:
        return found, True
    comparisons: list[Comparison] = []
    alone: list[int] = []
    covered = _halve(rows, everything, comparisons, alone)
    for row in alone:
        comparisons.append(rows.alone(row, name_row(row), loss0, tolerance, dtype))
    wrong = any(c.verdict != "ok" for c in comparisons)
    return comparisons, covered or wrong


def _halve(rows: _Rows, group: np.ndarray, comparisons: list, alone: list) -> bool:
    """Halve a failing group of rows: a half that agrees is cleared, a lone row is kept for its
    own comparison (at most _NAMED_ROWS), and when the first half agrees the second is halved
    without a look of its own. Whether every row of the group was cleared or kept."""
    if group.size == 1:
        if len(alone) >= _NAMED_ROWS:
            return False
        alone.append(int(group[0]))
        return True
    first, second = group[: group.size // 2], group[group.size // 2 :]
    agreed, found = rows.look(first)
    if agreed:
        comparisons += found
        return _halve(rows, second, comparisons, alone)
    agreed, found = rows.look(second)
    covered = True
    if agreed:
        comparisons += found
    else:
        covered = _halve(rows, second, comparisons, alone)
    return _halve(rows, first, comparisons, alone) and covered
