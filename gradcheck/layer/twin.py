"""The float64 twin: the same layer, constructed again in float64, holding the same weights.

Finite differences in float32 cannot see a relative gradient error of 1e-3 (the rounding of the
loss swamps it at any step), so the comparison runs on a float64 copy of the layer. The copy is
made under the Keras float64 dtype policy rather than with `dtype=`: sublayers made in __init__
without a dtype would otherwise stay float32 and the call would fail on mixed dtypes (design notes 8).
The policy stays switched while the twin builds, because sublayers made in build() read it then.

When no faithful float64 copy can be made (the layer raised in float64, its weights have a
different layout, or its output differs from the original's), the check falls back to the
original float32 layer, with float32 steps and tolerances, and says why.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import LayerRaised, user_code
from ..runtime import backend
from . import state
from .calling import call_layer, float_outputs
from .precision import epsilon
from .rebuild import build_by_calling, construct, copy_values, pair_variables
from .source import error_text, user_frame_of

# The twin's float output must match the original's to this fraction of the output's largest
# magnitude: float32 rounding through a deep layer (an LSTM over a sequence) stays near 1e-5, a
# weight that was not copied moves it by O(1).
_SAME_OUTPUT = 1e-3


@dataclass
class Twin:
    """The layer finite differences run on, with its variables paired to the original's."""

    layer: Any
    dtype: str  # "float64" for a twin, "float32" when the original layer is used
    variables: dict  # id(original tf.Variable) -> the layer's tf.Variable to perturb
    inputs: list  # numpy inputs in the twin's float dtype (integer inputs unchanged)
    promote: bool = False  # built with float32 constants promoted to float64 (float64_policy)
    reason: str | None = None  # why the twin could not be used (float32 fallback), else None
    location: str | None = None  # the user's line the reason points at
    # (tf.Variable, value) restored before every pass: RNG states and non-trainable weights.
    seed_states: list = field(default_factory=list)

    def arithmetic(self):
        """The context the twin is traced and called in: float64 rules for a twin (float64_policy)."""
        return backend().float64_scope(self.promote) if self.dtype == "float64" else contextlib.nullcontext()

    def reset_seeds(self) -> None:
        """Give every forward pass the same random draws (dropout masks, noise) and the same state
        (BatchNormalization's moving statistics, which a training-mode pass moves)."""
        framework = backend()
        for variable, value in self.seed_states:
            framework.assign(variable, value)


def shared_twin(probe, variables, *, leading: int | None = None) -> Twin:
    """make_twin, made once per probe: the second-order check compares on the copy the
    finite-difference check made (every variable back at its value, every state reset before each
    pass), rather than constructing, building and verifying a second one. Only a float64 copy is
    shared; when the layer itself had to be used, each check makes its own decision again."""
    wanted = {id(backend().backing(v)) for v in variables}
    for twin in probe.twins:
        if twin.reason is None and wanted <= twin.variables.keys():
            return twin
    twin = make_twin(probe, variables, leading=leading)
    if twin.reason is None:
        probe.twins.append(twin)
    return twin


def release_twins(probe) -> None:
    """Let the float64 copies go once no check will compare on them again: a layer's float64 copy
    is twice the size of its weights, and the reload check after it makes copies of its own. A
    Keras layer holds reference cycles, so the collector is run to free it now, not later."""
    if probe.twins:
        probe.twins.clear()
        gc.collect()


def make_twin(probe, variables, *, leading: int | None = None) -> Twin:
    """A float64 twin of `probe.layer`, or the original layer with the reason it is used instead.

    Args:
        probe: the Probe.
        variables: the original tf.Variables (tracked or raw) whose gradients will be checked.
        leading: build the twin and compare it with the layer on this many leading samples of the
            batch (the samples finite differences run on, numeric/subbatch.py): a call of a wide
            layer in float64 costs as much as a finite-difference pass. Whatever fails on them
            (a batch size written into call()) is tried again on the whole batch.
    """
    if leading is not None:
        twin = _make_twin(probe, variables, leading)
        if twin.reason is None:
            return twin
    return _make_twin(probe, variables, None)


