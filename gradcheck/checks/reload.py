"""The save/reload round trip: does the layer come back from its config and a `.keras` file intact?

Keras saves a layer as its class, its `get_config()` and its tracked weights (design notes
12). Two steps, cheapest first, on the probe's inputs in inference mode:

1. `type(layer).from_config(layer.get_config())`, built on the same inputs, given the same weights:
   what `load_model` does for each layer, without touching a disk;
2. `keras.saving.save_model` to a `.keras` file in a temporary folder, then `load_model` with every
   class of the layer as a custom object.

A step that raises is `reload-failed`; an output that differs afterwards is `reload-mismatch`, and
the finding names the cause when it can: a raw `tf.Variable` or constant that `call()` reads and
that came back with another value, or a constructor argument whose attribute differs. Raw variables
that `call()` reads are moved off their initial value before saving (as training would move them),
so one initialised with `tf.ones` is not missed because its reloaded value happens to be equal; the
values are put back afterwards. Nothing is written outside the temporary folder.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from ..errors import LayerRaised, user_code
from ..layer.calling import call_layer, float_outputs
from ..layer.rebuild import construct, copy_values, pair_variables
from ..layer.rows import variable_key
from ..runtime import backend
from .interface import CheckResult, Context
from .reload_findings import failed, mismatch

# Outputs of the reloaded layer must equal the original's to this fraction of the output's scale:
# the same weights and inputs give the same float32 results up to kernel scheduling (~1e-6).
_SAME_OUTPUT = 1e-4


@dataclass(frozen=True)
class Reload:
    """from_config(get_config()) and a .keras save and load_model: does the layer come back intact?"""

    stage = "saving and reloading the layer"
    needs_float_output = False

    @classmethod
    def from_options(cls, options) -> Reload | None:
        return cls() if options.reload else None

    def run(self, context: Context) -> CheckResult:
        status, findings, amended = check_reload(context.probe, context.tensors, context.findings)
        return CheckResult(findings=findings, report={"reload": status}, amended=amended)


def check_reload(probe, tensors, earlier=()) -> tuple[str, list, dict]:
    """Return (reload status for the Report, findings, earlier findings amended).

    The status is "ok", "failed", "mismatch" or "skipped: <reason>". A raw variable or constant
    that `earlier` findings (the inventory's) already report, and that comes back with another
    value, adds a sentence to that finding rather than a reload-mismatch of its own.
    """
    framework = backend()
    _, keras = framework.modules()
    skip = _reason_to_skip(probe, keras)
    if skip:
        return f"skipped: {skip}", [], {}
    training = False if probe.accepts_training else None
    moved = _move_raw_variables(probe, tensors, framework)
    try:
        reference = _float_outputs(probe.layer, probe.input_tensors(), training, probe.accepts_training, framework)
        again = _float_outputs(probe.layer, probe.input_tensors(), training, probe.accepts_training, framework)
        if _difference(reference, again) > _SAME_OUTPUT:
            return "skipped: the output differs between two calls even with training=False", [], {}
        for step, label in _STEPS.items():
            try:
                copy = step(probe, keras)
                # The copy raising when called is a reload problem too.
                outputs = _float_outputs(
                    copy, probe.input_tensors(), training, probe.accepts_training, framework, label
                )
            except LayerRaised as raised:
                # What a user loses: a model holding the layer that loads is only a bare save lost.
                if _loads_inside_a_model(probe, keras, reference, framework):
                    return "failed alone", [failed(probe, raised, alone=True)], {}
                return "failed", [failed(probe, raised)], {}
            difference = _difference(reference, outputs)
            if difference > _SAME_OUTPUT:
                return "mismatch", *mismatch(probe, tensors, copy, label, difference, framework, earlier)
            del copy, outputs  # gone before the next step makes its copy: a big layer's is big
        return "ok", [], {}
    finally:
        for variable, value in moved:
            framework.assign(variable, value)


def _reason_to_skip(probe, keras) -> str | None:
    layer = probe.layer
    if type(layer).__name__ == "Lambda":
        return "a Lambda layer's Python function is not saved by value"
    return None


def _move_raw_variables(probe, tensors, framework) -> list:
    """Shift every raw tf.Variable that call() reads off its value (returns what to restore)."""
    untracked = {key for key, row in tensors.keyed() if row.kind == "untracked" and row.read_by_call}
    moved = []
    for obj in probe.names.objects.values():
        if not framework.is_variable(obj) or not framework.is_float(obj):
            continue
        if variable_key(obj) not in untracked:
            continue
        value = framework.to_numpy(obj)
        moved.append((obj, value))
        framework.assign(obj, (value * 1.5 + 0.25).astype(value.dtype))
    return moved


def _float_outputs(layer, inputs, training, accepts_training, framework, after: str | None = None) -> list:
    """The float outputs as float64 arrays; a layer with none (Discretization) is compared on
    every tensor it returns, its integers included."""
    doing = f"calling the layer after {after}" if after else "calling the layer"
    result = call_layer(layer, inputs, training, accepts_training, doing)
    tensors = float_outputs(result) or _tensor_leaves(result, framework)
    return [np.asarray(framework.to_numpy(t), "float64") for t in tensors]


def _tensor_leaves(result, framework) -> list:
    if isinstance(result, dict):
        return [leaf for key in sorted(result, key=str) for leaf in _tensor_leaves(result[key], framework)]
    if isinstance(result, (list, tuple)):
        return [leaf for item in result for leaf in _tensor_leaves(item, framework)]
    return [result] if framework.is_tensor(result) else []


def _difference(expected: list, actual: list) -> float:
    """The largest difference relative to the output's scale; inf when the structure differs."""
    if len(expected) != len(actual):
        return float("inf")
    worst = 0.0
    for a, b in zip(expected, actual):
        if a.shape != b.shape:
            return float("inf")
        if not np.array_equal(np.isfinite(a), np.isfinite(b)):
            return float("inf")
        finite = np.isfinite(a)
        if finite.any():
            scale = max(float(np.max(np.abs(a[finite]))), 1e-30)
            worst = max(worst, float(np.max(np.abs(a[finite] - b[finite]))) / scale)
    return worst


def _from_config(probe, keras):
    """Step 1: a copy from the layer's config, built as load_model builds it, holding its weights."""
    layer = probe.layer
    # Its weights are the layer's, copied below: large ones skip their initializer's draw.
    with backend().unfilled_weights():
        # The custom classes inside a functional model are found by name, as load_model finds them.
        copy = construct(probe, from_config=True, custom_objects=_custom_objects(layer, keras))
        # Built as load_model builds it (build_from_config, then the weights, then the first call),
        # not by a call: a call() that derives an attribute from a weight (`self.kernel = self.kernel
        # / n`) must see the restored weights, as it does after a real load.
        with user_code("building the layer made by from_config(get_config())"):
            build_config = layer.get_build_config()
            if build_config and not copy.built:
                copy.build_from_config(build_config)
            if not copy.built or len(copy.weights) != len(layer.weights):
                call_layer(
                    copy, probe.input_tensors(), False if probe.accepts_training else None, probe.accepts_training
                )
    pairs = pair_variables(probe, copy, raw=False)  # raw variables are not saved: they stay as made
    if pairs is None:
        originals, copies = layer.weights, copy.weights
        raise LayerRaised(
            ValueError(
                f"it has {len(copies)} weights of shapes {[tuple(w.shape) for w in copies]}, the layer "
                f"{len(originals)} of shapes {[tuple(w.shape) for w in originals]}"
            ),
            "restoring the weights into the layer made by from_config(get_config())",
        )
    copy_values(pairs)
    return copy


def _save_and_load(probe, keras):
    """Step 2: the layer saved to a .keras file in a temporary folder and loaded back."""
    layer = probe.layer
    with tempfile.TemporaryDirectory(prefix="gradcheck-") as folder:
        # Large weights are saved as the unzipped .keras folder: the same config and weights file,
        # read by the same loader, without the archive's copy of the weights held in memory on
        # both the way out and the way in (twice a 100 MB embedding table).
        zipped = _weight_bytes(layer) < _UNZIPPED_FROM
        path = os.path.join(folder, "layer.keras" if zipped else "layer")
        with user_code("saving to a .keras file"):
            keras.saving.save_model(layer, path, zipped=zipped)
        # Large weights skip their initializer's draw: loading gives them the saved values.
        with user_code("load_model of the .keras file"), backend().unfilled_weights():
            # safe_mode=False: a Lambda inside would otherwise be refused by policy, not by a fault.
            return keras.saving.load_model(
                path, custom_objects=_custom_objects(layer, keras), compile=False, safe_mode=False
            )


_UNZIPPED_FROM = 64 << 20  # bytes of weights


def _weight_bytes(layer) -> int:
    """The bytes of the layer's weights (a dtype numpy does not name, float8, counted as one)."""
    framework = backend()
    return sum(math.prod(w.shape) * _itemsize(framework.dtype_name(framework.backing(w))) for w in layer.weights)


def _itemsize(dtype: str) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 1


_STEPS = {_from_config: "from_config(get_config())", _save_and_load: "a .keras save and load_model"}


def _loads_inside_a_model(probe, keras, reference: list, framework) -> bool:
    """Does a Functional model that calls a copy of the layer on its Input, given the layer's
    weights, save to a .keras file, load and compute what the layer computes?

    A layer whose sublayers are first built in call() fails load_model saved on its own, and loads
    inside such a model, which calls it on its Input while loading (docs/design-notes.md 19). A
    copy is used: calling the user's own layer on a symbolic Input could leave symbolic tensors on it.
    """
    training = False if probe.accepts_training else None
    try:
        copy = construct(probe)
        with user_code("building a Functional model that calls the layer on its Input"):
            inputs = [
                keras.Input(shape=spec.shape[1:], batch_size=spec.shape[0], dtype=spec.dtype)
                for spec in probe.input_specs
            ]
            outputs = call_layer(copy, inputs, None, probe.accepts_training)
            model = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs)
        pairs = pair_variables(probe, copy, raw=False)
        if pairs is None:
            return False
        copy_values(pairs)
        with tempfile.TemporaryDirectory(prefix="gradcheck-") as folder:
            path = os.path.join(folder, "model.keras")
            with user_code("saving a Functional model holding the layer"):
                keras.saving.save_model(model, path)
            with user_code("load_model of a Functional model holding the layer"):
                loaded = keras.saving.load_model(
                    path, custom_objects=_custom_objects(probe.layer, keras), compile=False, safe_mode=False
                )
        # A Model takes `training` whether or not the layer does.
        again = _float_outputs(loaded, probe.input_tensors(), training, True, framework, "loading it in a model")
    except LayerRaised:
        return False
    return _difference(reference, again) <= _SAME_OUTPUT


def _custom_objects(layer, keras) -> dict:
    """Every class in the layer, under the names Keras may have saved it by."""
    objects = {}
    for sublayer in layer._flatten_layers(include_self=True, recursive=True):
        cls = type(sublayer)
        objects[cls.__name__] = cls
        objects[keras.saving.get_registered_name(cls)] = cls
    return objects
