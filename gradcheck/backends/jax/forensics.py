"""Forensics on a traced call(): the numpy constants it reads, the activation where a gradient dies
or explodes, the equation that made the first NaN/Inf, and the pass without a trace.

Values come from running the probe's jaxpr equation by equation on the probe batch (jaxprs.interpret),
only when a finding has to be located, with the layer's random and carried state fixed as for the
pass being explained. A backward equation keeps the user line of the forward op it differentiates
(its name stack says `jvp`/`transpose`): the NaN of sqrt(0)'s derivative is a `div` at the line of
the sqrt, which is named as the sqrt's gradient.
"""

from __future__ import annotations

import numpy as np

from ...errors import LayerRaised, user_code
from ...layer import state
from ...layer.calling import call_layer, random_training
from ..shared.findings import Culprit, pick_culprit
from .gradients import loss_function, positions
from .jaxprs import first_reads, interpret, is_float, is_var, line_of, nested
from .runtime import jax_modules
from .tracing import is_float_array, probe_loss

# Primitives that are an activation of shared/findings.SLOPES (relu is recognised by its values).
_ACTIVATIONS = {"logistic": "sigmoid", "tanh": "tanh", "exp": "exp"}


def _is_float(dtype) -> bool:
    import jax.numpy as jnp  # numpy's dtype tree does not count bfloat16 (ml_dtypes) as inexact

    return bool(jnp.issubdtype(dtype, jnp.inexact))


def eager_result(probe) -> dict:
    """call() could not be traced: its output from an eager call, and no gradient (JAX takes every
    gradient by tracing, and fit() jits call() the same way, so it fails there too)."""
    jax, _ = jax_modules()
    training = random_training(probe.training) if probe.accepts_training else None
    result = call_layer(probe.layer, probe.input_tensors(), training, probe.accepts_training)
    from ..shared.leaves import float_leaves

    outputs = [tensor for _, tensor in float_leaves(result, is_float_array)]
    loss = probe_loss(jax.numpy, outputs, probe.projections, probe.batch_size)
    count = len(probe.gradient_variables) + len(probe.float_input_indexes)
    return {"loss": float(loss), "outputs": [np.asarray(o) for o in outputs], "grads": [None] * count}


def constants_used(probe, backend) -> list:
    """(object, values, first_use()) for every float numpy array call() uses as a constant, and every
    raw JAX array that is not taken for a variable (a 0/1 mask)."""
    found, seen = [], set()
    for trace in probe.traces:
        traced = trace.traced
        reads = first_reads(traced.jaxpr)
        for key, position in traced.consts.items():
            obj = probe.names.objects.get(key)
            if obj is None or key in seen or backend.is_variable(obj):
                continue
            values = np.asarray(obj)
            if values.dtype.kind != "f":
                continue
            seen.add(key)
            eqn = reads.get(traced.jaxpr.constvars[position])
            found.append((obj, values, lambda eqn=eqn: line_of(eqn) if eqn is not None else None))
    return found


def _fixed_arguments(probe, traced):
    saved = state.snapshot(probe.layer)
    state.restore(state.fixed(probe.layer, probe.seed))  # the state of the pass explained
    try:
        return traced.arguments(list(probe.inputs))
    finally:
        state.restore(saved)


def _on_path(jaxpr, source) -> set:
    """The equations (ids) whose inputs depend on `source` through float values."""
    data, found = {source}, set()
    for eqn in jaxpr.eqns:
        if any(is_var(atom) and atom in data for atom in eqn.invars):
            found.add(id(eqn))
            data.update(out for out in eqn.outvars if is_float(out.aval))
    return found


def _activation(eqn, inputs, outputs) -> str | None:
    name = eqn.primitive.name
    if name in _ACTIVATIONS:
        return _ACTIVATIONS[name]
    floats_in = [np.asarray(x) for x in inputs if np.ndim(x) and _is_float(np.asarray(x).dtype)]
    if len(floats_in) == 1 and len(outputs) == 1 and name in ("custom_jvp_call", "max", "jit"):
        x, y = floats_in[0], np.asarray(outputs[0])
        if x.shape == y.shape and np.array_equal(y, np.maximum(x, 0)) and not np.array_equal(x, y):
            return "relu"
    return None


