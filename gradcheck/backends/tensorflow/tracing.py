"""Tracing call() with TensorFlow: the variables a layer creates, one traced graph per `training`
mode holding the probe loss and its gradients, and running it.

The graph shows what call() really reads, where the tape does not (design notes 2 and 7), so the
inventory and the gradient check read the same trace.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from ...errors import user_code
from ...layer.calling import training_of
from ...layer.source import user_location, user_location_of_caller
from .runtime import tensorflow
from .tape import probe_gradients


class VariableLog:
    """Records every tf.Variable created while active, with the user's line that created it.

    Keras variables are backed by a tf.Variable, so `add_weight` is seen here too; the creating
    line is the innermost frame of the user's code (the `add_weight` or `tf.Variable` call).
    """

    def __init__(self):
        self.created: dict[int, tuple[Any, str | None]] = {}  # id(tf.Variable) -> (variable, location)
        self._scope = None

    @contextlib.contextmanager
    def recording(self):
        tf, _ = tensorflow()

        def creator(next_creator, **kwargs):
            variable = next_creator(**kwargs)
            self.created[id(variable)] = (variable, user_location_of_caller())
            return variable

        with tf.variable_creator_scope(creator):
            yield self

    def since(self, mark: int) -> list[tuple[Any, str | None]]:
        return list(self.created.values())[mark:]


@dataclass
class Trace:
    """call() traced under one value of `training`, with the probe loss and its gradients."""

    mode: str  # "true", "false" or "n/a" (call() takes no `training`)
    function: Any  # ConcreteFunction(inputs..., projections...) -> {"loss", "outputs", "grads"}
    graph: Any
    loss: Any  # the loss tensor inside `graph`
    input_placeholders: list
    handle_placeholders: dict  # id(captured variable handle) -> placeholder inside the graph
    tensor_captures: list  # (captured eager tensor, placeholder) for non-variable captures
    fingerprint: Any = None  # equal for two traces that hold the same ops reading the same captures

    def source(self, variable=None, input_index: int | None = None):
        """The placeholder inside `graph` for a variable (its captured handle) or a float input."""
        if variable is not None:
            _, keras = tensorflow()
            return self.handle_placeholders.get(id(backing(variable, keras).handle))
        assert input_index is not None, "a variable or an input index"
        return self.input_placeholders[input_index]

    def consumers_location(self, placeholder) -> str | None:
        """The user's line of the first op that uses a captured tensor."""
        for op in placeholder.consumers():
            location = user_location(op.traceback)
            if location:
                return location
        return None


def gradient_variables(layer, names) -> list:
    """The trainable weights fit() would train, then trainable raw tf.Variables it would miss."""
    tf, keras = tensorflow()
    tracked = list(layer.trainable_variables)
    tracked_ids = {id(v.value) for v in tracked if isinstance(v, keras.Variable)}
    untracked = [
        obj
        for key, obj in names.objects.items()
        if isinstance(obj, tf.Variable) and obj.trainable and id(obj) not in tracked_ids and obj.dtype.is_floating
    ]
    return tracked + untracked


