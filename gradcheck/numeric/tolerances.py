"""How far finite differences step and how closely they must agree, per dtype the arithmetic runs in,
and how many looks the first-order check takes per tensor."""

from __future__ import annotations

from dataclasses import dataclass

DIRECTIONS = 3  # random directions per tensor and mode: one suffices for a gross error; three for margin
# Tensors up to this many entries are also checked entry by entry: 2 passes per entry, so at most
# 64 passes, about 10x the directional check's 6. Larger tensors are checked entry by entry only
# with --exhaustive; in float64 a random direction still sees an error confined to one entry of a
# tensor of n entries, diluted by about sqrt(n) (1e-3 on one entry of 1e4: 1e-5, at rtol).
SMALL_TENSOR = 32


@dataclass(frozen=True)
class Tolerance:
    eps: float  # step, as a fraction of the tensor's scale max(RMS(θ), 1)
    rtol: float  # allowed |tape − numeric| as a fraction of the larger of the two
    atol: float  # floor of the allowed |tape − numeric|, as a fraction of the largest gradient norm


# Keyed by the dtype the arithmetic runs in. A central difference with step h is off by
# h²·|f'''|/6 (truncation) plus about ε·|L|/h (the loss's rounding, ε the dtype's machine epsilon).
# Balancing the two gives h ≈ ε^(1/3) and an error ≈ ε^(2/3) of the function's scale:
#   float64: ε = 1.1e-16 -> h ≈ 5e-6 (eps 1e-5), error ≈ 2e-11; rtol 1e-5 leaves a factor 1e5 for
#            curvature and for rounding summed over many outputs, and is 100x below the 1e-3
#            relative errors the check must catch.
#   float32: ε = 6e-8 -> h ≈ 4e-3 (eps 1e-3, where design notes 8 measured agreement), error ≈ 1.5e-5;
#            with the same margins that gives rtol 1e-2: a float32 comparison sees gross errors only.
# The absolute floor: rounding noise in the numeric estimate is ≈ ε·sqrt(n)·|L|/h for n summed
# outputs, i.e. ≈ ε·sqrt(n)/eps of the gradient scale: 1e-8 for float64 at n = 1e6, 6e-3 for
# float32 at n = 1e4. A gradient that is rounding noise (MultiHeadAttention's key bias, which truly
# gets none) sits below that floor and is not held to a relative tolerance.
TOLERANCES = {
    "float64": Tolerance(eps=1e-5, rtol=1e-5, atol=1e-7),
    "float32": Tolerance(eps=1e-3, rtol=1e-2, atol=1e-2),
    # The same balance for the half-precision policies (the layer itself, when no float64 copy
    # exists): float16 ε = 9.8e-4 -> h ≈ 0.1, error ≈ 1e-2; bfloat16 ε = 7.8e-3 -> h ≈ 0.2,
    # error ≈ 4e-2. Only gross errors are visible there.
    "float16": Tolerance(eps=1e-1, rtol=2e-1, atol=2e-1),
    "bfloat16": Tolerance(eps=2e-1, rtol=5e-1, atol=5e-1),
}


def tolerance_for(options, dtype: str) -> Tolerance:
    table = TOLERANCES[dtype]
    return Tolerance(
        eps=options.eps if options.eps is not None else table.eps,
        rtol=options.rtol if options.rtol is not None else table.rtol,
        atol=options.atol if options.atol is not None else table.atol,
    )
