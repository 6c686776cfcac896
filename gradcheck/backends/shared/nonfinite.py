"""The findings JAX and PyTorch make alike: a NaN/Inf in a gradient or an output (each backend
finds the op it came from), and a backward pass that raises.

The words are those of backends/tensorflow/graph/nonfinite.py and backward.py, so a NaN reads the
same on every backend; only the op's name and the advice's spelling (keras.ops) differ.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ... import codes
from ...layer.source import error_text, user_frame_of
from ...report import finding
from .findings import NONFINITE_ADVICE

# (op name, the user's line, " (in its gradient)" or ""), or None when no op could be named
Origin = tuple[str, str | None, str] | None
OriginOf = Callable[..., Origin]  # (probe, run, ("grads", index) or ("outputs", position)) -> Origin

# Names an op goes by on JAX or torch -> its entry in NONFINITE_ADVICE.
_ADVICE_OF = {
    "sqrt": "sqrt",
    "rsqrt": "rsqrt",
    "log": "log",
    "log1p": "log",
    "pow": "pow",
    "integer_pow": "pow",
    "div": "div",
    "true_divide": "div",
    "reciprocal": "div",
    "exp": "exp",
}


def nonfinite_finding(probe, run, name, variable, index, where, created, subject, origin_of: OriginOf):
    grad = np.asarray(run.result["grads"][index], dtype=np.float64)
    kind = "NaN" if np.isnan(grad).any() else "Inf"
    origin = origin_of(probe, run, ("grads", index))
    harm = (
        "so every layer before this one receives a non-finite gradient"
        if variable is None
        else "so one optimizer step turns it into NaN"
    )
    return finding(
        codes.NONFINITE_GRADIENT,
        name,
        f"{subject} contains {kind}{where}{_origin_text(origin)}, {harm}. {_advice(origin)}",
        (origin[1] if origin else None) or created,
    )


def nonfinite_outputs(probe, runs, findings, origin_of: OriginOf) -> list:
    """An output with NaN/Inf whose gradients still look finite gets its own finding."""
    if any(f.code == codes.NONFINITE_GRADIENT.name for f in findings):
        return []
    made = []
    for run in runs:
        for position, output in enumerate(run.result["outputs"]):
            if np.all(np.isfinite(output)):
                continue
            name = probe.output_names[position] if position < len(probe.output_names) else f"output[{position}]"
            origin = origin_of(probe, run, ("outputs", position))
            where = f" with training={run.mode.capitalize()}" if run.mode != "n/a" else ""
            made.append(
                finding(
                    codes.NONFINITE_GRADIENT,
                    name,
                    f"The layer's {name} contains NaN or Inf on the probe batch{where}{_origin_text(origin)}; "
                    f"any loss on it, and its gradients, will be NaN. {_advice(origin)}",
                    origin[1] if origin else None,
                )
            )
        if made:
            break
    return made


def _origin_text(origin: Origin) -> str:
    if origin is None:
        return ""
    op_type, location, produced = origin
    return f"; the first non-finite value comes from {op_type}{' at ' + location if location else ''}{produced}"


def _advice(origin: Origin) -> str:
    kind = _ADVICE_OF.get(origin[0]) if origin is not None else None
    if kind is not None:
        return NONFINITE_ADVICE[kind]
    return "Guard the op that produces it (an epsilon, a clip, or a safe input for ops.where's other branch)."


def backward_failure(error: BaseException, mode: str, words):
    """The `backward-failed` finding for an error the backward pass raised (the forward pass ran
    in the probe, so what raises now is a gradient: a custom one of the wrong shape, most often)."""
    location = user_frame_of(error)
    where = f" with training={mode.capitalize()}" if mode in ("true", "false") else ""
    return finding(
        codes.BACKWARD_FAILED,
        None,
        f"The backward pass raises{where}{' at ' + location if location else ''}: "
        f"{type(error).__name__}: {error_text(error, 300).rstrip('.')}, so fit() raises the same error on its "
        f"first training step. Check the custom gradient ({words.custom_gradient}) or hand-written backward "
        "there: it must return one gradient per input, each of its input's shape.",
        location,
    )


class NoLocator:
    """Where a dtype policy's value is lost, on a backend that does not locate it: the finding is
    made without the op (checks/dtype_policy.py asks; backends/tensorflow/graph/policy.py answers)."""

    def cast_location(self) -> str | None:
        return None

    def first_loss(self, target, how: str) -> tuple[str | None, str | None]:
        return None, None
