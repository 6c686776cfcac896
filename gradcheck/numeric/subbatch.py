"""The samples the finite-difference passes run on: the whole batch, or the leading samples of a large one.

Every pass of the finite-difference check (numeric.py) is a forward pass of the float64 twin over
its inputs, and on a realistic layer (8 sequences of 128x256 into a transformer block) one pass
costs about as much as the rest of the comparison: the passes, not the arithmetic around them,
are the check's cost. Whether a gradient is right is a property of the backward function, which
the same weights give for any sample; the tape and the finite differences only have to see the
same samples. So a batch whose inputs hold more than SUB_BATCH_ELEMENTS numbers is compared on
its fewest leading samples that still hold that many (at least MIN_SAMPLES, so statistics over
the batch stay defined): a 1e-3 error in one bias among ~500k weights is as visible on two
sequences of 128x256 as on eight, at a quarter of the cost. A sample that alone holds that many
numbers (a sequence of 128x768, an image of 56x56x64) is compared by itself: it has positions of
its own over which a normalisation takes its statistics, and a second one doubled the cost of
every pass of a transformer block at GPT-2 width without making an error any more visible. The
float64 twin is built and checked against the layer on the same leading samples (layer/twin.py).

Every test and sample layer is far below that size and is compared on its whole batch, as before.
A layer whose inputs or outputs do not all lead with the batch dimension keeps the whole batch,
and numeric.py compares on the whole batch again when the smaller one raises (a batch size
written into call()).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SUB_BATCH_ELEMENTS = 65_536  # input numbers (all inputs together) worth one pass
MIN_SAMPLES = 2


@dataclass(frozen=True)
class Samples:
    """What the finite-difference passes evaluate: inputs, projections and the loss's divisor."""

    inputs: list  # numpy arrays in the compared layer's dtypes, one per input
    projections: list  # numpy float64 arrays, one per float output
    batch: int  # the probe loss is sum(r * y) / batch
    whole: bool  # the probe's whole batch
    # A training mode whose outputs have shapes of their own (Probe.projections_for) -> its projections.
    mode_projections: dict = field(default_factory=dict)

    def projections_for(self, mode: str) -> list:
        return self.mode_projections.get(mode, self.projections)


def whole_batch(probe, twin) -> Samples:
    return Samples(
        inputs=list(twin.inputs),
        projections=list(probe.projections),
        batch=probe.batch_size,
        whole=True,
        mode_projections={mode: list(rs) for mode, rs in probe.mode_projections.items()},
    )


def leading_count(probe) -> int | None:
    """How many leading samples of a large batch are compared, or None when the whole batch is."""
    batch = probe.batch_size
    per_sample = sum(int(np.prod(a.shape[1:])) for a in probe.inputs)
    if per_sample * batch <= SUB_BATCH_ELEMENTS:
        return None
    if per_sample >= SUB_BATCH_ELEMENTS:
        count = 1
    else:
        count = max(MIN_SAMPLES, -(-SUB_BATCH_ELEMENTS // per_sample))  # ceil
    if count >= batch:
        return None
    shapes = [tuple(a.shape) for a in probe.inputs] + [tuple(r.shape) for r in probe.projections]
    shapes += [tuple(r.shape) for rs in probe.mode_projections.values() for r in rs]
    if any(not shape or shape[0] != batch for shape in shapes):
        return None  # some tensor is not per sample: slicing it would change what is computed
    return count


def leading_samples(probe, twin) -> Samples | None:
    """The leading samples of a large batch, or None when the whole batch is compared."""
    count = leading_count(probe)
    if count is None:
        return None
    return Samples(
        inputs=[np.ascontiguousarray(a[:count]) for a in twin.inputs],
        projections=[np.ascontiguousarray(r[:count]) for r in probe.projections],
        batch=count,
        whole=False,
        mode_projections={
            mode: [np.ascontiguousarray(r[:count]) for r in rs] for mode, rs in probe.mode_projections.items()
        },
    )
