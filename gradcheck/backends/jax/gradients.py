"""The probe loss of a traced call() and its gradients, with "no gradient" told apart from zero.

`jax.grad` gives zeros for a tensor no path connects to the loss. The checks need the difference
(a None gradient is the finding none-gradient, a zero one zero-gradient): the loss is linearized
and dead code eliminated from the linear function; a tangent input that reaches no output is a
tensor with no path. Zero tangents stay symbolic through jit, so DCE sees them inside nested
equations too (partial_eval.dce_jaxpr: private in JAX 0.10, which the jax extra pins).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import user_code
from .raw import slot_of
from .runtime import jax_modules
from .tracing import Traced, probe_loss


@dataclass(frozen=True)
class Taped:
    """The loss, the float outputs and the gradients of one pass (as backends/tensorflow/tape.Taped)."""

    loss: Any
    outputs: list
    grads: list  # one per target, in order; None where no path reaches the loss


def positions(traced: Traced, variables: list, float_indexes: list[int]) -> list:
    """Where each target enters the jaxpr: ("const", j) for a raw array, ("arg", i) for a Keras
    variable or an input; None for a variable the jaxpr does not have."""
    found: list = []
    for variable in variables:
        index = next((i for i, known in enumerate(traced.variables) if known is variable), None)
        if index is not None:
            found.append(("arg", index))
        else:
            slot = slot_of(variable)
            position = traced.consts.get(id(slot if slot is not None else variable))
            found.append(None if position is None else ("const", position))
    found += [("arg", len(traced.variables) + i) for i in float_indexes]
    return found


def differentiate(
    traced: Traced,
    inputs: list,
    projections: list,
    batch: int,
    targets: list,
    *,
    float64: bool = False,
    scale: float = 1.0,
    alive: bool = True,
) -> Taped:
    """The probe loss of `traced` on `inputs` (times `scale`), its float outputs, and its gradients
    with respect to `targets` (positions()): None where a target is not in the jaxpr or, with
    `alive`, where no path reaches the loss."""
    jax, _ = jax_modules()
    loss_of, floats = loss_function(traced, inputs, projections, batch, targets, float64=float64, scale=scale)
    with user_code("differentiating the probe loss"):
        # One compiled function: run op by op, each primitive would be compiled on its own first.
        (loss, outputs), grads = jax.jit(jax.value_and_grad(loss_of, has_aux=True))(floats)
        reached = _reached(jax, lambda fl: loss_of(fl)[0], floats) if alive else [True] * len(floats)
    made = iter(g if ok else None for g, ok in zip(grads, reached))
    return Taped(loss, list(outputs), [None if p is None else next(made) for p in targets])


def loss_function(traced: Traced, inputs: list, projections: list, batch: int, targets: list, **settings):
    """(loss_of(floats) -> (loss, outputs), the targets' current values): the probe loss as a function
    of the targets that are in the jaxpr (positions()), everything else held at its value now."""
    jax, _ = jax_modules()
    jnp = jax.numpy
    consts, arguments = traced.arguments(inputs)
    wanted = [p for p in targets if p is not None]
    float64, scale = settings.get("float64", False), settings.get("scale", 1.0)
    evaluate = _through_stops if settings.get("through_stops") else jax.core.eval_jaxpr

    def loss_of(floats):
        c, a = list(consts), list(arguments)
        for (kind, index), value in zip(wanted, floats):
            (c if kind == "const" else a)[index] = value
        outputs = evaluate(traced.jaxpr, c, *a)
        return probe_loss(jnp, outputs, projections, batch, float64) * scale, outputs

    return loss_of, [jnp.asarray((consts if kind == "const" else arguments)[index]) for kind, index in wanted]


def _reached(jax, loss, floats) -> list[bool]:
    """For each float argument: does a tangent from it reach the loss (False: no gradient)?

    The JVP of the loss is traced, not run, with the tangents as inputs of their own; dead-code
    elimination keeping only the tangent output leaves the tangent inputs some path carries."""
    if not floats:
        return []
    try:
        from jax._src.interpreters import partial_eval as pe
    except ImportError:  # another JAX: every gradient is taken as it comes (zeros stay zeros)
        return [True] * len(floats)

    def tangent(primals, tangents):
        return jax.jvp(loss, (primals,), (tangents,))[1]

    jaxpr = jax.make_jaxpr(tangent)(floats, floats).jaxpr
    _, used = pe.dce_jaxpr(jaxpr, [True] * len(jaxpr.outvars))
    return [bool(u) for u in used[len(floats) :]]


def as_numpy(taped: Taped) -> dict:
    """{"loss", "outputs", "grads"} as numpy, None kept."""
    return {
        "loss": float(np.asarray(taped.loss)),
        "outputs": [np.asarray(o) for o in taped.outputs],
        "grads": [None if g is None else np.asarray(g) for g in taped.grads],
    }


def _through_stops(jaxpr, consts, *arguments):
    """Evaluate `jaxpr` with every stop_gradient (nested jits included) as the identity it is in
    value: the derivative of what the forward pass computes, which finite differences measure."""
    from .jaxprs import bind, is_var, nested

    env: dict = {}

    def read(atom):
        return env[atom] if is_var(atom) else atom.val

    for var, value in zip(jaxpr.constvars, consts):
        env[var] = value
    for var, value in zip(jaxpr.invars, arguments):
        env[var] = value
    for eqn in jaxpr.eqns:
        inputs = [read(atom) for atom in eqn.invars]
        held = nested(eqn)
        if eqn.primitive.name == "stop_gradient":
            outputs = inputs
        elif (
            held is not None
            and eqn.primitive.name in ("jit", "pjit", "closed_call")
            and len(held[0].invars) == len(inputs)
        ):
            outputs = _through_stops(held[0], held[1], *inputs)
        else:
            outputs = bind(eqn, inputs)
        for var, value in zip(eqn.outvars, outputs):
            env[var] = value
    return [read(atom) for atom in jaxpr.outvars]
