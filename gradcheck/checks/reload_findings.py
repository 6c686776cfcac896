"""What the save/reload round trip says: why a step raised (a constructor argument get_config()
leaves out, a sublayer only the first call builds), and which tensor or argument comes back with
another value. checks/reload.py runs the steps.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

import numpy as np

from .. import codes
from ..errors import LayerRaised, user_code
from ..layer.source import error_text, format_location, is_user_file, user_frame_of
from ..report import finding


def failed(probe, problem: LayerRaised, *, alone: bool = False):
    """reload-failed, or with `alone` (a Functional model holding the layer saves and loads, the
    layer saved on its own does not) reload-failed-alone: the severity follows what a user loses."""
    layer = probe.layer
    code = codes.RELOAD_FAILED_ALONE if alone else codes.RELOAD_FAILED
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
            code, ", ".join(missing), f"{problem.doing} raised ({reason}). {advice}", _config_location(layer) or where
        )
    alone_note = (
        " Only the layer saved on its own is lost: a Functional model that calls it on its Input saves, "
        "loads and computes the same (checked)."
        if alone
        else ""
    )
    unbuilt = _UNBUILT.search(str(problem.error))
    if unbuilt:
        advice = _unbuilt_advice(layer, unbuilt[1], alone)
        return finding(code, None, f"{problem.doing} raised ({reason}).{alone_note} {advice}", where)
    consequence = (
        alone_note
        if alone
        else ", so a model holding this layer cannot be saved and loaded again (a Functional model that "
        "calls it on its Input fails too)."
    )
    return finding(
        code,
        None,
        f"{problem.doing} raised ({reason}){'.' if alone else ''}{consequence} Make get_config() return every "
        "constructor argument, create weights in build(), and register the class with "
        "@keras.saving.register_keras_serializable().",
        where,
    )


# Keras's words when load_model finds a sublayer with saved weights but no variables of its own.
_UNBUILT = re.compile(r"<(\w+) name=[^,>]*, built=False>:\s*Layer '[^']*' was never built")


def _unbuilt_advice(layer, class_name: str, alone: bool) -> str:
    """A sublayer made in __init__ that only the layer's first call builds: a layer loaded alone is
    built from its saved input shape by its own build(), which leaves that sublayer without the
    variables its saved weights are for. (A Functional model calls the layer on its Input, which
    builds the sublayer, and loads, design notes 19: reload.py checks it, and `alone` says it did.)"""
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
        f"its saved weights are for{'' if alone else ' (and here a Functional model holding it fails as well)'}. "
        f"Build it in the layer's build(), e.g. `{example}`."
    )


# The inventory's findings on a tensor the saved model cannot hold: a reload that loses its value is
# the same root cause, told in that finding (one cause, one finding), not in a reload-mismatch.
_NOT_SAVED = (codes.UNTRACKED_VARIABLE.name, codes.CONSTANT_TENSOR.name)


def mismatch(probe, tensors, copy, step: str, difference: float, framework, earlier=()) -> tuple[list, dict]:
    """(reload-mismatch findings, {earlier finding: the same finding saying the reload lost the value})."""
    findings: list = []
    amended: dict = {}
    reloaded_names = None
    for row in tensors:
        if row.kind not in ("untracked", "constant") or not row.read_by_call:
            continue
        if reloaded_names is None:
            from ..layer.naming import Names

            reloaded_names = Names(copy, framework)
        if _same_value_at(probe, reloaded_names, copy, row.name, framework):
            continue
        explained = next((f for f in earlier if f.code in _NOT_SAVED and f.tensor == row.name), None)
        if explained is not None and explained not in amended:
            amended[explained] = dataclasses.replace(
                explained,
                message=f"{explained.message} The saved model loses its value: after {step} the layer's "
                f"output differs by {difference:.1e} of its scale.",
            )
            continue
        what = f"raw {framework.words.raw_variable}" if row.kind == "untracked" else "constant"
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
    if not findings and not amended:
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
    return findings, amended


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
                np.asarray(framework.to_numpy(original)),
                np.asarray(framework.to_numpy(other)),
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
