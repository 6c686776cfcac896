"""Tracing call() with JAX: one jaxpr per `training` mode, and the probe loss and its gradients from it.

call() is traced as Keras's JAX trainer traces it: inside a StatelessScope that maps every Keras
variable of the layer to a value passed in, so the jaxpr's first inputs are the variables' values,
then the layer's inputs. Whatever else call() reads becomes a constant of the jaxpr: a raw JAX array
the layer holds appears there by identity (`const is layer.w`), a numpy array as a copy whose
`.base` is the attribute. So the jaxpr shows what call() reads, as a TensorFlow graph's captures
do, and the same jaxpr, evaluated with some of its inputs and constants as arguments, gives the
gradient of the probe loss with respect to each, raw arrays included.

`jax.grad` gives zeros where no path reaches the loss; "no gradient" (None) is told apart from a
zero by linearizing the loss and eliminating dead code from the linear function: a tangent that
reaches nothing means no path (`partial_eval.dce_jaxpr`, a private function of JAX 0.10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import user_code
from ...layer.calling import call_layer, training_of
from ..shared.leaves import float_leaves
from .jaxprs import read_vars
from .raw import slot_of
from .runtime import jax_modules


def is_float_array(value) -> bool:
    jax, _ = jax_modules()
    # jax.numpy's dtype tree: numpy's own does not count bfloat16 (an ml_dtypes type) as inexact.
    return isinstance(value, jax.Array) and bool(jax.numpy.issubdtype(value.dtype, jax.numpy.inexact))


@dataclass
class Traced:
    """call() of one layer traced in one mode: (its variables' values, inputs) -> float outputs."""

    closed: Any  # ClosedJaxpr
    variables: list  # the layer's Keras variables, in the order of the jaxpr's first inputs
    input_count: int
    consts: dict  # id(raw slot or numpy attribute) -> position in the jaxpr's constants

    @property
    def jaxpr(self):
        return self.closed.jaxpr

    def var(self, variable=None, input_index: int | None = None):
        """The jaxpr variable through which a Keras variable, a raw array (its slot) or an input enters."""
        if variable is None:
            assert input_index is not None, "a variable or an input index"
            return self.jaxpr.invars[len(self.variables) + input_index]
        for index, known in enumerate(self.variables):
            if known is variable:
                return self.jaxpr.invars[index]
        slot = slot_of(variable)
        position = self.consts.get(id(slot if slot is not None else variable))
        return None if position is None else self.jaxpr.constvars[position]

    def arguments(self, inputs: list) -> tuple[list, list]:
        """(constants, arguments) to evaluate the jaxpr on now: raw arrays as their slots hold them
        today (finite differences move them), Keras variables at their current values."""
        consts = list(self.closed.consts)
        for key, position in self.consts.items():
            slot = _SLOT_BY_ID.get(key)
            if slot is not None:
                consts[position] = slot.current
        return consts, [v.value for v in self.variables] + list(inputs)


_SLOT_BY_ID: dict[int, Any] = {}


def trace_call(layer, inputs: list, training, accepts_training: bool, names=None) -> Traced:
    """Trace `layer`'s call() on `inputs` (arrays: shapes and dtypes matter) in one mode.

    `names` (layer/naming.Names) ties the jaxpr's constants to the layer's attributes: raw arrays
    by identity, numpy arrays through `.base` (or equal values, when JAX copied to another dtype).
    """
    jax, keras = jax_modules()
    variables = list(layer.variables)

    def forward(values, xs):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            result = call_layer(layer, list(xs), training, accepts_training)
        return [tensor for _, tensor in float_leaves(result, is_float_array)]

    with user_code("tracing call() with jax.make_jaxpr"):
        closed = jax.make_jaxpr(forward)([v.value for v in variables], list(inputs))
    return Traced(closed, variables, len(inputs), _const_owners(closed.consts, names))


def trace_unscoped(layer, inputs: list, training, accepts_training: bool, names=None) -> Traced:
    """call() traced with the tracers put in the Keras variables themselves, without a StatelessScope.

    For a call() the scoped trace refuses (it makes a variable: "You are attempting to create a
    variable while in a stateless scope", as fit() on JAX refuses it too): its gradients and what it
    reads can still be told, as TensorFlow's backend tells them from an eager tape. A variable it
    makes is a constant of this trace (a fresh one on every call: variable-created-in-call)."""
    jax, _ = jax_modules()
    variables = list(layer.variables)

    def forward(values, xs):
        saved = [v._value for v in variables]
        try:
            for variable, value in zip(variables, values):
                variable._value = value
            result = call_layer(layer, list(xs), training, accepts_training)
        finally:
            for variable, value in zip(variables, saved):
                variable._value = value
        return [tensor for _, tensor in float_leaves(result, is_float_array)]

    with user_code("tracing call() with jax.make_jaxpr"):
        closed = jax.make_jaxpr(forward)([v.value for v in variables], list(inputs))
    return Traced(closed, variables, len(inputs), _const_owners(closed.consts, names))


def unscoped(probe) -> Traced | None:
    """trace_unscoped of the probe's layer (None when it fails too), made once per probe."""
    from ...errors import LayerRaised
    from ...layer.calling import random_training

    if getattr(probe, "_jax_unscoped", False) is False:
        training = random_training(probe.training) if probe.accepts_training else None
        try:
            traced = trace_unscoped(probe.layer, list(probe.inputs), training, probe.accepts_training, probe.names)
        except LayerRaised:
            traced = None
        probe._jax_unscoped = traced
    return probe._jax_unscoped


def _const_owners(consts: list, names) -> dict:
    owners: dict = {}
    attributes = list(names.objects.values()) if names is not None else []
    arrays = [a for a in attributes if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    for position, const in enumerate(consts):
        slot = slot_of(const)
        if slot is not None:
            owners[id(slot)] = position
            _SLOT_BY_ID[id(slot)] = slot
            continue
        if any(const is a for a in attributes):
            owners[id(const)] = position
            continue
        if isinstance(const, np.ndarray):
            for array in arrays:
                if const.base is array or (
                    const.shape == array.shape and np.array_equal(const, array.astype(const.dtype))
                ):
                    owners.setdefault(id(array), position)
                    break
    return owners


@dataclass
class Trace:
    """call() traced under one value of `training` (backends.Trace), with what it reads."""

    mode: str
    traced: Traced
    fingerprint: Any
    reads: set  # ids of the Keras variables and raw arrays (their slots) some equation reads

    def source(self, variable=None, input_index: int | None = None):
        """The jaxpr variable through which a variable (or the input) enters; None: not read."""
        var = self.traced.var(variable, input_index)
        return var if var is not None and var in read_vars(self.traced.jaxpr) else None


def trace_mode(probe, mode: str) -> Trace:
    traced = trace_call(probe.layer, list(probe.inputs), training_of(mode), probe.accepts_training, probe.names)
    return Trace(mode, traced, _fingerprint(traced), reads_of(traced))


def reads_of(traced: Traced) -> set:
    """ids of the Keras variables and raw arrays (their slots) some equation of the jaxpr reads."""
    used = read_vars(traced.jaxpr)
    reads = {id(v) for v, var in zip(traced.variables, traced.jaxpr.invars) if var in used}
    return reads | {key for key, position in traced.consts.items() if traced.jaxpr.constvars[position] in used}


def _fingerprint(traced: Traced):
    """The jaxpr's text and what its constants are: equal for two modes that compute the same thing."""
    keys: list = []
    for const in traced.closed.consts:
        if isinstance(const, np.ndarray):
            keys.append((const.shape, str(const.dtype), hash(np.ascontiguousarray(const).tobytes())))
        else:
            keys.append(id(const))
    return str(traced.jaxpr), tuple(keys)


def probe_loss(jnp, outputs: list, projections: list, batch: int, float64: bool = False):
    """sum(r·y) over the float outputs / batch, as backends/tensorflow/leaves.probe_loss computes it."""
    total: Any = None
    for y, r in zip(outputs, projections):
        dtype = jnp.float64 if float64 or y.dtype == jnp.float64 else jnp.float32
        term = jnp.sum(y.astype(dtype) * jnp.asarray(r).astype(dtype))
        total = term if total is None else total + term.astype(total.dtype)
    return total / batch