def _make_twin(probe, variables, leading: int | None) -> Twin:
    inputs64 = [a.astype("float64") if spec.is_float else a for a, spec in zip(probe.inputs, probe.input_specs)]
    built_on = [a[:leading] for a in inputs64] if leading is not None else inputs64
    promote = False
    try:
        twin = _construct_and_build(probe, built_on, False)
    except LayerRaised as raised:  # the layer cannot run in float64: whatever it raised, say so
        failure = raised.error
        try:  # a float32 constant meeting a float64 tensor: promoted, it runs
            twin, promote = _construct_and_build(probe, built_on, True), True
        except LayerRaised:
            return original_layer(
                probe,
                variables,
                f"the layer could not run in float64 ({type(failure).__name__}: {error_text(failure, 200)})",
                user_frame_of(failure),
            )
    pairs = pair_variables(probe, twin)
    if pairs is None:
        return original_layer(
            probe, variables, "the float64 copy of the layer holds different weights (names, shapes)", None
        )
    try:
        # A variable of the copy may refuse the original's value (a dtype or a shape Keras fixes
        # itself): any failure here is the copy's, and the layer itself is compared instead.
        with user_code("giving the float64 copy the layer's weights"):
            copy_values(pairs)
            states = seed_states(twin)
    except LayerRaised as raised:
        return original_layer(
            probe,
            variables,
            f"the float64 copy could not hold the layer's weights ({type(raised.error).__name__}: "
            f"{error_text(raised.error, 200)})",
            None,
        )
    result = Twin(
        layer=twin,
        dtype="float64",
        variables={id(o): c for o, c in pairs},
        inputs=inputs64,
        promote=promote,
        seed_states=states,
    )
    missing = [v for v in variables if id(backend().backing(v)) not in result.variables]
    if missing:
        return original_layer(probe, variables, "some of its variables have no counterpart in the float64 copy", None)
    try:
        difference = _output_difference(probe, result, leading)
    except LayerRaised as raised:  # the copy, or the layer beside it, raised when compared
        return original_layer(
            probe,
            variables,
            f"the float64 copy could not be compared with the layer ({raised.doing} raised "
            f"{type(raised.error).__name__}: {error_text(raised.error, 200)})",
            user_frame_of(raised.error),
        )
    if difference is not None:
        return original_layer(
            probe,
            variables,
            f"the float64 copy's output differs from the layer's by {difference:.1e} of its scale "
            "with the same weights (a value that set_weights cannot copy)",
            None,
        )
    return result


def _deterministic(probe):
    """`training` for the calls that build the twin and compare it with the layer: None (no
    dropout, whose float64 draws differ from float32's), or False under --no-training."""
    return False if probe.training is False else None


def _construct_and_build(probe, inputs64, promote: bool):
    _, keras = backend().modules()
    # The twin's weights are the layer's, copied once it is built: large ones skip their draw.
    with backend().float64_scope(promote), backend().unfilled_weights():
        twin = construct(probe, policy="float64")
        _force_float64(twin, keras)
        build_by_calling(probe, twin, [backend().constant(a) for a in inputs64], _deterministic(probe))
    return twin


def _force_float64(twin, keras) -> None:
    """Put every sublayer made so far under the float64 policy, whatever it was given.

    A layer made with `dtype="mixed_float16"` (or a constructor that pins any policy) would keep
    computing in float16 even under the float64 global policy, and finite differences in float16
    see nothing; sublayers made later, in build(), read the global policy, which is float64 here.
    """
    for sublayer in twin._flatten_layers(include_self=True, recursive=True):
        policy = getattr(sublayer, "dtype_policy", None)
        compute = getattr(policy, "compute_dtype", None)
        if compute in ("float16", "bfloat16", "float32") and not sublayer.built:
            sublayer.dtype_policy = keras.DTypePolicy("float64")


def seed_states(layer, *, as_is: bool = False) -> list:
    """(variable, value) restored before every pass: RNG and RNN state (state.py) and the
    non-trainable weights (BatchNormalization's statistics, which a training pass moves).
    `as_is` keeps the RNG states' current values: the user's own layer is left as it was."""
    pairs = state.fixed(layer, 0, rng=not as_is)
    seen = {id(variable) for variable, _ in pairs}
    if as_is:
        pairs += [
            (v, np.array(backend().to_numpy(v)))
            for v, what, _ in state.state_variables(layer).values()
            if what == state.SEED and id(v) not in seen
        ]
        seen = {id(variable) for variable, _ in pairs}
    for weight in layer.non_trainable_weights:
        variable = backend().backing(weight)
        if id(variable) not in seen:
            seen.add(id(variable))
            pairs.append((variable, backend().to_numpy(variable)))
    return pairs


