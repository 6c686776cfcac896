"""Machine epsilon per float dtype: the one table the dtype-dependent limits derive from."""

from __future__ import annotations

# The spacing of numbers just above 1.0 (numpy has no bfloat16, so the values are written out).
EPSILON = {
    "float64": 2.0**-52,
    "float32": 2.0**-23,
    "float16": 2.0**-10,
    "bfloat16": 2.0**-7,
}


def epsilon(dtype) -> float:
    """Machine epsilon of `dtype` (a name or anything whose str() is one); float32's if unknown."""
    name = str(getattr(dtype, "name", dtype))
    return EPSILON.get(name, EPSILON["float32"])
