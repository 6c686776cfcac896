"""The float64 twin's probe loss and its gradients, compiled once per training mode, for the
finite-difference check (numeric/first_order.py), and the walks along a tensor's path that its
verdict needs: a lower-precision op, a custom gradient, a stop_gradient.

A weight the loss reads only by looking rows up (an embedding's table, graph/lookups.py) has its
gradient returned on the rows the samples look up, with the norm of what the tape gives every
other row beside it: a table of 50,000 rows looked up by 1,024 ids never becomes a dense float64
gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import user_code
from ...layer.calling import training_of
from .graph.lookups import lookup_indices, rows_read
from .graph.paths import (
    LowPrecisionOp,
    custom_gradients_on_path,
    downstream_op,
    has_no_gradient,
    is_custom_gradient,
    low_precision_op,
)
from .runtime import tensorflow
from .tape import STOP_OPS, loss_and_outputs, probe_gradients
from .tracing import trace_layer_function


class Forward:
    """The twin's probe loss and its gradients, each compiled once for one training mode."""

    def __init__(self, probe, twin, mode: str, targets, samples):
        tf, keras = tensorflow()
        self.twin = twin
        training = training_of(mode)
        count = len(samples.inputs)
        batch = samples.batch
        float_indexes = [t.input_index for t in targets if t.variable is None]
        weights = [t for t in targets if t.variable is not None]
        sources = [twin.variables[id(t.variable)] for t in weights]

        def loss(*arguments):
            xs, rs = list(arguments[:count]), list(arguments[count:])
            return loss_and_outputs(twin.layer, xs, rs, training, probe.accepts_training, batch, float64=True)[0]

        specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in samples.inputs]
        specs += [tf.TensorSpec(r.shape, tf.float64) for r in samples.projections_for(mode)]
        self.projections = [tf.constant(r) for r in samples.projections_for(mode)]
        self._loss, self._specs, self._loss_function = loss, specs, None
        self._rows = self._looked_up(probe, mode, weights, samples)  # {id(original variable): rows}
        restricted = {i: self._rows[id(t.variable)] for i, t in enumerate(weights) if id(t.variable) in self._rows}
        self._unread: dict = {False: [], True: []}  # per gradients(tape=...): a norm or None per source
        self._order = [id(t) for t in weights] + [id(t) for t in targets if t.variable is None]

        def split(grads) -> tuple[list, list]:
            parts, unread = [], []
            for index, grad in enumerate(grads):
                if grad is not None and index in restricted:
                    grad, rest = _split_rows(tf, grad, restricted[index])
                    unread.append(rest)
                else:
                    unread.append(None)
                parts.append(None if grad is None else tf.convert_to_tensor(grad))
            return parts, unread

        def gradients(*arguments, through_stops=False, also_taped=False):
            xs, rs = list(arguments[:count]), list(arguments[count:])
            taped = probe_gradients(
                twin.layer,
                xs,
                rs,
                training=training,
                accepts_training=probe.accepts_training,
                variables=sources,
                float_indexes=float_indexes,
                batch=batch,
                float64=True,
                through_stops=through_stops,
                sparse=bool(restricted),
                also_taped=also_taped,
            )
            if also_taped:
                return taped.loss, *split(taped.grads), *split(taped.taped)
            return taped.loss, *split(taped.grads)

        # The tape leaves out every path through a tf.stop_gradient, finite differences do not: the
        # comparison is with the derivative of what the forward pass computes, a stop_gradient
        # taken as the identity it is in value (a custom gradient inside LayerNormalization's
        # statistics, or beside a straight-through estimator, is then checked like any other).
        # The stop itself is reported by the path analysis (checks/gradients.py). The tape's own
        # gradient is wanted beside it (a straight-through estimator shows as their difference):
        # when the probe's trace shows stops, one function gives both from one forward pass.
        self._both: Any = None  # the function giving both, when the probe's trace shows stops
        self._last: Any = None  # (inputs, {tape: (loss, gradients, unread)}) of its last run
        if _stops_in(probe, mode):
            twin.reset_seeds()
            with twin.arithmetic():
                both = lambda *arguments: gradients(*arguments, through_stops=True, also_taped=True)  # noqa: E731
                function = trace_layer_function(twin.layer, both, specs)
            if any(op.type in STOP_OPS for op in function.graph.get_operations()):
                self._both = function
        self.stops = self._both is not None
        if self._both is None:
            twin.reset_seeds()
            with twin.arithmetic():
                self.tape_function = trace_layer_function(twin.layer, gradients, specs)
            self.stops = any(op.type in STOP_OPS for op in self.tape_function.graph.get_operations())
            self.gradient_function = self.tape_function
            if self.stops:
                twin.reset_seeds()
                with twin.arithmetic():
                    passing = lambda *arguments: gradients(*arguments, through_stops=True)  # noqa: E731
                    self.gradient_function = trace_layer_function(twin.layer, passing, specs)

    def _looked_up(self, probe, mode: str, weights, samples) -> dict:
        """{id(original variable): the rows the samples look up} for each weight the twin's loss reads
        only by lookups, when they are fewer than all its rows. The probe's own trace says first
        whether any weight is read that way, so a layer without lookups never traces its loss here."""
        tf, _ = tensorflow()
        trace = next((t for t in probe.traces if t.mode == mode), None)
        sources = [trace.source(t.variable) for t in weights if t.variable.shape.rank] if trace is not None else []
        if not any(lookup_indices(source) for source in sources if source is not None):
            return {}
        graph = self.graph
        placeholders = {
            id(t.variable): (self.placeholder(t), int(t.variable.shape[0])) for t in weights if t.variable.shape.rank
        }
        self.twin.reset_seeds()
        arguments = [tf.constant(x) for x in samples.inputs] + list(self.projections)
        with user_code("looking up the rows the samples read"):
            return rows_read(graph, placeholders, arguments)

    def rows(self, target):
        """The rows of the target's weight that the samples look up (numpy), or None: all of it."""
        return self._rows.get(id(target.variable)) if target.variable is not None else None

    def unread(self, target, *, tape: bool = False) -> float | None:
        """The norm of the gradient the last `gradients()` gave the rows of the target's weight the
        samples do not look up (the loss cannot depend on them); None for a weight compared whole."""
        norms = self._unread[tape]
        return norms[self._order.index(id(target))] if norms and id(target) in self._order else None

    @property
    def loss_function(self):
        """Traced on first use: a mode found identical to an earlier one never needs it."""
        if self._loss_function is None:
            tf, _ = tensorflow()
            self.twin.reset_seeds()
            with self.twin.arithmetic():
                self._loss_function = trace_layer_function(self.twin.layer, self._loss, self._specs)
        return self._loss_function

    @property
    def graph(self):
        return self.loss_function.graph

    def loss(self, xs, tensors=None) -> float:
        """The probe loss on numpy inputs `xs` (or on `tensors` already made from them)."""
        tf, _ = tensorflow()
        self.twin.reset_seeds()
        tensors = tensors if tensors is not None else [tf.constant(x) for x in xs]
        with user_code("running the layer's loss in a finite-difference pass"):
            return float(self.loss_function(*tensors, *self.projections).numpy())

    def gradients(self, xs, *, tape: bool = False):
        """(loss, gradients) at numpy inputs `xs`: the derivative of the forward computation (every
        stop_gradient passed through), or with `tape` the gradient the tape gives (what fit() uses)."""
        tf, _ = tensorflow()
        if self._both is not None:
            value, grads, unread = self._both_at(xs)[tape]
        else:
            self.twin.reset_seeds()
            function = self.tape_function if tape else self.gradient_function
            with user_code("running the layer's gradient in a finite-difference pass"):
                value, grads, unread = function(*[tf.constant(x) for x in xs], *self.projections)
        self._unread[tape] = [None if u is None else float(u.numpy()) for u in unread]
        return float(value.numpy()), [None if g is None else np.asarray(g.numpy(), "float64") for g in grads]

    def _both_at(self, xs) -> dict:
        """{tape: (loss, gradients, unread norms)} from the one function giving both, run once for
        inputs equal to the last ones asked for."""
        tf, _ = tensorflow()
        last = self._last
        if last is None or len(last[0]) != len(xs) or not all(np.array_equal(a, b) for a, b in zip(last[0], xs)):
            self.twin.reset_seeds()
            with user_code("running the layer's gradient in a finite-difference pass"):
                value, grads, unread, taped, taped_unread = self._both(*[tf.constant(x) for x in xs], *self.projections)
            last = self._last = (
                [np.array(x) for x in xs],
                {False: (value, grads, unread), True: (value, taped, taped_unread)},
            )
        return last[1]

    def placeholder(self, target):
        """The graph tensor a target enters the loss through (an input, or a variable's handle)."""
        if target.variable is None:
            return self.graph.inputs[target.input_index]
        handle = self.twin.variables[id(target.variable)].handle
        for external, internal in self.graph.captures:
            if external is handle:
                return internal
        return None

    def low_precision(self, target) -> LowPrecisionOp | None:
        """The first op on the target's path computing in less than float64 (a cast, an FFT)."""
        return low_precision_op(self.placeholder(target))

    def custom_gradient_line(self, target) -> str | None:
        """The user's line applying a tf.custom_gradient on the target's path ("" outside their code)."""
        return downstream_op(self, target, is_custom_gradient)

    def custom_gradients(self, target) -> list[str]:
        """Each tf.custom_gradient on the target's path, in words: where it is applied, and the
        gradient function the user gave it."""
        return custom_gradients_on_path(self, target)

    def no_gradient_by_design(self, target) -> str | None:
        """The line of a tf.numpy_function on the target's path ("" outside the user's code), None
        when there is none: finite differences see that path move the loss, while it has no
        gradient at all, so the two cannot be compared."""
        return downstream_op(self, target, has_no_gradient)

    def stop_line(self, target) -> str | None:
        """The line of a tf.stop_gradient on the target's path ("" outside the user's code), or None."""
        return downstream_op(self, target, lambda op: op.type in STOP_OPS) if self.stops else None


