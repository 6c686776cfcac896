"""What the finite-difference check compares and what it says: its targets, each one's verdict over
the comparisons made, the message for a mismatch or a kink, and the facts and findings for the report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import codes
from ..layer.rows import RowKey, input_key, variable_key
from ..report import finding, op_cause
from ..runtime import backend
from ..statuses import COMPARISONS, rank
from .fallback import fallback_findings
from .tolerances import tolerance_for

_SHOWN_ENTRIES = 3  # worst entries named in a message
# The label of the comparison of the tape's gradient on the rows of an embedding's table the
# samples do not look up (places.py) with the zero the loss gives them.
UNREAD_ROWS = "the rows not looked up"


@dataclass
class Target:
    """A tensor whose gradient is checked: a variable (by its original tf.Variable) or an input."""

    key: RowKey  # the row its facts go to
    name: str  # shown in messages
    variable: object = None  # the original tf.Variable, for a weight
    input_index: int | None = None
    location: str | None = None  # where its findings point
    verdict: str = "ok"
    error: float = 0.0
    dtype: str = "float64"
    fallback_op: object = None  # the LowPrecisionOp on its path that made it compare in float32
    gradient_location: str | None = None  # the user's line applying a custom gradient on its path
    custom_gradients: list = field(default_factory=list)  # each custom gradient on its path, in words
    checked: bool = False  # compared in at least one training mode
    messages: list = field(default_factory=list)  # (verdict, text) per failing comparison
    skip_reasons: list = field(default_factory=list)  # why a mode was not compared, in words
    skip_location: str | None = None  # where the reason points (a numpy_function's line)
    surrogate: str | None = None  # the line of a straight-through estimator on its path ("" outside the user's code)
    rows: tuple[int, int] | None = None  # (rows compared, rows) when only the looked-up rows were (places.py)


def select_targets(probe, tensors, inputs) -> list[Target]:
    """The tensors whose gradients are compared: float weights call() reads (tracked or raw), and float inputs."""
    framework = backend()
    targets = []
    for variable in probe.gradient_variables:
        key = variable_key(variable)
        row = tensors.get(key)
        tf_variable = framework.backing(variable)
        if row is None or row.kind not in ("trainable", "untracked") or not row.read_by_call:
            continue
        if framework.is_float(tf_variable):
            targets.append(Target(key=key, name=row.name, variable=tf_variable, location=row.created_at))
    for index, item in enumerate(inputs):
        if item.differentiable:
            targets.append(Target(key=input_key(index), name=item.name, input_index=index))
    return targets


def skipped_facts(targets, reason: str, location: str | None = None, *, explained: bool = False):
    """Facts and findings for targets that could not be compared at all: `reason` says why (call()
    cannot be compiled, the layer raised in a pass), `location` where. `explained`: another finding
    already says why (trace-failed, backward-failed), so only the JSON carries the reason."""
    facts: tuple[dict, dict] = ({}, {})
    findings = []
    for target in targets:
        target.skip_reasons, target.skip_location = [reason], location
        facts[target.variable is None][target.key] = {"numeric_verdict": "skipped", "numeric_skip_reason": reason}
        findings += [] if explained else _skipped_finding(target)
    return facts[0], facts[1], findings


# Reasons another finding already explains (a None or NaN gradient, a NaN loss): said in the JSON,
# not again.
_EXPLAINED = ("its gradient is None", "its gradient is not finite", "its loss is not finite")


def _skipped_finding(target) -> list:
    reason = target.skip_reasons[0] if target.skip_reasons else "no comparison could be made"
    if reason.endswith(_EXPLAINED):
        return []
    return [
        finding(
            codes.NUMERIC_SKIPPED,
            target.name,
            f"The gradient of `{target.name}` was not compared with finite differences: {reason}. So a wrong "
            f"gradient there would pass unseen. {_advice(reason)}",
            target.skip_location or target.location,
        )
    ]


def _advice(reason: str) -> str:
    if "numpy_function" in reason:
        return "Write that computation with TensorFlow ops, or give it a gradient with @tf.custom_gradient."
    if "could not be traced" in reason:
        return "Make call() traceable (see the trace-failed finding) to get the comparison back."
    if "raised" in reason:
        return "Fix what the layer raised there to get the comparison back."
    if "resolved" in reason:
        return "Check it at other inputs (--input-range, --seed) or with a larger --eps."
    return "Check it at other inputs (--input-range, --seed), or in one training mode (--training/--no-training)."


def ordered(targets):
    """Targets in the order the gradient function returns them: variables, then inputs."""
    return [t for t in targets if t.variable is not None] + [t for t in targets if t.variable is None]


def _worsen(target, verdict, error, message) -> None:
    if rank(verdict, COMPARISONS) < rank(target.verdict, COMPARISONS):
        target.verdict = verdict
    if np.isfinite(error):
        target.error = max(target.error, error)
    if message:
        target.messages.append((verdict, message))


def record(target, comparisons, mode, dtype, step, probe) -> None:
    target.checked = True
    worst = min(comparisons, key=lambda c: (rank(c.verdict, COMPARISONS), -c.error))
    verdict = worst.verdict
    context = f"{'float64 twin' if dtype == 'float64' else dtype}" + (
        f", training={mode.capitalize()}" if mode in ("true", "false") else ""
    )
    if target.rows is not None:
        context += f", on the {target.rows[0]:,} of its {target.rows[1]:,} rows the batch looks up"

    message = None
    if verdict in ("mismatch", "kink"):  # "skipped": no step resolved the function (steps.py)
        message = _message(target, comparisons, worst, context)
    _worsen(target, verdict, max(c.error for c in comparisons if np.isfinite(c.error)), message)


def _message(target, comparisons, worst, context) -> str:
    failing = sorted(
        (c for c in comparisons if c.verdict == worst.verdict),
        key=lambda c: (-float(f"{c.error:.2g}"), -abs(c.tape - c.numeric) if np.isfinite(c.numeric) else 0.0),
    )
    entries = [c for c in failing if c.label.startswith("entry") and np.isfinite(c.numeric)][:_SHOWN_ENTRIES]
    direction = next((c for c in failing if not c.label.startswith("entry") and c.label != UNREAD_ROWS), None)
    stray = next((c for c in failing if c.label == UNREAD_ROWS), None)
    parts = []
    if stray is not None and target.rows is not None:
        parts.append(
            f"the tape gives the other {target.rows[1] - target.rows[0]:,} rows, which call() never reads, a "
            f"gradient of norm {stray.tape:.6g} where the loss gives them none"
        )
    if direction is not None:
        of = f" of {direction.label}" if direction.label.startswith("row ") else ""  # rowscreen.py
        parts.append(
            f"along a random unit direction u{of} the tape gives r·J·u = {direction.tape:.6g}, finite "
            f"differences {direction.numeric:.6g} (relative error {direction.error:.1e}, step {direction.step:.0e})"
        )
    if entries:
        shown = "; ".join(f"{c.label[6:]} tape {c.tape:.6g} vs numeric {c.numeric:.6g}" for c in entries)
        count = sum(1 for c in comparisons if c.label.startswith("entry") and c.verdict == worst.verdict)
        parts.append(f"{count} entr{'y' if count == 1 else 'ies'} disagree, worst: {shown}")
    detail = "; ".join(parts)
    if worst.verdict == "kink":
        return (
            f"`{target.name}`: finite differences disagree with the gradient ({context}): {detail}. The "
            "one-sided slopes differ as much, so the loss has a kink (ReLU, abs, max) within the step of "
            "this point: a non-differentiable point, not a wrong gradient. Sample inputs away from the kink "
            "(--input-range, --seed) to check this tensor exactly."
        )
    return (
        f"The gradient of `{target.name}` disagrees with finite differences ({context}): {detail}. The "
        "disagreement stays at smaller steps, where the estimates agree with each other and the loss is smooth, so the gradient is "
        f"wrong, not the estimate. {_suspects(target.custom_gradients)}"
    )


def _suspects(custom: list) -> str:
    """Where to look for the wrong gradient: the custom gradients on the tensor's path, by name."""
    if len(custom) == 1:
        return (
            f"Its path runs through {custom[0]}: check that function against the derivative of the "
            "forward computation it stands for."
        )
    if custom:
        listed = "; ".join(custom)
        return (
            f"Its path runs through {len(custom)} custom gradients ({listed}): check each against the "
            "derivative of the forward computation it stands for; the nearest is listed first."
        )
    words = backend().words
    return (
        f"No {words.custom_gradient} lies on its path, so the wrong gradient is an op's registered one: "
        f"{words.registered_gradient}, or {words.framework}'s own "
        f"(worth a minimal reproduction and a {words.framework} issue)."
    )