def _output_difference(probe, twin: Twin, leading: int | None = None):
    """None when the twin computes what the layer computes (on the `leading` samples), else the
    relative difference."""
    twin.reset_seeds()
    with twin.arithmetic():
        inputs = [backend().constant(a[:leading]) for a in twin.inputs]
        result = call_layer(
            twin.layer, inputs, _deterministic(probe), probe.accepts_training, "calling the float64 copy"
        )
    twin.reset_seeds()
    flat = float_outputs(result)
    # The original is called again rather than compared with the probe's first output: the
    # probe's later calls in training mode moved its statistics (BatchNormalization's moving mean).
    states = state.snapshot(probe.layer) + seed_states(probe.layer)
    compute = str(getattr(probe.layer, "compute_dtype", "float32"))
    try:
        state.restore(state.fixed(probe.layer, probe.seed, rng=False))  # as the twin starts
        doing = "calling the layer to compare it with its float64 copy"
        originals = [backend().constant(a[:leading]) for a in probe.inputs]
        reference = call_layer(probe.layer, originals, _deterministic(probe), probe.accepts_training, doing)
        expected = float_outputs(reference)
        if len(flat) != len(expected):
            return 1.0
        worst = _relative_gap(flat, expected)
        # The layer's own rounding bounds how close the two can be: bfloat16 keeps 8 bits (eps 7.8e-3).
        allowed = max(_SAME_OUTPUT, 8 * epsilon(compute))
        if worst > allowed:
            # How far the layer's own output moves when its inputs move by a few rounding steps: on an
            # ill-conditioned input (a normalisation over nearly constant rows) float32 rounding alone
            # moves it far more than _SAME_OUTPUT, and the float64 copy is then the more exact of the
            # two. Asked only when the outputs differ by more than that: one call of the layer less.
            jittered = _jittered_inputs(probe, 4 * epsilon(compute), leading)
            state.restore(state.fixed(probe.layer, probe.seed, rng=False))
            doing = "calling the layer on slightly moved inputs"
            nearby = float_outputs(
                call_layer(probe.layer, jittered, _deterministic(probe), probe.accepts_training, doing)
            )
            allowed = max(allowed, 10 * _relative_gap(nearby, expected))
        return worst if worst > allowed else None
    finally:
        for variable, value in states:
            backend().assign(variable, value)


def _jittered_inputs(probe, relative: float, leading: int | None = None) -> list:
    """The probe's inputs (their `leading` samples) with each float entry moved by ±`relative` of
    itself (a fixed pattern)."""
    moved = []
    for index, array in enumerate(probe.inputs):
        array = array[:leading]
        if probe.input_specs[index].is_float:
            signs = np.where(np.arange(array.size).reshape(array.shape) % 2 == 0, 1.0, -1.0)
            array = (array * (1.0 + relative * signs)).astype(array.dtype)
        moved.append(backend().constant(array))
    return moved


def _relative_gap(ours, theirs) -> float:
    """Largest |a − b| over the largest |b|, over every pair of outputs; 1.0 for a shape mismatch."""
    worst = 0.0
    for one, other in zip(ours, theirs):
        a, b = np.asarray(backend().to_numpy(one), "float64"), np.asarray(backend().to_numpy(other), "float64")
        if a.shape != b.shape:
            return 1.0
        finite = np.isfinite(a) & np.isfinite(b)
        if not finite.any():
            continue
        scale = max(float(np.max(np.abs(b[finite]))), 1e-30)
        worst = max(worst, float(np.max(np.abs(a[finite] - b[finite]))) / scale)
    return worst


def original_layer(probe, variables, reason: str, location) -> Twin:
    """The original layer, used as it is in float32 when no faithful float64 twin exists."""
    compute = str(getattr(probe.layer, "compute_dtype", "float32"))
    return Twin(
        layer=probe.layer,
        dtype=compute if compute in ("float16", "bfloat16") else "float32",
        variables={id(backend().backing(v)): backend().backing(v) for v in variables},
        inputs=list(probe.inputs),
        reason=reason,
        location=location,
        seed_states=seed_states(probe.layer, as_is=True),
    )
