"""The words a report uses for the state of a gradient or a comparison, each ranked once, worst first.

A row of the report holds at most one of each: its gradient's status, its finite-difference verdict
and (with --order 2) its second-order verdict. When a tensor is looked at several times (in each
training mode, along several directions) the worst word wins, ranked by the tuples below; no
check keeps a ranking of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeVar

GradientStatus = Literal["none", "nonfinite", "zero", "exploding", "vanishing", "noise", "ok"]
# none: no gradient at all; nonfinite: NaN/Inf in it; zero: exactly zero on the probe batch;
# exploding / vanishing: RMS(gradient) / max(RMS(tensor), 1) beyond a threshold; noise: rounding
# noise of a gradient that is mathematically zero (rounding-noise-gradient); ok.
GRADIENT_STATUSES: tuple[GradientStatus, ...] = ("none", "nonfinite", "zero", "exploding", "vanishing", "noise", "ok")

Comparison = Literal["mismatch", "kink", "skipped", "ok"]
# One finite-difference comparison: the tape disagrees (mismatch), the loss has a kink within the
# step (kink), no step could resolve the function there (skipped), or they agree (ok).
COMPARISONS: tuple[Comparison, ...] = ("mismatch", "kink", "skipped", "ok")

NumericVerdict = Literal["mismatch", "kink", "skipped", "ok", "float32-fallback", "surrogate"]
# A tensor's finite-difference verdict over its comparisons: one of COMPARISONS, ok reached only
# with float32 steps and tolerances (float32-fallback), or a straight-through estimator whose
# gradient stands in for a derivative that is zero almost everywhere (surrogate). A skipped one
# always carries its reason (numeric_skip_reason).

SecondOrderVerdict = Literal["none", "mismatch", "approximate", "kink", "skipped", "ok"]
# --order 2: the gradient of the gradient is None (none), disagrees (mismatch), disagrees because of
# a library's stop_gradient (approximate), a kink, not compared (skipped), or agrees (ok).
SECOND_ORDER_VERDICTS: tuple[SecondOrderVerdict, ...] = ("none", "mismatch", "approximate", "kink", "skipped", "ok")

Word = TypeVar("Word", bound=str)


def rank(word: str, order: tuple[str, ...]) -> int:
    """The place of `word` in `order` (0 is the worst)."""
    return order.index(word)


def worst(words: Iterable[Word], order: tuple[str, ...]) -> Word:
    """The worst of `words` by `order`."""
    return min(words, key=lambda word: order.index(word))
