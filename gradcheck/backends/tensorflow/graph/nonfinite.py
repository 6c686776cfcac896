"""NaN/Inf forensics: which op made the first non-finite value in a gradient or an output.

Runs only on failure. Every float tensor of the traced forward and backward graph is evaluated
once on the probe inputs (a pruned copy of the traced function), and the first op whose outputs
are non-finite while its inputs are finite is named, at the user's line: sqrt or log at 0, a
division by zero, exp overflow. A backward op is named by the forward op it differentiates.
"""

from __future__ import annotations

import numpy as np

from .... import codes
from ....report import finding, op_cause
from .cuts import ancestors as graph_ancestors
from .values import graph_values


def nonfinite_finding(probe, run, name, variable, index, where, created, subject):
    grad = np.asarray(run.result["grads"][index], dtype=np.float64)
    kind = "NaN" if np.isnan(grad).any() else "Inf"
    origin = _nonfinite_origin(probe, run, ("grads", index))
    harm = (
        "so every layer before this one receives a non-finite gradient"
        if variable is None
        else "so one optimizer step turns it into NaN"
    )
    return finding(
        codes.NONFINITE_GRADIENT,
        name,
        f"{subject} contains {kind}{where}{_origin_text(origin)}, {harm}. {_nonfinite_advice(origin)}",
        (origin[1] if origin else None) or created,
        cause=op_cause(origin[0], origin[1]) if origin else None,
    )


def nonfinite_outputs(probe, runs, findings):
    """An output with NaN/Inf whose gradients still look finite gets its own finding."""
    if any(f.code == codes.NONFINITE_GRADIENT.name for f in findings):
        return []
    made = []
    for run in runs:
        for position, output in enumerate(run.result["outputs"]):
            if np.all(np.isfinite(output)):
                continue
            name = probe.output_names[position] if position < len(probe.output_names) else f"output[{position}]"
            origin = _nonfinite_origin(probe, run, ("outputs", position))
            where = f" with training={run.mode.capitalize()}" if run.mode != "n/a" else ""
            made.append(
                finding(
                    codes.NONFINITE_GRADIENT,
                    name,
                    f"The layer's {name} contains NaN or Inf on the probe batch{where}{_origin_text(origin)}; "
                    f"any loss on it, and its gradients, will be NaN. {_nonfinite_advice(origin)}",
                    origin[1] if origin else None,
                    cause=op_cause(origin[0], origin[1]) if origin else None,
                )
            )
        if made:
            break
    return made


_NONFINITE_ADVICE = {
    "Sqrt": "tf.sqrt has an infinite slope at 0: add a small epsilon inside (`tf.sqrt(x + 1e-12)`) or keep x away from 0.",
    "Rsqrt": "tf.math.rsqrt is infinite at 0: add a small epsilon inside.",
    "Log": "log(0) is -inf: add a small epsilon or clip (`tf.math.log(tf.maximum(x, 1e-12))`); inside tf.where the "
    "branch not taken still gets a gradient, so make its input safe too (the double-where trick).",
    "Pow": "pow at 0 with a fractional or negative exponent has an infinite slope; inside tf.where the branch not "
    "taken still gets a gradient, so make its input safe too (the double-where trick).",
    "RealDiv": "A division by zero (e.g. v / norm(v) at v = 0): add an epsilon to the divisor or use "
    "tf.math.l2_normalize.",
    "Div": "A division by zero: add an epsilon to the divisor.",
    "Exp": "exp overflows float32 above about 88: clip its argument, rescale, or use a stable form (softplus, "
    "log-sum-exp).",
}


def _origin_text(origin) -> str:
    if origin is None:
        return ""
    op_type, location, produced = origin
    return f"; the first non-finite value comes from {op_type}{' at ' + location if location else ''}{produced}"


def _nonfinite_advice(origin) -> str:
    if origin is not None and origin[0] in _NONFINITE_ADVICE:
        return _NONFINITE_ADVICE[origin[0]]
    return "Guard the op that produces it (an epsilon, a clip, or a safe input for tf.where's other branch)."


def _nonfinite_origin(probe, run, target):
    """(forward op type, user's file:line, note) of the op that made the first non-finite value
    feeding `target`; None when the graph cannot show it. Runs only on failure: every float tensor of
    the trace graph is evaluated once on the probe inputs (a pruned copy of the traced function)."""
    if run.trace is None:
        return None
    values = _finite(probe, run)
    if values is None:
        return None  # the graph could not be pruned or run: report without the op
    kind, position = target
    outputs = run.trace.function.structured_outputs[kind]
    tensor = outputs[position]
    ancestors = graph_ancestors(tensor.op)
    for op in run.trace.graph.get_operations():
        if op not in ancestors:
            continue
        made = [t for t in op.outputs if not values.get(t.ref(), True)]
        if made and all(values.get(t.ref(), True) for t in op.inputs):
            return forward_origin(op)
    return None


def _finite(probe, run) -> dict | None:
    """{graph tensor ref: all finite?} for every float tensor in the trace graph; cached per run."""
    if "finite" not in run.result:
        graph = run.trace.graph
        fetches = [
            t for op in graph.get_operations() if op.type != "Placeholder" for t in op.outputs if t.dtype.is_floating
        ]
        values = graph_values(probe, run, fetches)
        run.result["finite"] = (
            None if values is None else {t.ref(): bool(np.all(np.isfinite(v))) for t, v in zip(fetches, values)}
        )
    return run.result["finite"]


def forward_origin(op):
    """A backward op (`gradient_tape/<forward name>/...`) is named by the forward op it differentiates."""
    from ....layer.source import user_location

    if not op.name.startswith("gradient_tape/"):
        return (op.type, user_location(op.traceback), "")
    # A backward op's traceback ends at the tape.gradient call, not at the user's line.
    scope = op.name[len("gradient_tape/") :].rsplit("/", 1)[0]
    candidates = [t.op for t in op.inputs if not t.op.name.startswith("gradient_tape/")]
    try:
        candidates.insert(0, op.graph.get_operation_by_name(scope))
    except (KeyError, ValueError):
        pass
    for forward in candidates:
        forward_location = user_location(forward.traceback)
        if forward_location and forward.type not in ("ReadVariableOp", "Placeholder", "Const"):
            return (forward.type, forward_location, f" (in its gradient, {op.type})")
    return (op.type, None, "")