def backing(variable, keras):
    """The tf.Variable behind a Keras variable (the thing a traced graph captures)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def trace_mode(probe, mode: str) -> Trace:
    tf, keras = tensorflow()
    layer = probe.layer
    count = len(probe.inputs)
    holder = {}

    def forward(*arguments):
        xs, rs = list(arguments[:count]), list(arguments[count:])
        taped = probe_gradients(
            layer,
            xs,
            rs,
            training=training_of(mode),
            accepts_training=probe.accepts_training,
            variables=probe.gradient_variables,
            float_indexes=probe.float_input_indexes,
            batch=probe.batch_size,
        )
        holder["loss"] = taped.loss
        holder["inputs"] = xs
        return {"loss": taped.loss, "outputs": taped.outputs, "grads": taped.grads}

    specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in probe.inputs]
    specs += [tf.TensorSpec(r.shape, tf.float64) for r in probe.projections_for(mode)]
    function = trace_layer_function(layer, forward, specs)
    graph = function.graph
    handles, tensors = {}, []
    for external, internal in graph.captures:
        if external.dtype == tf.resource:
            handles[id(external)] = internal
        else:
            tensors.append((external, internal))
    return Trace(
        fingerprint=fingerprint(graph),
        mode=mode,
        function=function,
        graph=graph,
        loss=holder["loss"],
        input_placeholders=holder["inputs"],
        handle_placeholders=handles,
        tensor_captures=tensors,
    )


def fingerprint(graph):
    """The graph's nodes (with names, attributes and inputs), the functions they call, and the
    identity of what it captures.

    Nested functions (a while loop's body and cond, their gradients) get a new unique name in every
    trace, which also shows in the names of their arguments and nodes: so that an RNN's two modes
    can compare equal, each function's name is replaced, wherever it occurs, by the order in which
    the graph first calls it. Two traces then compare equal only when they are the same up to those
    names; any other difference (a dropout mask in one mode) keeps both modes checked.
    """
    definition = graph.as_graph_def()
    captured = tuple(id(external) for external, _ in graph.captures)
    if not definition.library.function:
        return tuple(node.SerializeToString(deterministic=True) for node in definition.node), captured
    from google.protobuf import text_format

    functions = {function.signature.name: function for function in definition.library.function}
    order: list[str] = []

    def visit(nodes) -> None:
        for node in nodes:
            for key in sorted(node.attr):
                value = node.attr[key]
                for reference in [value.func] if value.HasField("func") else value.list.func:
                    if reference.name in functions and reference.name not in order:
                        order.append(reference.name)
                        visit(functions[reference.name].node_def)

    visit(definition.node)
    # Functions no node calls (a loop body's original beside its rewritten copy) follow by name:
    # should two of them swap places between traces, the traces differ and both modes are checked.
    order += sorted(set(functions) - set(order))
    longest_first = sorted(order, key=len, reverse=True)  # "..._body_443" is part of "..._body_443_grad_569"

    def canonical(message) -> str:
        text = text_format.MessageToString(message)
        for name in longest_first:
            text = text.replace(name, f"<function {order.index(name)}>")
        return text

    nodes = tuple(canonical(node) for node in definition.node)
    library = tuple(sorted(canonical(entry) for entry in [*definition.library.function, *definition.library.gradient]))
    return nodes, library, captured


def trace_layer_function(layer, python_function, specs):
    """tf.function(python_function).get_concrete_function(*specs), leaving `layer` as it was.

    A call() that assigns an attribute (`self.kernel = self.kernel / n`) leaves a tensor of the
    trace's graph on the layer; any later eager call would then fail. Such attributes are put back.
    """
    tf, _ = tensorflow()
    before = {id(sub): (sub, dict(vars(sub))) for sub in layer._flatten_layers(include_self=True, recursive=True)}
    # No autograph, as in fit(): Keras 3 traces its train step under
    # tf.autograph.experimental.do_not_convert (keras/src/backend/tensorflow/trainer.py), and keras is
    # on autograph's own do-not-convert list, so call() runs as plain Python either way (a Python `if`
    # on a tensor fails in fit() and here alike). Converting gradcheck's own wrappers changed nothing
    # and cost about 1.5 s of CPU per TransformerEncoder-sized check.
    function = tf.function(python_function, autograph=False).get_concrete_function(*specs)
    for sub, attributes in before.values():
        for key, value in list(vars(sub).items()):
            is_graph_tensor = tf.is_tensor(value) and not isinstance(value, tf.Variable) and not hasattr(value, "numpy")
            if is_graph_tensor and key in attributes:
                vars(sub)[key] = attributes[key]
    return function


def execute_trace(probe, trace: Trace) -> dict:
    """Execute a traced probe function on the probe's inputs; numpy results (None kept)."""
    tf, _ = tensorflow()
    with user_code("running the probe's traced pass"):  # its backward may raise (design notes 7)
        result = trace.function(*probe.input_tensors(), *[tf.constant(r) for r in probe.projections_for(trace.mode)])
    return {
        "loss": float(result["loss"].numpy()),
        "outputs": [o.numpy() for o in result["outputs"]],
        "grads": [None if g is None else g.numpy() for g in result["grads"]],
    }
