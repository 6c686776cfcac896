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

import inspect
import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np

from .. import codes
from ..errors import LayerRaised, user_code
from ..layer.calling import call_layer, float_outputs
from ..layer.rebuild import construct, copy_values, pair_variables
from ..layer.rows import variable_key
from ..layer.source import error_text, format_location, is_user_file, user_frame_of
from ..report import finding
from ..runtime import backend
from .interface import CheckResult, Context

# Outputs of the reloaded layer must equal the original's to this fraction of the output's scale:
# the same weights and inputs give the same float32 results up to kernel scheduling (~1e-6).
_SAME_OUTPUT = 1e-4


@dataclass(frozen=True)
class Reload:
    """from_config(get_config()) and a .keras save and load_model: does the layer come back intact?"""

    stage = "saving and reloading the layer"

    @classmethod
    def from_options(cls, options) -> Reload | None:
        return cls() if options.reload else None

    def run(self, context: Context) -> CheckResult:
        status, findings = check_reload(context.probe, context.tensors)
        return CheckResult(findings=findings, report={"reload": status})


def check_reload(probe, tensors) -> tuple[str, list]:
    """Return (reload status for the Report, findings).

    The status is "ok", "failed", "mismatch" or "skipped: <reason>".
    """
    framework = backend()
    _, keras = framework.modules()
    skip = _reason_to_skip(probe, keras)
    if skip:
        return f"skipped: {skip}", []
    training = False if probe.accepts_training else None
    moved = _move_raw_variables(probe, tensors, framework)
    try:
        reference = _float_outputs(probe.layer, probe.input_tensors(), training, probe.accepts_training, framework)
        again = _float_outputs(probe.layer, probe.input_tensors(), training, probe.accepts_training, framework)
        if _difference(reference, again) > _SAME_OUTPUT:
            return "skipped: the output differs between two calls even with training=False", []
        for step, label in _STEPS.items():
            try:
                copy = step(probe, keras)
                # The copy raising when called is a reload problem too.
                outputs = _float_outputs(
                    copy, probe.input_tensors(), training, probe.accepts_training, framework, label
                )
            except LayerRaised as raised:
                return "failed", [_failed(probe, raised)]
            difference = _difference(reference, outputs)
            if difference > _SAME_OUTPUT:
                return "mismatch", _mismatch(probe, tensors, copy, label, difference, framework)
        return "ok", []
    finally:
        for variable, value in moved:
            variable.assign(value)


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
        if not framework.is_variable(obj) or not obj.dtype.is_floating:
            continue
        if variable_key(obj) not in untracked:
            continue
        value = obj.numpy()
        moved.append((obj, value))
        obj.assign((value * 1.5 + 0.25).astype(value.dtype))
    return moved


def _float_outputs(layer, inputs, training, accepts_training, framework, after: str | None = None) -> list:
    doing = f"calling the layer after {after}" if after else "calling the layer"
    result = call_layer(layer, inputs, training, accepts_training, doing)
    return [np.asarray(t.numpy(), "float64") for t in float_outputs(result)]


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
    # The custom classes inside a functional model are found by name, as load_model finds them.
    copy = construct(probe, from_config=True, custom_objects=_custom_objects(layer, keras))
    # Built as load_model builds it (build_from_config, then the weights, then the first call), not
    # by a call: a call() that derives an attribute from a weight (`self.kernel = self.kernel / n`)
    # must see the restored weights, as it does after a real load.
    with user_code("building the layer made by from_config(get_config())"):
        build_config = layer.get_build_config()
        if build_config and not copy.built:
            copy.build_from_config(build_config)
        if not copy.built or len(copy.weights) != len(layer.weights):
            call_layer(copy, probe.input_tensors(), False if probe.accepts_training else None, probe.accepts_training)
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
        path = os.path.join(folder, "layer.keras")
        with user_code("saving to a .keras file"):
            keras.saving.save_model(layer, path)
        with user_code("load_model of the .keras file"):
            # safe_mode=False: a Lambda inside would otherwise be refused by policy, not by a fault.
            return keras.saving.load_model(
                path, custom_objects=_custom_objects(layer, keras), compile=False, safe_mode=False
            )


