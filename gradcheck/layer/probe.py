"""The probe: build the layer on sampled inputs, watch what it creates, and trace what call() uses.

Everything the checks need is computed here once and kept on one `Probe` object: the layer, its
inputs and outputs, the names of what it holds, where each variable was created, and one traced
graph per `training` mode. The traced function also returns the probe loss and its gradients, so
the gradient check and the inventory read one trace (design notes 2: the graph shows what call() really
reads; the tape does not, design notes 7).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import codes
from ..errors import GradcheckError, LayerRaised
from ..options.settings import InputSpec, Options
from ..report import finding
from ..runtime import tensorflow
from . import state
from .calling import call_layer, random_training, takes_training, training_of
from .leaves import float_leaves
from .loading import Loaded
from .naming import Names
from .sampling import projections, sample_inputs
from .source import error_text, user_code_error, user_frame_of, user_location, user_location_of_caller
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

    def placeholder_of(self, variable=None, input_index: int | None = None):
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


@dataclass
class Probe:
    """The layer built and called on sampled inputs, and what that showed. It holds what the sample
    was made from (input specs, seed, the requested `training`), never the checks' own settings:
    a check is handed the Options it needs by the pipeline (api.py)."""

    loaded: Loaded
    input_specs: tuple[InputSpec, ...]
    seed: int  # the inputs and projections were drawn with it; checks draw their own streams from it
    training: bool | None  # --training/--no-training: every call gradcheck makes uses it (None: both)
    layer: Any
    inputs: list  # numpy arrays, one per --input-shape
    outputs: list  # the float output tensors of the first call, flattened
    output_names: list[str]
    projections: list  # numpy float64 arrays, one per output
    accepts_training: bool
    stochastic: bool
    names: Names
    log: VariableLog
    created_in_call: list  # (tf.Variable, location) made by a call after the first
    gradient_variables: list  # what the traced gradients are taken with respect to, in order
    traces: list[Trace] = field(default_factory=list)
    trace_error: str | None = None  # why call() could not be traced, with the user's line
    backward_failures: list = field(default_factory=list)  # backward-failed findings (backward.py)
    twins: list = field(default_factory=list)  # float64 copies made so far, shared by the checks (twin.py)

    @property
    def batch_size(self) -> int:
        """The first input's leading dimension: the probe loss is a mean over it."""
        return self.input_specs[0].shape[0]

    @property
    def float_input_indexes(self) -> list[int]:
        return [i for i, spec in enumerate(self.input_specs) if spec.is_float]

    def distinct_traces(self) -> list:
        """The traces that compute something different: a layer whose call() ignores `training`
        (Dense, MultiHeadAttention) traces to the same graph in both modes, and checking the
        second would only repeat the first at the cost of another pass."""
        distinct, seen = [], set()
        for trace in self.traces:
            if trace.fingerprint is None or trace.fingerprint not in seen:
                distinct.append(trace)
                seen.add(trace.fingerprint)
        return distinct

    def tensor_name(self, variable) -> str:
        """How a variable is shown: its attribute path on the layer (naming.py)."""
        return self.names.variable_name(variable, self.layer)

    def input_tensors(self):
        tf, _ = tensorflow()
        return [tf.constant(a) for a in self.inputs]


def _float_outputs(tf, result):
    leaves = float_leaves(tf, result)
    return [t for _, t in leaves], [n for n, _ in leaves]


def _user_failure(error: BaseException, doing: str, options: Options) -> GradcheckError:
    note = ""
    if isinstance(error, MemoryError):  # often raised with no text at all: name the request and the limit
        total = sum(spec.elements for spec in options.inputs)
        note = (
            f"out of memory with inputs of {total:,} numbers in all (--max-elements allows "
            f"{options.max_elements:,} per input)"
        )
    shapes = " and ".join(",".join(map(str, s.shape)) for s in options.inputs)
    hint = "Fix the layer, or check that --input-shape/--input-dtype describe what it expects"
    return user_code_error(error, f"{doing} on input shape {shapes}", hint, note)