def results(options, twin, targets, tensors):
    tensor_updates, input_updates, findings = {}, {}, []
    for target in targets:
        # A mode with randomness outside Keras's seed generators (or a NaN loss) cannot be compared;
        # the verdict then rests on the modes that could be (training=False, usually).
        verdict = target.verdict if target.checked else "skipped"
        if verdict == "skipped" and target.checked:  # no step resolved the loss (steps.py)
            target.skip_reasons.insert(0, "no finite-difference step resolved the loss at this point")
        if verdict == "ok" and target.surrogate is not None:
            verdict = "surrogate"
        elif verdict == "ok" and target.dtype != "float64":
            verdict = "float32-fallback"
        facts = {
            "numeric_verdict": verdict,
            "numeric_error": float(target.error) if verdict not in ("skipped", "surrogate") else None,
        }
        if target.rows is not None and verdict != "skipped":
            facts["numeric_rows"] = target.rows[0]
        if verdict == "skipped":
            facts["numeric_skip_reason"] = (
                target.skip_reasons[0] if target.skip_reasons else "no comparison could be made"
            )
            findings += _skipped_finding(target)
        if verdict == "surrogate":
            findings.append(_surrogate_finding(target))
        (tensor_updates if target.variable is not None else input_updates)[target.key] = facts
        location = target.location
        mismatch = next((m for v, m in target.messages if v == "mismatch"), None)
        kink = next((m for v, m in target.messages if v == "kink"), None)
        if mismatch:
            findings.append(
                finding(
                    codes.GRADIENT_MISMATCH,
                    target.name,
                    mismatch,
                    target.gradient_location or location,
                    # A wrong custom gradient gives every tensor behind it a mismatch: one entry.
                    cause=op_cause("CustomGradient", target.gradient_location) if target.custom_gradients else None,
                )
            )
        elif kink:
            findings.append(finding(codes.NON_DIFFERENTIABLE_POINT, target.name, kink, location))
    findings += fallback_findings(twin, targets, tensors, lambda dtype: tolerance_for(options, dtype).rtol)
    return tensor_updates, input_updates, findings


def _surrogate_finding(target):
    where = f" at {target.surrogate}" if target.surrogate else ""
    return finding(
        codes.SURROGATE_GRADIENT,
        target.name,
        f"`{target.name}` trains through a straight-through estimator{where}: the forward pass is flat almost "
        "everywhere (round, floor, sign, argmax, a cast), so its derivative is zero and finite differences "
        "see none, while the gradient fit() uses is the stand-in the layer chose. That is the estimator "
        "working as written, not a wrong gradient; the surrogate itself cannot be checked against "
        "finite differences.",
        target.surrogate or target.location,
    )