def culprit(probe, run, source, status: str) -> Culprit | None:
    """The activation on `source`'s path to the outputs that explains `status`."""
    if run.trace is None or source is None or status not in ("zero", "vanishing", "exploding"):
        return None
    traced = run.trace.traced
    path = _on_path(traced.jaxpr, source)
    if not path:
        return None
    consts, arguments = _fixed_arguments(probe, traced)
    slopes: list = []

    def visit(eqn, inputs, outputs) -> bool:
        if id(eqn) in path:
            kind = _activation(eqn, inputs, outputs)
            if kind is not None:
                x = next(np.asarray(a, "float64") for a in inputs if np.ndim(a))
                slopes.append((kind, kind, line_of(eqn), kind, x, np.asarray(outputs[0], "float64")))
        return False

    try:
        with user_code("running the probe's jaxpr to locate a finding"):
            interpret(traced.jaxpr, consts, arguments, visit)
    except LayerRaised:
        return None
    return pick_culprit(status, slopes)


def _nonfinite(value) -> bool:
    array = np.asarray(value)
    return _is_float(array.dtype) and not bool(np.all(np.isfinite(array.astype("float32"))))


def _first_nonfinite(jaxpr, consts, arguments):
    """(the equation, the inner equation or None) that first makes a non-finite value from finite ones."""
    found: list = []

    def visit(eqn, inputs, outputs) -> bool:
        if any(_nonfinite(o) for o in outputs) and not any(_nonfinite(i) for i in inputs):
            inner = None
            held = nested(eqn)
            if held is not None and len(held[0].invars) == len(inputs):
                deeper = _first_nonfinite(held[0], held[1], inputs)
                inner = (deeper[1] or deeper[0]) if deeper else None
            found.append((eqn, inner))
            return True
        return False

    interpret(jaxpr, consts, arguments, visit)
    return found[0] if found else None


def nonfinite_origin(probe, run, target):
    """(op, user line, " (in its gradient, op)" or "") of the first non-finite value feeding
    `target` ("grads", index) or ("outputs", position); None when it cannot be named."""
    if run.trace is None:
        return None
    jax, _ = jax_modules()
    traced = run.trace.traced
    consts, arguments = _fixed_arguments(probe, traced)
    try:
        with user_code("running the probe's jaxpr to locate a finding"):
            forward = _first_nonfinite(traced.jaxpr, consts, arguments)
            if forward is not None or target[0] == "outputs":
                return _origin(*forward, "") if forward is not None else None
            targets = positions(traced, probe.gradient_variables, probe.float_input_indexes)
            loss_of, floats = loss_function(traced, list(probe.inputs), probe.projections, probe.batch_size, targets)
            backward = jax.make_jaxpr(jax.grad(lambda fl: loss_of(fl)[0]))(floats)
            found = _first_nonfinite(backward.jaxpr, backward.consts, floats)
    except LayerRaised:
        return None
    if found is None:
        return None
    eqn, inner = found
    forward_op = _forward_op_at(traced.jaxpr, line_of(eqn))
    named = (inner or eqn).primitive.name
    if forward_op is not None and forward_op != named:
        return (forward_op, line_of(eqn), f" (in its gradient, {named})")
    return (named, line_of(eqn), " (in its gradient)")


def _origin(eqn, inner, produced: str):
    return ((inner or eqn).primitive.name, line_of(eqn), produced)


_SUSPECTS = ("sqrt", "rsqrt", "log", "log1p", "pow", "integer_pow", "div", "exp")


def _forward_op_at(jaxpr, line: str | None) -> str | None:
    """The forward op at the user's `line` a backward equation differentiates (the likeliest one)."""
    if line is None:
        return None
    at_line = [eqn for eqn in jaxpr.eqns if line_of(eqn) == line]
    for eqn in at_line:
        held = nested(eqn)
        names = [eqn.primitive.name] + ([e.primitive.name for e in held[0].eqns] if held else [])
        for name in names:
            if name in _SUSPECTS:
                return name
    return at_line[0].primitive.name if at_line else None
