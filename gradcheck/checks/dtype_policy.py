"""The layer under a low-precision Keras dtype policy, compared with its float32 run.

For each `--dtype-policy` the layer is constructed again with that policy switched on (so
sublayers made in __init__ or build() follow it, as for the float64 twin, design notes 8), given the
layer's weights and called on the same inputs in inference mode. Three things can go wrong:

- a float output is not in the policy's compute dtype (`dtype-policy-ignored`): the layer casts
  back to float32 somewhere, so it gets no speed-up and the next layer a dtype it did not expect.
  The Cast from the compute dtype on the output's path is named at its line in the user's code;
- an output or a gradient loses its value (`low-precision-loss`): it flushes to zero, overflows, or
  differs from float32 far beyond the compute dtype's rounding. Gradients are taken as fit() takes
  them: under mixed_float16 the loss is multiplied by LossScaleOptimizer's initial scale 2**15
  before the backward pass and the gradients divided by it afterwards (design notes 13: compile() wraps
  the optimizer); if that overflows, once more unscaled, as the dynamic scale would settle;
- a weight that is not float32 under a mixed_* policy (`low-precision-weight`): its updates are
  rounded away in float16/bfloat16 (Keras's own layer tests assert float32 weights).

Cost: one forward+backward pass per policy (two when the scaled one overflows); the graph is
traced and every tensor evaluated only when a finding has to be located.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import codes
from ..errors import LayerRaised, sentence
from ..layer.probe import location_of_variable
from ..layer.rebuild import build_by_calling, construct, copy_values, pair_variables, policy_scope
from ..layer.source import error_text, user_frame_of
from ..report import PolicyResult, finding
from ..runtime import backend
from .interface import CheckResult, Context

_COMPUTE = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16", "float16": "float16", "bfloat16": "bfloat16"}
_LOSS_SCALE = {"mixed_float16": 2.0**15}  # keras.optimizers.LossScaleOptimizer(initial_scale=2**15)
# "Far beyond the precision": 50 rounding steps of the compute dtype (float16 2**-10, bfloat16 2**-7),
# relative to the tensor's norm. A layer's own rounding through a few matmuls and a softmax stays
# within a few steps; a flushed or saturated value is off by O(1).
_TOLERANCE = {"float16": 50 * 2.0**-10, "bfloat16": 50 * 2.0**-7}
# A gradient is measured against max(its norm, this fraction of the layer's largest gradient
# norm): a gradient that is pure float32 rounding noise (MultiHeadAttention's key bias) has no
# relative precision to lose.
_NOISE_FLOOR = 1e-2
_RANGE = {"float16": "6e-8 .. 65504", "bfloat16": "1e-38 .. 3e38, with 3 significant digits"}


@dataclass(frozen=True)
class DtypePolicies:
    """The layer under each --dtype-policy, compared with its float32 run."""

    policies: tuple[str, ...]
    stage = "running the layer under the dtype policies"

    @classmethod
    def from_options(cls, options) -> DtypePolicies | None:
        return cls(options.dtype_policies) if options.dtype_policies else None

    def run(self, context: Context) -> CheckResult:
        results, findings = check_dtype_policies(context.probe, context.tensors, context.inputs, self.policies)
        return CheckResult(findings=findings, report={"dtype_policies": tuple(results)})


def check_dtype_policies(probe, tensors, inputs, policies: tuple[str, ...]) -> tuple[list, list]:
    """Return ([PolicyResult per policy], findings)."""
    reference = _outputs_and_gradients(probe, probe.layer, list(probe.layer.trainable_weights), 1.0)
    sources = [probe.tensor_name(v) for v in probe.layer.trainable_weights]
    sources += [inputs[i].name for i in probe.float_input_indexes]
    results, findings = [], []
    for policy in policies:
        result, made = _check_policy(probe, policy, reference, sources)
        results.append(result)
        findings += made
    return results, findings


def _check_policy(probe, policy: str, reference: dict, sources: list):
    _, keras = backend().modules()
    compute = _COMPUTE[policy]
    try:
        copy = _construct(probe, policy)
    except LayerRaised as raised:
        error = raised.error
        where = user_frame_of(error)
        reason = f"raised: {type(error).__name__}: {error_text(error, 200)}"
        return PolicyResult(policy, compute, status=reason), [
            finding(
                codes.LOW_PRECISION_LOSS,
                None,
                f"Under the {policy} dtype policy the layer raised {type(error).__name__}: {sentence(error_text(error, 300))} "
                "A layer that mixes dtypes must cast explicitly to self.compute_dtype.",
                where,
            )
        ]
    pairs = pair_variables(probe, copy)
    if pairs is None:
        return PolicyResult(policy, compute, status="skipped: the copy holds different weights"), []
    copy_values(pairs)
    findings = _weight_findings(probe, copy, policy, keras)
    copied = {id(o): c for o, c in pairs}
    variables = [copied[id(backend().backing(v))] for v in probe.layer.trainable_weights]
    scale = _LOSS_SCALE.get(policy, 1.0)
    ours = _outputs_and_gradients(probe, copy, variables, scale)
    if scale != 1.0 and not all(g is None or np.all(np.isfinite(g)) for g in ours["grads"]):
        ours = _outputs_and_gradients(probe, copy, variables, 1.0)  # the dynamic loss scale halves until it fits

    output_dtypes = tuple(ours["dtypes"])
    located = backend().policy_locator(probe, copy, compute, lambda xs: _taped(probe, copy, xs, variables, scale))
    ignored = [n for n, d in zip(probe.output_names, output_dtypes) if d != compute]
    if ignored:
        cast = located.cast_location()
        findings.append(
            finding(
                codes.DTYPE_POLICY_IGNORED,
                ignored[0],
                f"Under the {policy} dtype policy the layer's {ignored[0]} is "
                f"{output_dtypes[probe.output_names.index(ignored[0])]}, not {compute}"
                + (f": the value leaves {compute} at {cast}" if cast else "")
                + ". The layer gets no speed-up from the policy and hands the next layer an unexpected dtype. "
                "Compute in self.compute_dtype; if one op needs float32, cast its result back "
                "(`ops.cast(y, self.compute_dtype)`).",
                cast,
            )
        )
    worst_output = 0.0
    for name, expected, actual in zip(probe.output_names, reference["outputs"], ours["outputs"]):
        difference, how = _loss(expected, actual, float(np.linalg.norm(expected)), compute)
        worst_output = max(worst_output, difference)
        if how:
            findings.append(
                _loss_finding(name, f"the {name}", how, difference, policy, compute, located, ("outputs", name))
            )
    largest = max([float(np.linalg.norm(g)) for g in reference["grads"] if g is not None] or [0.0])
    gradient_errors = {}
    for index, (name, expected, actual) in enumerate(zip(sources, reference["grads"], ours["grads"])):
        if expected is None or actual is None:
            continue
        floor = max(float(np.linalg.norm(expected)), _NOISE_FLOOR * largest)
        difference, how = _loss(expected, actual, floor, compute)
        gradient_errors[name] = difference
        if how:
            findings.append(
                _loss_finding(
                    name, f"the gradient of `{name}`", how, difference, policy, compute, located, ("grads", index)
                )
            )
    status = (
        "loss" if any(f.code == codes.LOW_PRECISION_LOSS.name for f in findings) else ("ignored" if ignored else "ok")
    )
    return PolicyResult(policy, compute, output_dtypes, worst_output, gradient_errors, status), findings


def _construct(probe, policy: str):
    with policy_scope(policy):
        copy = construct(probe, policy=policy)
        build_by_calling(probe, copy, probe.input_tensors(), _training(probe))
    return copy


def _training(probe):
    # Inference mode: dropout and noise draw nothing, so the two runs see the same computation.
    return False if probe.accepts_training else None


def _outputs_and_gradients(probe, layer, variables: list, scale: float) -> dict:
    """Outputs (float64 numpy), their dtypes, and the gradients of the probe loss times `scale`,
    divided by it again, for `variables` and the float inputs."""
    framework = backend()
    taped = _taped(probe, layer, probe.input_tensors(), variables, scale)
    return {
        "outputs": [np.asarray(framework.to_numpy(o), "float64") for o in taped.outputs],
        "dtypes": [framework.dtype_name(o) for o in taped.outputs],
        "grads": [None if g is None else np.asarray(framework.to_numpy(g), "float64") / scale for g in taped.grads],
    }


def _taped(probe, layer, xs: list, variables: list, scale: float):
    """The probe loss times `scale` and its gradients, as fit() takes them under the policy."""
    return backend().gradients(
        layer,
        xs,
        probe.projections_for("false" if probe.accepts_training else "n/a"),
        training=_training(probe),
        accepts_training=probe.accepts_training,
        variables=variables,
        float_indexes=probe.float_input_indexes,
        batch=probe.batch_size,
        scale=scale,
    )


def _loss(expected, actual, floor: float, compute: str) -> tuple[float, str | None]:
    """(relative difference, how the value was lost or None)."""
    expected = np.asarray(expected, "float64")
    actual = np.asarray(actual, "float64")
    if not np.all(np.isfinite(actual)) and np.all(np.isfinite(expected)):
        return float("inf"), "overflows to inf/NaN"
    error = float(np.linalg.norm(actual - expected)) / max(floor, 1e-30)
    nonzero = expected != 0
    if nonzero.any() and np.mean(actual[nonzero] == 0) > 0.5:
        return error, f"flushes to zero ({np.mean(actual[nonzero] == 0):.0%} of its nonzero entries)"
    if error > _TOLERANCE[compute]:
        return error, f"differs from float32 by {error:.1e} of its norm"
    return error, None


def _loss_finding(name, subject, how, error, policy, compute, located, target):
    op, where = located.first_loss(target, how)
    at = f", first at the {op} op at {where}" if where else ""
    return finding(
        codes.LOW_PRECISION_LOSS,
        name,
        f"Under the {policy} dtype policy {subject} {how}{at} ({compute} holds {_RANGE[compute]}). "
        "Training on it under this policy learns from garbage. Compute that op in float32 (cast its "
        "inputs with `ops.cast(x, 'float32')` and the result back to self.compute_dtype, or give that "
        "sublayer dtype='float32'), or rescale the values so they stay within range.",
        where,
    )


def _weight_findings(probe, copy, policy: str, keras) -> list:
    if not policy.startswith("mixed_"):
        return []
    findings = []
    for original, weight in zip(probe.layer.weights, copy.weights):
        if weight.dtype in ("float16", "bfloat16") or str(weight.dtype) in ("float16", "bfloat16"):
            name = probe.tensor_name(original)
            findings.append(
                finding(
                    codes.LOW_PRECISION_WEIGHT,
                    name,
                    f"Under the {policy} dtype policy `{name}` is a {weight.dtype} weight. Mixed precision keeps "
                    "weights in float32 so small optimizer steps are not rounded away; create it with "
                    "add_weight's default dtype (the policy's variable dtype), not self.compute_dtype.",
                    location_of_variable(probe, original),
                )
            )
    return findings
