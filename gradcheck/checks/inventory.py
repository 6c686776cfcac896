"""Which tensors does call() use, and is each one a tracked, trainable variable?

The answer comes from the traced graph (design notes 2): a captured resource handle is a variable that
call() reads; a captured eager tensor or an embedded float constant equal to an attribute is a
constant posing as a weight. Comparing those with `layer.weights` finds what Keras does not track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import codes
from ..layer.calling import input_names
from ..layer.naming import assigned_name
from ..layer.probe import Probe, location_of_variable, probe_findings
from ..layer.rows import RowKey, Rows, constant_key, input_key, variable_key
from ..layer.state import state_variables
from ..report import InputInfo, TensorInfo, finding
from ..runtime import backend
from .interface import CheckResult, Context

_LIBRARY_MODULES = ("keras", "tensorflow", "tf_keras", "keras_hub", "keras_nlp", "keras_cv")


@dataclass(frozen=True)
class Inventory:
    """The rows of the report (every tensor call() uses or the layer holds, every input) and what
    building and tracing the layer showed by itself."""

    stage = "listing the tensors call() uses"
    needs_float_output = False

    @classmethod
    def from_options(cls, options) -> Inventory:
        return cls()

    def run(self, context: Context) -> CheckResult:
        tensors, findings = check_inventory(context.probe)
        return CheckResult(
            findings=findings + probe_findings(context.probe),
            tensor_rows=tensors,
            input_rows=input_inventory(
                context.probe.input_specs, input_names(context.probe.layer, len(context.probe.input_specs))
            ),
        )


def check_inventory(probe: Probe) -> tuple[Rows[TensorInfo], list]:
    """Return (tensor rows, findings) for every variable the layer holds or call() reads."""
    framework = backend()
    layer = probe.layer
    reads = framework.read_variables(probe)
    seed_states = set(state_variables(layer))  # RNG, RNN and metric state: not weights
    tensors: list[tuple[RowKey, TensorInfo]] = []
    findings: list = []
    tracked_ids = set()
    # Names of the weights call() reads: an unread weight sharing one is a copy left by an earlier
    # build (see _orphan_message).
    names_read = {probe.tensor_name(v) for v in layer.weights if reads(v)}

    for variable in layer.weights:
        tf_variable = framework.backing(variable)
        tracked_ids.add(id(tf_variable))
        if id(tf_variable) in seed_states:
            continue  # listed below as state
        name = probe.tensor_name(variable)
        owner = probe.names.owner_layer(variable)
        is_read = reads(tf_variable)
        location = location_of_variable(probe, variable)
        tensors.append(
            (
                variable_key(variable),
                TensorInfo(
                    name=name,
                    kind=_weight_kind(variable),
                    shape=tuple(variable.shape),
                    dtype=str(variable.dtype),
                    layer=owner.name if owner is not None and owner is not layer else None,
                    created_at=location,
                    read_by_call=is_read,
                ),
            )
        )
        if _weight_kind(variable) == "overwritten":
            continue  # Keras's optimizer writes it with what the backward returns: no gradient to train it
        if variable.trainable and not is_read and probe.traces:
            message = (
                _orphan_message(name)
                if name in names_read
                else f"`{name}` is a trainable weight that call() never reads{_modes(probe)}, so it "
                "cannot learn and only adds parameters. Use it in call(), or remove it from build()"
                " (if call() replaces the attribute, e.g. `self.kernel = self.kernel / n`, assign "
                "the result to a local name instead)."
            )
            findings.append(finding(codes.UNUSED_VARIABLE, name, message, location))
        elif not variable.trainable and is_read:
            findings.append(
                finding(
                    codes.NON_TRAINABLE_VARIABLE,
                    name,
                    f"`{name}` is read by call() but has trainable=False, so fit() does not update it "
                    "with gradients (fine for statistics such as a moving mean).",
                    location,
                )
            )

    for tf_variable, name in _untracked_variables(probe, tracked_ids, seed_states, reads):
        location = location_of_variable(probe, tf_variable)
        is_read = reads(tf_variable)
        tensors.append(
            (
                variable_key(tf_variable),
                TensorInfo(
                    name=name,
                    kind="untracked",
                    shape=tuple(tf_variable.shape),
                    dtype=framework.dtype_name(tf_variable),
                    created_at=location,
                    read_by_call=is_read,
                ),
            )
        )
        if is_read:
            findings.append(
                finding(
                    codes.UNTRACKED_VARIABLE,
                    name,
                    f"`{name}` is a raw {framework.words.raw_variable}{' made at ' + location if location else ''}. Keras 3 "
                    "does not track it: it is missing from layer.trainable_weights, so fit() never "
                    "trains it and saving drops it. Make it with `self.add_weight(...)` in `build()`.",
                    location,
                )
            )

    tensors += state_rows(probe, reads)
    constants, constant_findings = _constants(probe)
    tensors += constants
    findings += _one_per_replaced_weight(findings, constant_findings)
    findings += _created_in_call(probe)
    return Rows(tensors), findings


def _weight_kind(variable) -> str:
    """trainable, non-trainable, or overwritten: a variable made with `overwrite_with_gradient=True`
    (Keras's float8 layers' scales and amax histories), which fit()'s optimizer assigns with
    what its custom gradient returns instead of stepping along a gradient (docs/design-notes.md 18)."""
    if getattr(variable, "overwrite_with_gradient", False) is True:
        return "overwritten"
    return "trainable" if variable.trainable else "non-trainable"


def input_inventory(specs, names: list[str]) -> Rows[InputInfo]:
    """One row per input, named as call() names it (calling.input_names); integer inputs (token ids)
    are not differentiable and get no gradient check."""
    return Rows(
        (
            input_key(i),
            InputInfo(
                name=names[i],
                shape=spec.shape,
                dtype=spec.dtype,
                value_range=spec.resolved_range,
                differentiable=spec.is_float,
            ),
        )
        for i, spec in enumerate(specs)
    )


def _orphan_message(name: str) -> str:
    """An unread weight beside a read one of the same name: a copy from an earlier build. Keras
    first builds a layer that has no build() of its own symbolically, in a graph, to learn its
    output shape; a sublayer's build() that raises there (a raw tf.Variable made from a tensor
    cannot be lifted out of that graph) is abandoned after the weights it made so far, and run
    again at the real call: those first weights stay in layer.weights, read by nothing (checked
    with Keras 3.15). A sublayer replaced after it was built leaves its weights behind the same way."""
    return (
        f"`{name}` is a trainable weight that call() never reads, beside another `{name}` that it does: "
        "a copy left by an earlier build, never trained and saved for nothing. Keras first builds a "
        "layer without a build() of its own in a graph, to work out its output shape; a build() that "
        "raises there (a raw tf.Variable made from a tensor is one way) is run again later, and the "
        "weights it had made stay in the layer. Make every weight in that build() with "
        "self.add_weight(...) (and build or assign each sublayer once), and the copy goes."
    )


def _one_per_replaced_weight(weight_findings: list, constant_findings: list) -> list:
    """The constant findings left once a weight call() replaces is told once (one root cause,
    one finding): `self.kernel = self.kernel / n` in call() leaves the weight unread (unused-variable)
    and makes the attribute a constant tensor (constant-tensor) of the same name. The unused-variable
    finding becomes that one finding, at the assignment in call(), which is what to change."""
    constants = {item.tensor: item for item in constant_findings}
    for index, item in enumerate(weight_findings):
        replacing = constants.get(item.tensor) if item.code == codes.UNUSED_VARIABLE.name else None
        if replacing is None:
            continue
        weight_findings[index] = finding(
            codes.UNUSED_VARIABLE,
            item.tensor,
            f"`{item.tensor}` is a trainable weight that call() replaces with a tensor at {replacing.location} "
            "(it assigns the attribute, e.g. `self.kernel = self.kernel / n`): from then on call() reads that "
            "tensor, a constant no gradient or optimizer step can change, and never the weight, so the weight "
            f"cannot learn{f' (made at {item.location})' if item.location else ''}. Assign the result to a "
            "local name instead and read the weight itself.",
            replacing.location,
        )
        del constants[item.tensor]
    return list(constants.values())


def _modes(probe: Probe) -> str:
    modes = [t.mode for t in probe.traces if t.mode != "n/a"]
    return f" (with training={' or '.join(m.capitalize() for m in modes)})" if modes else ""


def state_rows(probe: Probe, reads) -> list[tuple[RowKey, TensorInfo]]:
    """One `state` row per variable Keras keeps beside the weights (state.py): an RNN's carried
    state, a SeedGenerator's, a metric's. Not weights, so never untracked and never trained."""
    rows = []
    framework = backend()
    for variable, _, path in state_variables(probe.layer, probe.names.layer_path).values():
        name = path
        owner = probe.names.owner_layer(variable)
        rows.append(
            (
                variable_key(variable),
                TensorInfo(
                    name=name,
                    kind="state",
                    shape=tuple(variable.shape),
                    dtype=framework.dtype_name(variable),
                    layer=owner.name if owner is not None and owner is not probe.layer else None,
                    created_at=location_of_variable(probe, variable),
                    read_by_call=reads(variable),
                ),
            )
        )
    return rows


def _untracked_variables(probe: Probe, tracked_ids: set[int], seed_states: set[int], reads):
    """Raw tf.Variables the layer holds (or call() reads) that no layer's weights include."""
    framework = backend()
    found = {}
    for obj in probe.names.objects.values():
        if framework.is_variable(obj) and id(obj) not in tracked_ids and id(obj) not in seed_states:
            found[id(obj)] = (obj, probe.tensor_name(obj))
    # A variable call() reads that the walk could not reach (a helper's global): named by TF's name.
    for variable, _ in probe.log.created.values():
        if id(variable) in found or id(variable) in tracked_ids or id(variable) in seed_states:
            continue
        if reads(variable) and not _is_keras_internal(variable):
            found[id(variable)] = (variable, framework.variable_label(variable))
    return sorted(found.values(), key=lambda pair: pair[1])