_STEPS = {_from_config: "from_config(get_config())", _save_and_load: "a .keras save and load_model"}


def _custom_objects(layer, keras) -> dict:
    """Every class in the layer, under the names Keras may have saved it by."""
    objects = {}
    for sublayer in layer._flatten_layers(include_self=True, recursive=True):
        cls = type(sublayer)
        objects[cls.__name__] = cls
        objects[keras.saving.get_registered_name(cls)] = cls
    return objects


# --- findings --------------------------------------------------------------------------------------


def _failed(probe, problem: LayerRaised):
    layer = probe.layer
    missing = _required_arguments_missing(layer)
    where = user_frame_of(problem.error) or _config_location(layer)
    reason = f"{type(problem.error).__name__}: {error_text(problem.error, 300)}"
    if missing:
        names = ", ".join(f"`{m}`" for m in missing)
        advice = (
            f"get_config() does not return the constructor argument{'s' * (len(missing) > 1)} {names}, "
            f"so from_config() cannot construct the layer and load_model fails the same way. Add "
            f"{'them' if len(missing) > 1 else 'it'} to the dict get_config() returns."
        )
        return finding(
            codes.RELOAD_FAILED,
            ", ".join(missing),
            f"{problem.doing} raised ({reason}). {advice}",
            _config_location(layer) or where,
        )
    unbuilt = _UNBUILT.search(str(problem.error))
    if unbuilt:
        return finding(
            codes.RELOAD_FAILED, None, f"{problem.doing} raised ({reason}). {_unbuilt_advice(layer, unbuilt[1])}", where
        )
    return finding(
        codes.RELOAD_FAILED,
        None,
        f"{problem.doing} raised ({reason}), so a model holding this layer cannot be saved and loaded "
        "again. Make get_config() return every constructor argument, create weights in build(), and "
        "register the class with @keras.saving.register_keras_serializable().",
        where,
    )


# Keras's words when load_model finds a sublayer with saved weights but no variables of its own.
_UNBUILT = re.compile(r"<(\w+) name=[^,>]*, built=False>:\s*Layer '[^']*' was never built")


def _unbuilt_advice(layer, class_name: str) -> str:
    """A sublayer made in __init__ that only the layer's first call builds: a layer loaded alone is
    built from its saved input shape by its own build(), which leaves that sublayer without the
    variables its saved weights are for. (A Functional model calls the layer on its Input, which
    builds the sublayer, and loads; checked with Keras 3.15.)"""
    # The attribute to build: the unbuilt sublayer itself, or the one holding it (an RNN's cell).
    holders = [
        (key, value)
        for key, value in vars(layer).items()
        if hasattr(value, "_flatten_layers")
        and any(type(sub).__name__ == class_name for sub in value._flatten_layers(include_self=True, recursive=True))
    ]
    if len(holders) == 1:
        key, holder = holders[0]
        sublayer = f"self.{key}" + ("" if type(holder).__name__ == class_name else f" (and the {class_name} in it)")
        example = f"self.{key}.build(input_shape)"
    else:
        sublayer, example = f"a {class_name} sublayer", "self.sublayer.build(input_shape)"
    return (
        f"The layer builds {sublayer} only when it is first called, not in build(): loaded on its own, "
        "the layer is built from its saved input shape and the sublayer is left without the variables "
        "its saved weights are for (a Functional model that calls the layer on its Input is spared). "
        f"Build it in the layer's build(), e.g. `{example}`."
    )


