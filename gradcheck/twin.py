"""The float64 twin: the same layer, constructed again in float64, holding the same weights.

Finite differences in float32 cannot see a relative gradient error of 1e-3 (the rounding of the
loss swamps it at any step), so the comparison runs on a float64 copy of the layer. The copy is
made under the Keras float64 dtype policy rather than with `dtype=`: sublayers made in __init__
without a dtype would otherwise stay float32 and the call would fail on mixed dtypes (NOTES.md 8).
The policy stays switched while the twin builds, because sublayers made in build() read it then.

When no faithful float64 copy can be made (the layer raised in float64, its weights have a
different layout, or its output differs from the original's), the check falls back to the
original float32 layer, with float32 steps and tolerances, and says why.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .loading import error_text, user_frame_of
from .probe import backing, call_layer
from .runtime import tensorflow

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
    reason: str | None = None  # why the twin could not be used (float32 fallback), else None
    location: str | None = None  # the user's line the reason points at
    # (tf.Variable, value) restored before every pass: RNG states and non-trainable weights.
    seed_states: list = field(default_factory=list)

    def reset_seeds(self) -> None:
        """Give every forward pass the same random draws (dropout masks, noise) and the same state
        (BatchNormalization's moving statistics, which a training-mode pass moves)."""
        for variable, value in self.seed_states:
            variable.assign(value)


@contextlib.contextmanager
def float64_policy(keras):
    # floatx too: `keras.Input(shape)` takes its dtype from floatx, not from the policy, so a
    # functional model's copy would otherwise round its float64 input to float32 at the door.
    previous, previous_floatx = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_dtype_policy("float64")
    keras.config.set_floatx("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous)


def make_twin(probe, variables) -> Twin:
    """A float64 twin of `probe.layer`, or the original layer with the reason it is used instead.

    Args:
        probe: the Probe.
        variables: the original tf.Variables (tracked or raw) whose gradients will be checked.
    """
    tf, keras = tensorflow()
    inputs64 = [a.astype("float64") if spec.is_float else a for a, spec in zip(probe.inputs, probe.options.inputs)]
    try:
        twin = _construct_and_build(probe, inputs64)
    except Exception as error:  # the layer cannot run in float64: whatever it raised, say so
        where = user_frame_of(error)
        return original_layer(
            probe,
            variables,
            f"the layer could not run in float64 ({type(error).__name__}: {error_text(error, 200)})",
            where,
        )
    pairs = _pair_variables(probe, twin, tf, keras)
    if pairs is None:
        return original_layer(probe, variables, "the float64 copy of the layer holds different weights (names, shapes)", None)
    for original, copy in pairs:
        copy.assign(np.asarray(original.numpy()).astype(copy.dtype.as_numpy_dtype))
    result = Twin(
        layer=twin,
        dtype="float64",
        variables={id(o): c for o, c in pairs},
        inputs=inputs64,
        seed_states=seed_states(twin, keras),
    )
    missing = [v for v in variables if id(backing(v, keras)) not in result.variables]
    if missing:
        return original_layer(probe, variables, "some of its variables have no counterpart in the float64 copy", None)
    difference = _output_difference(probe, result, tf)
    if difference is not None:
        return original_layer(
            probe,
            variables,
            f"the float64 copy's output differs from the layer's by {difference:.1e} of its scale "
            "with the same weights (a value that set_weights cannot copy)",
            None,
        )
    return result


def _construct_and_build(probe, inputs64):
    tf, keras = tensorflow()
    layer = probe.layer
    with float64_policy(keras):
        if probe.loaded.make is not None:
            twin = probe.loaded.make()
        else:
            config = layer.get_config()
            if "dtype" in config:
                config["dtype"] = "float64"  # the saved policy would otherwise pin float32
            twin = type(layer).from_config(config)
        call_layer(twin, [tf.constant(a) for a in inputs64], None, probe.accepts_training)
    return twin


def _pair_variables(probe, twin, tf, keras):
    """(original tf.Variable, twin tf.Variable) for every weight, and raw tf.Variables by path.

    set_weights would pair tracked weights by position; doing it here keeps raw tf.Variables
    (which Keras 3 does not track, NOTES.md 1) in the same pass: they are paired by attribute path.
    """
    originals, copies = probe.layer.weights, twin.weights
    if len(originals) != len(copies) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(originals, copies)):
        return None
    pairs = [(backing(a, keras), backing(b, keras)) for a, b in zip(originals, copies)]
    tracked = {id(v) for v, _ in pairs}
    from .naming import Names

    twin_names = Names(twin, tf, keras)
    by_path = {}
    for obj in twin_names.objects.values():
        if isinstance(obj, tf.Variable):
            by_path.setdefault(twin_names.variable_name(obj, twin), obj)
    for obj in probe.names.objects.values():
        if isinstance(obj, tf.Variable) and id(obj) not in tracked:
            copy = by_path.get(probe.names.variable_name(obj, probe.layer))
            if copy is not None and tuple(copy.shape) == tuple(obj.shape) and copy.dtype.is_floating == obj.dtype.is_floating:
                pairs.append((obj, copy))
                tracked.add(id(obj))
    return pairs


def seed_states(layer, keras) -> list:
    """The RNG states of Keras SeedGenerators and the non-trainable weights, with their values."""
    variables = {}
    for sublayer in layer._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(sublayer, "_seed_generators", []) or []:
            state = getattr(generator, "state", None)
            if state is not None:
                variables[id(backing(state, keras))] = backing(state, keras)
    for weight in layer.non_trainable_weights:
        variables[id(backing(weight, keras))] = backing(weight, keras)
    return [(variable, variable.numpy()) for variable in variables.values()]


def _output_difference(probe, twin: Twin, tf):
    """None when the twin computes what the layer computes, else the relative difference."""
    twin.reset_seeds()
    result = call_layer(twin.layer, [tf.constant(a) for a in twin.inputs], None, probe.accepts_training)
    twin.reset_seeds()
    flat = [t for t in tf.nest.flatten(result) if tf.is_tensor(t) and t.dtype.is_floating]
    # The original is called again rather than compared with the probe's first output: the
    # probe's later calls in training mode moved its statistics (BatchNormalization's moving mean).
    _, keras = tensorflow()
    states = seed_states(probe.layer, keras)
    reference = call_layer(probe.layer, probe.input_tensors(), None, probe.accepts_training)
    for variable, value in states:
        variable.assign(value)
    expected = [t for t in tf.nest.flatten(reference) if tf.is_tensor(t) and t.dtype.is_floating]
    if len(flat) != len(expected):
        return 1.0
    worst = 0.0
    for ours, theirs in zip(flat, expected):
        a, b = np.asarray(ours.numpy(), "float64"), np.asarray(theirs.numpy(), "float64")
        if a.shape != b.shape:
            return 1.0
        finite = np.isfinite(a) & np.isfinite(b)
        if not finite.any():
            continue
        scale = max(float(np.max(np.abs(b[finite]))), 1e-30)
        worst = max(worst, float(np.max(np.abs(a[finite] - b[finite]))) / scale)
    return worst if worst > _SAME_OUTPUT else None


def original_layer(probe, variables, reason: str, location) -> Twin:
    """The original layer, used as it is in float32 when no faithful float64 twin exists."""
    _, keras = tensorflow()
    return Twin(
        layer=probe.layer,
        dtype="float32",
        variables={id(backing(v, keras)): backing(v, keras) for v in variables},
        inputs=list(probe.inputs),
        reason=reason,
        location=location,
        seed_states=seed_states(probe.layer, keras),
    )