def make_probe(loaded: Loaded, options: Options, log: VariableLog) -> Probe:
    tf, keras = tensorflow()
    layer = loaded.layer
    inputs = sample_inputs(options.inputs, options.seed)
    accepts_training = takes_training(layer)
    tensors = [tf.constant(a) for a in inputs]

    with log.recording():
        try:
            # --training/--no-training holds for every call gradcheck makes, this one included.
            first = call_layer(layer, tensors, options.training, accepts_training)
        except LayerRaised as raised:
            raise _user_failure(raised.error, "building and calling the layer", options) from None
        mark = len(log.created)
        stochastic_mode = random_training(options.training) if accepts_training else None
        carried = state.fixed(layer, keras, options.seed, rng=False)  # RNN states from zero
        try:
            # A stateful RNN carries its state from call to call: both calls start from the same
            # state, so only randomness (dropout, noise) can make them differ.
            state.restore(carried)
            second = call_layer(layer, tensors, stochastic_mode, accepts_training)
            state.restore(carried)
            third = call_layer(layer, tensors, stochastic_mode, accepts_training)
        except LayerRaised as raised:
            raise _user_failure(raised.error, "calling the layer a second time", options) from None
        created_in_call = log.since(mark)

    outputs, output_names = _float_outputs(tf, first)
    if not outputs:
        returned = f"a tensor of dtype {first.dtype.name}" if tf.is_tensor(first) else type(first).__name__
        raise GradcheckError(
            f"call() returned {returned} with no floating-point tensor in it, so there is "
            "nothing a gradient can flow from. A layer must return a float tensor (or a tuple, list or "
            "dict of them); check what call() returns."
        )
    stochastic = any(
        not np.array_equal(a.numpy(), b.numpy(), equal_nan=True)  # a NaN output is not noise
        for a, b in zip(_float_outputs(tf, second)[0], _float_outputs(tf, third)[0])
    )
    names = Names(layer, tf, keras)
    gradient_variables = _gradient_variables(layer, names, tf, keras)
    probe = Probe(
        loaded=loaded,
        input_specs=options.inputs,
        seed=options.seed,
        training=options.training,
        layer=layer,
        inputs=inputs,
        outputs=outputs,
        output_names=output_names,
        projections=projections([tuple(o.shape) for o in outputs], options.seed),
        accepts_training=accepts_training,
        stochastic=stochastic,
        names=names,
        log=log,
        created_in_call=created_in_call,
        gradient_variables=gradient_variables,
    )
    for mode in _modes(options, accepts_training):
        try:
            probe.traces.append(_trace(probe, mode))
        except LayerRaised as raised:  # call() (or its gradient) cannot be traced
            error = raised.error
            where = user_frame_of(error)
            probe.trace_error = f"{type(error).__name__}: {error_text(error, 300)}" + (
                f" (at {where})" if where else ""
            )
            probe.traces = []
            break
    return probe


def probe_findings(probe: Probe) -> list:
    """What building and tracing the layer showed by itself: call() cannot be traced, or its
    output is random from call to call."""
    findings = []
    if probe.trace_error:
        findings.append(
            finding(
                codes.TRACE_FAILED,
                None,
                f"call() could not be traced with tf.function ({probe.trace_error}). Keras's fit() "
                "traces call(), so it will fail there too unless the model is compiled with "
                "run_eagerly=True. Graph-based checks (which op cuts a path, constants) were skipped.",
            )
        )
    if probe.stochastic:
        findings.append(
            finding(
                codes.STOCHASTIC_OUTPUT,
                None,
                "Two calls with the same input gave different outputs (dropout or noise); the gradient "
                "checks fix the random state so their results repeat.",
            )
        )
    return findings


def _modes(options: Options, accepts_training: bool) -> list[str]:
    if not accepts_training:
        return ["n/a"]
    if options.training is None:
        return ["true", "false"]
    return ["true" if options.training else "false"]


def _gradient_variables(layer, names: Names, tf, keras) -> list:
    """The trainable weights fit() would train, then trainable raw tf.Variables it would miss."""
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


def _trace(probe: Probe, mode: str) -> Trace:
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
    specs += [tf.TensorSpec(r.shape, tf.float64) for r in probe.projections]
    function = trace_layer_function(layer, forward, specs)
    graph = function.graph
    handles, tensors = {}, []
    for external, internal in graph.captures:
        if external.dtype == tf.resource:
            handles[id(external)] = internal
        else:
            tensors.append((external, internal))
    return Trace(
        fingerprint=_fingerprint(graph),
        mode=mode,
        function=function,
        graph=graph,
        loss=holder["loss"],
        input_placeholders=holder["inputs"],
        handle_placeholders=handles,
        tensor_captures=tensors,
    )


def _fingerprint(graph):
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


def execute_trace(probe: Probe, trace: Trace) -> dict:
    """Execute a traced probe function on the probe's inputs; numpy results (None kept)."""
    tf, _ = tensorflow()
    result = trace.function(*probe.input_tensors(), *[tf.constant(r) for r in probe.projections])
    return {
        "loss": float(result["loss"].numpy()),
        "outputs": [o.numpy() for o in result["outputs"]],
        "grads": [None if g is None else g.numpy() for g in result["grads"]],
    }


def location_of_variable(probe: Probe, variable) -> str | None:
    _, keras = tensorflow()
    record = probe.log.created.get(id(backing(variable, keras)))
    if record and record[1]:
        return record[1]
    return probe.names.assignment_location(variable)
