"""Where finite differences move each tensor they compare, and how it is put back exactly.

A weight is moved in the twin (layer/twin.py) by assigning it, an input by passing another array.
A weight the loss reads only by looking rows up (an embedding's table, Forward.rows) is moved only
in the rows the samples look up: the loss cannot depend on the others, so no displacement of
theirs can show anything, and a gradient there is the tape's mistake, which first_order.py checks
without a pass (Forward.unread). The compared values are then the looked-up rows alone: the
directions, the steps and the comparisons see a tensor of that shape.

A place reads its original values once, the compared rows only, and the joint screen
(screening.py) and the per-tensor checks (first_order.py) share it: no tensor gets a second full
copy, and none gets a float64 copy of rows that are not compared.
"""

from __future__ import annotations

import numpy as np

from ..runtime import backend


class Place:
    """One target's compared values in the twin: a weight (or its looked-up rows) or an input."""

    def __init__(self, forward, twin, target, base: list) -> None:
        self.target, self.base = target, base
        self.variable = twin.variables[id(target.variable)] if target.variable is not None else None
        self.rows = forward.rows(target) if self.variable is not None else None
        if self.variable is None:
            self.original = base[target.input_index]
        elif self.rows is None:
            self.original = backend().to_numpy(self.variable)
        else:
            self.original = backend().read_rows(self.variable, self.rows)
        self.displaced = False

    @property
    def total_rows(self) -> int:
        return int(self.variable.shape[0]) if self.variable is not None and len(self.variable.shape) else 0

    def value(self) -> np.ndarray:
        """The compared values, as float64."""
        return np.asarray(self.original, "float64")

    def move(self, xs: list, displacement, sign: float = 1.0) -> None:
        """The target displaced by `sign`·`displacement` (a weight in the twin; an input into `xs`).
        θ − d is θ + (−1·d) to the last bit, without a negated copy of d."""
        moved = self.original + displacement if sign > 0 else self.original - displacement
        moved = moved.astype(self.original.dtype, copy=False)
        if self.variable is None:
            xs[self.target.input_index] = moved
            return
        self._write(moved)
        self.displaced = True

    def restore(self) -> None:
        """A weight back to exactly its original values (an input is never changed in place)."""
        if self.variable is not None and self.displaced:
            self._write(self.original)
            self.displaced = False

    def _write(self, values) -> None:
        assert self.variable is not None, "an input is passed, never written"
        if self.rows is None:
            backend().assign(self.variable, values)
        else:
            backend().assign_rows(self.variable, self.rows, values)

    def row_label(self, row: int) -> str:
        """'row 4711': the table's own number of row `row` of the compared values."""
        return f"row {int(self.rows[row]) if self.rows is not None else row}"

    def entry(self, index) -> list[int]:
        """The tensor's own index of the compared values' entry `index` (a row number restored)."""
        index = [int(i) for i in index]
        if self.rows is not None and index:
            index[0] = int(self.rows[index[0]])
        return index


def places(forward, twin, targets, base: list) -> dict[int, Place]:
    """{id(target): its Place} for every target, read once for a training mode's comparisons."""
    return {id(target): Place(forward, twin, target, base) for target in targets}
