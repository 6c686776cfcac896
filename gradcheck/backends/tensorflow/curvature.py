"""The float64 twin's gradient and Hessian-vector products, compiled once per training mode, for the
second-order check (numeric/second_order.py), and where on a tensor's path its second derivative
breaks: a custom gradient, a stop_gradient, the op of the double backward that cuts it.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np

from ...errors import LayerRaised, user_code
from ...layer.calling import training_of
from ...layer.source import is_user_file, user_location
from .graph.cuts import find_cuts, forward_op_of_kernel
from .graph.paths import downstream_op, is_custom_gradient
from .runtime import tensorflow
from .tape import probe_gradients
from .tracing import trace_layer_function

_NO_GRADIENT = "gradient registry has no entry for"


class Curvature:
    """The twin's gradient and Hessian-vector product for one training mode, each compiled once.

    Sources are the checked weights (the twin's variables) then the float inputs, in that order;
    a gradient or H·v is a list of numpy arrays in that order (None where the tape gives None).
    """

    def __init__(self, probe, twin, mode: str, variables: list, input_indexes: list[int]):
        tf, _ = tensorflow()
        self.twin, self.variables, self.input_indexes = twin, variables, input_indexes
        training = training_of(mode)
        count = len(twin.inputs)
        batch = probe.batch_size

        def first(xs, rs):
            return probe_gradients(
                twin.layer,
                xs,
                rs,
                training=training,
                accepts_training=probe.accepts_training,
                variables=variables,
                float_indexes=input_indexes,
                batch=batch,
                float64=True,
            ).grads

        def inner_product(xs, rs, vs):
            grads = first(xs, rs)
            terms = [tf.reduce_sum(tf.cast(g, tf.float64) * v) for g, v in zip(grads, vs) if g is not None]
            return tf.add_n(terms) if terms else tf.constant(0.0, tf.float64)

        def gradient(*arguments):
            return first(list(arguments[:count]), list(arguments[count:]))

        def hessian_vector(*arguments):
            xs, rs, vs = self._split(arguments)
            with tf.GradientTape() as outer:
                for i in input_indexes:
                    outer.watch(xs[i])
                product = inner_product(xs, rs, vs)
            with user_code("differentiating the gradient of the probe loss"):
                result = outer.gradient(product, variables + [xs[i] for i in input_indexes])
            return [None if h is None else tf.convert_to_tensor(h) for h in result]

        def product(*arguments):
            return inner_product(*self._split(arguments))

        self._count = count
        self.specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in twin.inputs]
        self.specs += [tf.TensorSpec(r.shape, tf.float64) for r in probe.projections_for(mode)]
        self.direction_specs = [tf.TensorSpec(v.shape, tf.float64) for v in variables]
        self.direction_specs += [tf.TensorSpec(twin.inputs[i].shape, tf.float64) for i in input_indexes]
        self.projections = [tf.constant(r) for r in probe.projections_for(mode)]
        twin.reset_seeds()
        self.gradient_function = trace_layer_function(twin.layer, gradient, self.specs)
        self._hessian_vector, self._product = hessian_vector, product
        self._hessian_function = None
        self.originals = [v.numpy() for v in variables]
        self._center: list | None = None
        self.base = [np.array(x) for x in twin.inputs]

    def _split(self, arguments):
        count, outputs = self._count, len(self.projections)
        return (list(arguments[:count]), list(arguments[count : count + outputs]), list(arguments[count + outputs :]))

    @property
    def hessian_function(self):
        """Traced on first use. Raises LookupError when an op on the path has no registered gradient
        of its gradient; second_order.py then names it from the inner product's graph."""
        if self._hessian_function is None:
            self.twin.reset_seeds()
            try:
                self._hessian_function = trace_layer_function(
                    self.twin.layer, self._hessian_vector, self.specs + self.direction_specs
                )
            except LayerRaised as raised:
                # TensorFlow's LookupError names the op; keep only its line.
                line = next((text.strip() for text in str(raised.error).splitlines() if _NO_GRADIENT in text), None)
                if line is None:
                    raise
                raise LookupError(line.removeprefix("LookupError: ")) from None
        return self._hessian_function

    def product_graph(self):
        """(graph, ∇L·v tensor) of the first gradient dotted with v: the double-backward graph
        cuts.find_cuts walks to name the op whose gradient has no gradient."""
        self.twin.reset_seeds()
        function = trace_layer_function(self.twin.layer, self._product, self.specs + self.direction_specs)
        return function.graph, function.outputs[0]

    def value(self) -> list[np.ndarray]:
        """θ: the checked weights and float inputs, float64."""
        return [np.asarray(v, "float64") for v in self.originals] + [
            np.asarray(self.base[i], "float64") for i in self.input_indexes
        ]

    @property
    def center(self) -> list:
        """∇L at θ itself, computed once: where the gradient is differenced around."""
        if self._center is None:
            self._center = self.gradient()
        return self._center

    def gradient(self, displacement=None) -> list:
        """∇L at θ + displacement (a list like value()); weights are put back afterwards."""
        tf, _ = tensorflow()
        xs = list(self.base)
        if displacement is not None:
            for variable, original, d in zip(self.variables, self.originals, displacement):
                variable.assign((original + d).astype(original.dtype))
            for i, d in zip(self.input_indexes, displacement[len(self.variables) :]):
                xs[i] = (xs[i] + d).astype(xs[i].dtype)
        try:
            self.twin.reset_seeds()
            with user_code("running the float64 copy's gradient"):
                grads = self.gradient_function(*[tf.constant(x) for x in xs], *self.projections)
        finally:
            if displacement is not None:
                for variable, original in zip(self.variables, self.originals):
                    variable.assign(original)
        return [None if g is None else np.asarray(g.numpy(), "float64") for g in grads]

    def hessian_vector(self, direction) -> list:
        tf, _ = tensorflow()
        self.twin.reset_seeds()
        function = self.hessian_function  # traced first: a LookupError there is a finding of its own
        with user_code("running the float64 copy's Hessian-vector product"):
            result = function(
                *[tf.constant(x) for x in self.base], *self.projections, *[tf.constant(d) for d in direction]
            )
        return [None if h is None else np.asarray(h.numpy(), "float64") for h in result]

    def custom_gradient_line(self, target) -> str | None:
        """The line applying a tf.custom_gradient on the target's path ("" outside the user's code)."""
        return downstream_op(self._walk(), target, is_custom_gradient)

    def stop_gradient_on_path(self, target) -> tuple[str | None, str | None]:
        """(where the first tf.stop_gradient on the target's path is, described; its user line)."""
        stops: list = []

        def is_stop(op) -> bool:
            if op.type == "StopGradient":
                stops.append(op)
                return True
            return False

        line = downstream_op(self._walk(), target, is_stop)
        return (describe_stop(stops[0], line) if stops else None), line

    def double_backward_cut(self, target):
        return double_backward_cut(self, target)

    def _walk(self):
        graph = self.gradient_function.graph
        return SimpleNamespace(graph=graph, placeholder=lambda t: placeholder(graph, self, t))


def describe_stop(op, user_line) -> str:
    """Where the tf.stop_gradient is: the user's line, or the library function that calls it
    (tf.nn.moments does, so LayerNormalization and BatchNormalization hold one)."""
    frames = list(op.traceback)
    first = next((i for i, frame in enumerate(frames) if frame.name == "stop_gradient"), None)
    # TensorFlow's dispatch and error-handling wrappers sit between the caller and the op.
    callers = [f for f in frames[: first or 0] if "/python/util/" not in f.filename and f.name != "wrapper"]
    if callers and not is_user_file(callers[-1].filename):
        caller = callers[-1]
        inside = f"inside `{caller.name}` ({caller.filename.rsplit('/', 1)[-1]}:{caller.lineno})"
        return inside + (f", reached from {user_line}" if user_line else "")
    return f"at {user_line}" if user_line else "in library code"


def placeholder(graph, curvature, target):
    if target.variable is None:
        return graph.inputs[target.input_index]
    handle = curvature.twin.variables[id(target.variable)].handle
    return next((internal for external, internal in graph.captures if external is handle), None)


def double_backward_cut(curvature, target):
    """The op of the double-backward graph that passes no gradient to `target`, or None."""
    try:
        graph, product = curvature.product_graph()
    except LayerRaised:  # only the location is at stake: another one is used
        return None
    source = placeholder(graph, curvature, target)
    if source is None:
        return None
    cuts = find_cuts(SimpleNamespace(graph=graph, loss=product), source)
    if not cuts:
        return None
    cut = cuts[0]
    if cut.location is None or cut.op_type.endswith("Grad"):
        # A gradient kernel (ResizeNearestNeighborGrad) was made by gradcheck's tape, so its stack
        # is not the user's; the forward op it differentiates (its name minus the tape's scope) is.
        # Ops the user wrote in a grad function (tf.stop_gradient) keep their own line.
        forward = forward_op_of_kernel(graph, cut.op_type)
        if forward is not None:
            cut = dataclasses.replace(
                cut, written_as=f"the gradient of {forward.type}", location=user_location(forward.traceback)
            )
    return cut
