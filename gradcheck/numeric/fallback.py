"""float32-fallback: say once per layer when, and why, a comparison could not run in float64.

Two causes, each reported once for the layer (not a paragraph per tensor):
- no float64 copy of the layer could be used (twin.py gives the reason); not reported when an
  error already explains it — an untracked variable or a constant stays float32 in the copy, and
  fixing that error gives the float64 check back;
- the copy computes in lower precision on a tensor's path: an op whose output is float32 (or
  float16) although a float64 tensor flows into it — a hard-coded `tf.cast(x, tf.float32)`, an FFT.
  A float32 constant or a Python float (`ops.sqrt(float(dim))`) is no such op: it is off the
  tensor's path, and the copy promotes it to float64 (twin.float64_policy).
The finding names the op, its line and the fix.
"""

from __future__ import annotations

from .. import codes
from ..report import finding


def fallback_findings(twin, targets, tensors, rtol_of) -> list:
    """At most one float32-fallback finding for the layer.

    Args:
        twin: the Twin the comparisons ran on.
        targets: numeric.Target objects, each with .key, .name, .dtype, .verdict, .checked, .fallback_op.
        tensors: the inventory's Rows of TensorInfo (an untracked or constant row explains a fallback).
        rtol_of: dtype name -> the relative tolerance used in that dtype.
    """
    fell_back = [t for t in targets if t.dtype != "float64" and t.checked]
    # A raw tf.Variable stays float32 in the copy; its untracked-variable error says what to fix.
    untracked = {key for key, row in tensors.keyed() if row.kind == "untracked"}
    fell_back = [t for t in fell_back if t.key not in untracked or twin.reason is not None]
    if not fell_back:
        return []
    names = ", ".join(f"`{t.name}`" for t in fell_back)
    dtype = fell_back[0].dtype
    limits = (
        f"{dtype} steps and tolerances (rtol {rtol_of(dtype):g}) catch gross errors only; a "
        "relative error of 1e-3 can pass unseen"
    )
    if twin.reason is not None:
        explained = any(row.kind in ("untracked", "constant") and row.read_by_call for row in tensors)
        if explained:
            return []  # the untracked-variable / constant-tensor error says what to fix
        return [
            finding(
                codes.FLOAT32_FALLBACK,
                None,
                f"{names} {'was' if len(fell_back) == 1 else 'were'} compared with finite differences in "
                f"{dtype}: no float64 copy of the layer could be used ({twin.reason}"
                + (f", at {twin.location}" if twin.location else "")
                + f"). {limits}. Make every weight "
                "with add_weight and compute in the input's dtype to get the float64 check.",
                twin.location,
            )
        ]
    ops = []
    for target in fell_back:
        if target.fallback_op is not None and target.fallback_op not in ops:
            ops.append(target.fallback_op)
    first = ops[0] if ops else None
    where = f": {first.describe()}" if first else ""
    more = f" (and {len(ops) - 1} more such op{'s' if len(ops) > 2 else ''})" if len(ops) > 1 else ""
    return [
        finding(
            codes.FLOAT32_FALLBACK,
            None,
            f"{names} {'was' if len(fell_back) == 1 else 'were'} compared with finite differences in {dtype}, "
            f"because call() computes in {dtype} on {'its' if len(fell_back) == 1 else 'their'} path even in "
            f"a float64 copy{where}{more}. {limits}. Compute in the input's dtype instead of a fixed "
            f"one, e.g. `ops.cast(..., x.dtype)`, to get the float64 check.",
            first.location if first else None,
        )
    ]
