"""Sample inputs and probe projections from gradcheck's own seeded generator (never the global one)."""

from __future__ import annotations

import numpy as np

from ..options.settings import InputSpec

# Streams derived from the one user seed, so adding a draw to one stage never shifts another's.
INPUT_STREAM = 0
PROJECTION_STREAM = 1
DIRECTION_STREAM = 2


def generator(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def sample_inputs(specs: tuple[InputSpec, ...], seed: int) -> list[np.ndarray]:
    rng = generator(seed, INPUT_STREAM)
    arrays = []
    for spec in specs:
        low, high = spec.resolved_range
        if spec.dtype == "bool":
            arrays.append(rng.random(spec.shape) < 0.5)
        elif spec.is_float:
            values = rng.uniform(low, high, size=spec.shape)
            # bfloat16 has no numpy dtype: sample in float32 and let the layer cast.
            arrays.append(values.astype("float32" if spec.dtype == "bfloat16" else spec.dtype))
        else:
            arrays.append(rng.integers(int(low), int(np.ceil(high)), size=spec.shape).astype(spec.dtype))
    return arrays


def projections(shapes, seed: int) -> list[np.ndarray]:
    """One fixed Gaussian tensor per output: the probe loss is sum(r * y) / batch.

    A plain sum would hide gradients: the sum of a softmax or a normalised output is constant
    (design notes 4), so its gradient is zero even for a healthy layer. A random projection is not.
    """
    rng = generator(seed, PROJECTION_STREAM)
    return [rng.standard_normal(shape).astype("float64") for shape in shapes]