def _split_rows(tf, gradient, rows):
    """(the gradient on `rows`, in their order, and the norm of the gradient on every other row).

    An embedding's gradient arrives as tf.IndexedSlices, one slice per id looked up: the slices of
    the wanted rows are summed per row as a dense conversion would sum them, without the dense
    tensor; slices of any other row (which a correct gradient never has) are summed apart."""
    rows = tf.constant(rows, tf.int64)
    count = tf.size(rows, out_type=tf.int64)
    if isinstance(gradient, tf.IndexedSlices):
        indices = tf.cast(gradient.indices, tf.int64)
        place = tf.minimum(tf.searchsorted(rows, indices, out_type=tf.int64), count - 1)
        inside = tf.equal(tf.gather(rows, place), indices)
        outside = tf.logical_not(inside)
        part = tf.math.unsorted_segment_sum(
            tf.boolean_mask(gradient.values, inside), tf.boolean_mask(place, inside), count
        )
        others, which = tf.unique(tf.boolean_mask(indices, outside))
        rest = tf.math.unsorted_segment_sum(tf.boolean_mask(gradient.values, outside), which, tf.size(others))
        return part, tf.norm(rest)
    gradient = tf.convert_to_tensor(gradient)
    total = tf.shape(gradient, out_type=tf.int64)[0]
    elsewhere = 1 - tf.scatter_nd(rows[:, None], tf.ones_like(rows, gradient.dtype), [total])
    shape = tf.concat([[total], tf.ones([tf.rank(gradient) - 1], tf.int64)], 0)
    return tf.gather(gradient, rows), tf.norm(gradient * tf.reshape(elsewhere, shape))


_PYTHON_OPS = frozenset({"EagerPyFunc", "PyFunc", "PyFuncStateless"})


def _stops_in(probe, mode: str) -> bool:
    """Whether the probe's trace of `mode` holds a stop_gradient, and no Python function (whose
    backward may run once per forward pass only, where one function would run two)."""
    trace = next((t for t in probe.traces if t.mode == mode), None)
    if trace is None:
        return False
    types = {op.type for op in trace.graph.get_operations()}
    return bool(types & STOP_OPS) and not types & _PYTHON_OPS
