"""The one tape: the probe loss of a layer and its gradients, as every check takes them.

The probe loss is sum(r·y) over the float outputs, divided by the batch size (leaves.probe_loss);
its gradients are taken with respect to the given variables and the float inputs at
`float_indexes`, a None kept where no path reaches the loss (not a zero: "no gradient" is what the
checks look for). The probe traces this inside tf.function to read its graph; the finite-difference
and second-order checks compile it for the float64 twin (and nest it for Hessian-vector products);
the dtype-policy check runs it eagerly on a copy under a policy, with the loss scaled as
LossScaleOptimizer scales it. Each of them calls this function, so the loss every check
differentiates is the same.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from ...errors import user_code
from ...layer.calling import call_layer
from .leaves import float_tensors, probe_loss
from .runtime import tensorflow

# Ops whose gradient is cut on purpose while their value passes unchanged: an identity, to the twin
# that finite differences are compared with.
_PASS_THROUGH = {"StopGradient": "Identity", "PreventGradient": "Identity"}
STOP_OPS = frozenset(_PASS_THROUGH)


@dataclass(frozen=True)
class Taped:
    """The loss, the float outputs and the gradients of one pass (graph or eager tensors)."""

    loss: Any
    outputs: list
    grads: list  # one per source, in order: the variables, then the float inputs; None where no path
    taped: list | None = None  # with through_stops and also_taped: the tape's own gradients, as grads


def loss_and_outputs(layer, xs: list, projections: list, training, accepts_training: bool, batch: int, float64=False):
    """(probe loss, float outputs) of one call of `layer` on `xs`: what every pass computes."""
    tf, _ = tensorflow()
    outputs = float_tensors(tf, call_layer(layer, xs, training, accepts_training))
    return probe_loss(tf, outputs, projections, batch, float64=float64), outputs


def probe_gradients(
    layer,
    xs: list,
    projections: list,
    *,
    training: bool | None,
    accepts_training: bool,
    variables: list,
    float_indexes: list[int],
    batch: int,
    float64: bool = False,
    scale: float = 1.0,
    through_stops: bool = False,
    sparse: bool = False,
    also_taped: bool = False,
) -> Taped:
    """Call `layer` on `xs` under a tape and differentiate the probe loss (times `scale`).

    Args:
        layer: the Keras layer to call (the user's, its float64 twin or a copy under a policy).
        xs: its inputs (tensors); those at `float_indexes` are watched.
        projections: one fixed projection per float output (tensors or float64 numpy arrays).
        training: the `training` argument of call() (None: not passed).
        accepts_training: whether call() takes `training`.
        variables: the variables to differentiate with respect to, before the inputs.
        float_indexes: the positions of the float inputs to differentiate with respect to.
        batch: the divisor of the loss.
        float64: every term of the loss in float64 (the finite-difference comparisons want it).
        scale: multiplies the loss before the backward pass (a loss scale); 1.0 leaves it as it is.
        through_stops: differentiate as if every tf.stop_gradient were an identity (inside a traced
            function only): the derivative of what the forward pass computes, which finite
            differences measure. The tape cannot be told that, so the graph's own gradients are
            taken, with StopGradient's gradient overridden.
        sparse: a gradient made of looked-up rows (tf.IndexedSlices, an embedding's) is returned
            as it is rather than as the dense tensor of the variable's whole shape.
        also_taped: with `through_stops`, also the tape's own gradients of the same forward pass
            (`Taped.taped`): the tape resolves a StopGradient's gradient by the op's type, so the
            override that lets the graph's gradients pass through it leaves the tape's as they are.
            One forward pass, and one trace, for what the comparison and the surrogate check need.
    """
    tf, _ = tensorflow()
    dense = (lambda g: g) if sparse else tf.convert_to_tensor
    if through_stops:
        sources = list(variables) + [xs[i] for i in float_indexes]
        tape: Any = tf.GradientTape() if also_taped else None
        with tape or contextlib.nullcontext(), tf.compat.v1.get_default_graph().gradient_override_map(_PASS_THROUGH):
            for i in float_indexes if tape is not None else ():
                tape.watch(xs[i])
            loss, outputs = loss_and_outputs(layer, xs, projections, training, accepts_training, batch, float64)
            loss = loss * scale if scale != 1.0 else loss
        with user_code("differentiating the probe loss"):
            grads = tf.gradients(loss, sources)
            taped = None
            if tape is not None:
                taped = tape.gradient(loss, sources, unconnected_gradients=tf.UnconnectedGradients.NONE)
        return Taped(
            loss,
            outputs,
            [None if g is None else dense(g) for g in grads],
            None if taped is None else [None if g is None else dense(g) for g in taped],
        )
    with tf.GradientTape() as tape:
        for i in float_indexes:
            tape.watch(xs[i])
        loss, outputs = loss_and_outputs(layer, xs, projections, training, accepts_training, batch, float64)
        if scale != 1.0:
            loss = loss * scale
    sources = list(variables) + [xs[i] for i in float_indexes]
    # The layer's own backward runs here (a custom gradient, an op TensorFlow cannot differentiate).
    with user_code("differentiating the probe loss"):
        grads = tape.gradient(loss, sources, unconnected_gradients=tf.UnconnectedGradients.NONE)
    return Taped(loss, outputs, [None if g is None else dense(g) for g in grads])