def _is_keras_internal(variable) -> bool:
    # Optimizer slots, metric accumulators and RNG states made by Keras while we watched.
    label = backend().variable_label(variable)
    return any(part in label for part in ("seed_generator", "iteration", "optimizer"))


def _constants(probe: Probe):
    """Float tensors and numpy arrays that call() uses as if they were weights."""
    tensors: list = []
    findings: list = []
    for obj, values, first_use in backend().constants_used(probe):
        _add_constant(probe, obj, values, first_use, tensors, findings)
    return tensors, findings


def _add_constant(probe: Probe, obj, values, first_use, tensors, findings):
    place = probe.names.places.get(id(obj))
    name = place.path if place is not None else None
    if values.size < 2:
        return  # a scalar such as an epsilon is a hyperparameter, not a weight
    owner_module = type(place.owner).__module__.split(".")[0] if place is not None and place.owner is not None else ""
    location = probe.names.assignment_location(obj) or first_use()
    if place is None and location is None:
        return  # made inside Keras or TensorFlow (a mask, a shape table): not the user's weight
    shown = name or f"constant of shape {'x'.join(map(str, values.shape))}"
    is_mask = values.dtype.kind == "f" and set(np.unique(values)).issubset({0.0, 1.0}) and len(np.unique(values)) == 2
    tensors.append(
        (
            constant_key(obj),
            TensorInfo(
                name=shown,
                kind="constant",
                shape=tuple(values.shape),
                dtype=str(values.dtype),
                created_at=location,
                read_by_call=True,
            ),
        )
    )
    if owner_module in _LIBRARY_MODULES or is_mask:
        return  # a library's own fixed tensor, or a 0/1 mask: constant by design
    kind = "numpy array" if isinstance(obj, np.ndarray) else "tensor"
    findings.append(
        finding(
            codes.CONSTANT_TENSOR,
            shown,
            f"`{shown}` is a float {kind} of shape {tuple(values.shape)} that call() uses, but it is not "
            "a variable, so no gradient or optimizer step can change it. If it should learn, create it "
            "with `self.add_weight(...)` in `build()`; if it is meant to stay fixed, make it "
            "`self.add_weight(..., trainable=False)` so it is saved with the layer.",
            location,
        )
    )


def _created_in_call(probe: Probe):
    findings, seen = [], set()
    for variable, location in probe.created_in_call:
        if location in seen:
            continue
        seen.add(location)
        # The user's own name for it (`w = tf.Variable(...)`), else TensorFlow's ("Variable").
        name = assigned_name(location) or backend().variable_label(variable).rsplit("/", 1)[-1]
        findings.append(
            finding(
                codes.VARIABLE_CREATED_IN_CALL,
                name,
                f"call() creates a new variable `{name}`{' at ' + location if location else ''} every time "
                "it runs, so nothing it learns survives the call and fit() (which traces call()) "
                "raises. Create it once with `self.add_weight(...)` in `build()` and only read it in call().",
                location,
            )
        )
    return findings
