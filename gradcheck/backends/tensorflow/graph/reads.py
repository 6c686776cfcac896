"""What a traced call() reads: the variables (their captured handles) and the tensors and arrays
it uses as constants; and the probe's pass without a trace, for a call() that cannot be traced.

The trace shows what call() really uses (design notes 2): a captured resource handle is a variable
it reads, a captured eager tensor or an embedded Const equal to an attribute is a constant posing
as a weight. The tape would miss a variable read only under stop_gradient (design notes 7), so it
is used only when tracing failed, as a best effort.
"""

from __future__ import annotations

import numpy as np

from ....errors import LayerRaised, user_code
from ....layer.calling import call_layer, random_training
from ....layer.source import user_location
from ..leaves import float_tensors, probe_loss
from ..runtime import tensorflow
from ..tracing import backing


def read_variables(probe):
    """is_read(variable): whether call() reads it, from the traces (from a tape if tracing failed)."""
    _, keras = tensorflow()
    if probe.traces:
        handles = {handle for trace in probe.traces for handle in trace.handle_placeholders}
    else:
        handles = _taped_handles(probe)
    return lambda variable: id(backing(variable, keras).handle) in handles


def _taped_handles(probe) -> set[int]:
    tf, _ = tensorflow()
    with tf.GradientTape(persistent=True) as tape:
        call_layer(probe.layer, probe.input_tensors(), probe.training, probe.accepts_training)
    return {id(v.handle) for v in tape.watched_variables()}


def constants_used(probe) -> list:
    """(object, its values, first_use()) for every float tensor or numpy array call() uses as a
    constant: captured eager tensors, then arrays embedded as Const ops, trace by trace."""
    found: list = []
    seen = set()
    for trace in probe.traces:
        for external, placeholder in trace.tensor_captures:
            if id(external) in seen or not external.dtype.is_floating:
                continue
            seen.add(id(external))
            found.append((external, external.numpy(), _first_use(placeholder)))
        for array_id, array in probe.names.objects.items():
            if array_id in seen or not isinstance(array, np.ndarray):
                continue
            if array.dtype.kind != "f" or array.size < 2:
                continue
            op = _embedded_constant(trace.graph, array)
            if op is not None:
                seen.add(array_id)
                found.append((array, array, _first_use(op.outputs[0])))
    return found


def _first_use(placeholder):
    """The user's line of the first op that uses a captured tensor, asked only when needed."""

    def line() -> str | None:
        for op in placeholder.consumers():
            location = user_location(op.traceback)
            if location:
                return location
        return None

    return line


def _embedded_constant(graph, array):
    """The Const op holding `array`'s values (a numpy array used in call() is embedded, design notes 2)."""
    from tensorflow.python.framework import tensor_util

    for op in graph.get_operations():
        if op.type != "Const" or tuple(op.outputs[0].shape) != array.shape:
            continue
        if np.array_equal(tensor_util.MakeNdarray(op.get_attr("value")), array):
            return op
    return None


def eager_result(probe) -> dict:
    """call() could not be traced: take the gradients with an eager tape. A `.numpy()` round trip
    then shows as a None gradient, though no graph says where the path broke."""
    tf, _ = tensorflow()
    xs = probe.input_tensors()
    floats = [xs[i] for i in probe.float_input_indexes]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(floats)
        training = random_training(probe.training) if probe.accepts_training else None
        result = call_layer(probe.layer, xs, training, probe.accepts_training)
        outputs = float_tensors(tf, result)
        mode = {True: "true", False: "false", None: "n/a"}[training]
        loss = probe_loss(tf, outputs, [tf.constant(r) for r in probe.projections_for(mode)], probe.batch_size)
    grads = []
    for source in probe.gradient_variables + floats:
        try:
            with user_code("differentiating the probe loss"):
                grad = tape.gradient(loss, source, unconnected_gradients=tf.UnconnectedGradients.NONE)
        except LayerRaised:
            grad = None  # a py_function whose body left TensorFlow crashes its backward (design notes 7)
        grads.append(None if grad is None else tf.convert_to_tensor(grad).numpy())
    del tape
    return {"loss": float(loss.numpy()), "outputs": [o.numpy() for o in outputs], "grads": grads}
