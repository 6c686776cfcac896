"""The one way gradcheck makes a second copy of the layer: under a dtype policy, from its constructor
or its config, built, and holding the original's weights.

Three checks need a copy: the float64 twin (finite differences, twin.py), the copy under each
`--dtype-policy` (checks/dtype_policy.py) and the copy `load_model` would make (checks/reload.py).
The copy is constructed with the policy switched on globally, not only passed as `dtype=`: a
sublayer made in `__init__` or `build()` without a dtype reads the global policy then (docs/design-notes.md 8). Every call into the layer's code goes through `user_code`, so what it
raises reaches the check as LayerRaised, with the step that raised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..errors import user_code
from ..runtime import backend
from .calling import call_layer
from .naming import Names


@contextlib.contextmanager
def policy_scope(policy: str) -> Iterator[None]:
    """Keras's global dtype policy set to `policy` for the duration."""
    _, keras = backend().modules()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def construct(probe, *, policy: str | None = None, from_config: bool = False, custom_objects=None):
    """A new, unbuilt layer like `probe.layer`.

    From the constructor with the same --init keywords (`probe.loaded.make`), unless `from_config`
    or the target was an instance; else `type(layer).from_config(layer.get_config())`, with the
    config's own dtype set to `policy` (a saved policy would pin float32 otherwise) and the layer's
    classes findable by name (`custom_objects`), as load_model finds them.
    """
    layer = probe.layer
    if probe.loaded.make is not None and not from_config:
        with user_code("constructing the layer again"):
            return probe.loaded.make()
    with user_code("get_config()"):
        config = layer.get_config()
    if policy is not None and "dtype" in config:
        config["dtype"] = policy
    _, keras = backend().modules()
    scope = keras.saving.CustomObjectScope(custom_objects) if custom_objects else contextlib.nullcontext()
    with user_code("from_config(get_config())"), scope:
        return type(layer).from_config(config)


def build_by_calling(probe, copy, inputs: list, training) -> None:
    """Build `copy` as the probe built the layer: by calling it on `inputs` (tensors)."""
    call_layer(copy, inputs, training, probe.accepts_training, "building the copy by calling it")


def pair_variables(probe, copy, *, raw: bool = True):
    """(original tf.Variable, copy's tf.Variable) for every weight, or None when the two hold
    different weights (another count or shapes).

    Tracked weights are paired by position, as set_weights would; with `raw`, raw tf.Variables
    (which Keras 3 does not track, design notes 1) are paired too, by attribute path.
    """
    framework = backend()
    originals, copies = probe.layer.weights, copy.weights
    if len(originals) != len(copies) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(originals, copies)):
        return None
    pairs = [(framework.backing(a), framework.backing(b)) for a, b in zip(originals, copies)]
    if not raw:
        return pairs
    tracked = {id(v) for v, _ in pairs}
    copy_names = Names(copy, framework)
    by_path: dict[str, Any] = {}
    for obj in copy_names.objects.values():
        if framework.is_variable(obj):
            by_path.setdefault(copy_names.variable_name(obj, copy), obj)
    for obj in probe.names.objects.values():
        if framework.is_variable(obj) and id(obj) not in tracked:
            twin = by_path.get(probe.names.variable_name(obj, probe.layer))
            if (
                twin is not None
                and tuple(twin.shape) == tuple(obj.shape)
                and framework.is_float(twin) == framework.is_float(obj)
            ):
                pairs.append((framework.backing(obj), framework.backing(twin)))
                tracked.add(id(obj))
    return pairs


def copy_values(pairs) -> None:
    """Give each copy its original's value, in the copy's own dtype (Backend.assign_from: on
    TensorFlow without a numpy copy on the way, where a float64 copy of a 25.6M-number embedding
    table would be 205 MB)."""
    framework = backend()
    for original, copy in pairs:
        framework.assign_from(copy, original)