def _mismatch(probe, tensors, copy, step: str, difference: float, framework) -> list:
    findings = []
    reloaded_names = None
    for row in tensors:
        if row.kind not in ("untracked", "constant") or not row.read_by_call:
            continue
        if reloaded_names is None:
            from ..layer.naming import Names

            reloaded_names = Names(copy, framework)
        if _same_value_at(probe, reloaded_names, copy, row.name, framework):
            continue
        what = "raw tf.Variable" if row.kind == "untracked" else "constant"
        findings.append(
            finding(
                codes.RELOAD_MISMATCH,
                row.name,
                f"After {step} the output differs by {difference:.1e} of its scale: `{row.name}` is a {what} "
                "that call() reads, and it is not saved with the layer, so it comes back with another value. "
                "Make it with `self.add_weight(...)` in build() (trainable=False if it must stay fixed).",
                row.created_at,
            )
        )
    # --init goes to the constructor only when TARGET names the class (not a factory's arguments).
    names_class = (
        probe.loaded.make is not None
        and probe.loaded.target.rsplit(":", 1)[-1].split(".")[-1] == type(probe.layer).__name__
    )
    for argument in _arguments_that_differ(probe.layer, copy, probe.loaded.init if names_class else {}):
        findings.append(
            finding(
                codes.RELOAD_MISMATCH,
                argument,
                f"After {step} the output differs by {difference:.1e} of its scale: the constructor argument "
                f"`{argument}` comes back with another value, because get_config() does not return it (or "
                "returns another value), so the reloaded layer falls back to its default. Return it from get_config().",
                _config_location(probe.layer),
            )
        )
    if not findings:
        findings.append(
            finding(
                codes.RELOAD_MISMATCH,
                None,
                f"After {step} the layer's output differs by {difference:.1e} of its scale with the same "
                "weights and inputs: something call() depends on is not in get_config() or in the saved weights. "
                "Return every constructor argument from get_config() and keep state in add_weight variables.",
                _config_location(probe.layer),
            )
        )
    return findings


def _same_value_at(probe, reloaded_names, copy, name: str, framework) -> bool:
    original = _object_at(probe.names, probe.layer, name, framework)
    other = _object_at(reloaded_names, copy, name, framework)
    if original is None or other is None:
        return original is other
    if original is other:
        return True  # a module global both read: not the layer's to save
    try:
        # Tensors, variables and arrays: `numpy()` and a numpy comparison, the layer's own values.
        with user_code("reading a value the layer holds"):
            return np.array_equal(
                np.asarray(original.numpy() if hasattr(original, "numpy") else original),
                np.asarray(other.numpy() if hasattr(other, "numpy") else other),
            )
    except LayerRaised:
        return False


def _object_at(names, root, name: str, framework):
    for key, obj in names.objects.items():
        place = names.places.get(key)
        if framework.is_variable(obj):
            if names.variable_name(obj, root) == name:
                return obj
        elif place is not None and place.path == name:
            return obj
    return None


def _arguments_that_differ(layer, copy, init: dict) -> list[str]:
    """Constructor arguments whose attribute of the same name differs between layer and copy."""
    differ = []
    for name in (p.name for p in _constructor_parameters(layer)):
        if not hasattr(layer, name) or not hasattr(copy, name):
            continue
        if name in ("name", "dtype", "trainable"):
            continue
        if not _equal(getattr(layer, name), getattr(copy, name)):
            differ.append(name)
    config = _safe_config(layer)
    for name in init:  # given on the command line, absent from the config, with no attribute
        if config is not None and name not in config and name not in differ and not hasattr(layer, name):
            differ.append(name)
    return differ


def _equal(a, b) -> bool:
    """Whether two attribute values are equal; `==` is the value's own code (a user class's __eq__)."""
    try:
        with user_code("comparing a constructor argument after a reload"):
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                return bool(np.array_equal(a, b))
            return bool(a == b)
    except LayerRaised:
        return a is b


def _constructor_parameters(layer) -> list:
    try:
        parameters = inspect.signature(type(layer).__init__).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p for p in parameters if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _required_arguments_missing(layer) -> list[str]:
    config = _safe_config(layer)
    if config is None:
        return []
    return [p.name for p in _constructor_parameters(layer) if p.default is p.empty and p.name not in config]


def _safe_config(layer):
    try:
        with user_code("get_config()"):
            return layer.get_config()
    except LayerRaised:
        return None


def _config_location(layer) -> str | None:
    """The user's get_config() line, else the class line: where a config problem is fixed."""
    cls = type(layer)
    for target in (cls.__dict__.get("get_config"), cls):
        if target is None:
            continue
        try:
            filename = inspect.getsourcefile(target)
            line = inspect.getsourcelines(target)[1]
        except (TypeError, OSError):
            continue
        if filename and is_user_file(filename):
            return format_location(filename, line)
    return None
