"""The probe: build the layer on sampled inputs, watch what it creates, and trace what call() uses.

Everything the checks need is computed here once and kept on one `Probe` object: the layer, its
inputs and outputs, the names of what it holds, where each variable was created, and one traced
graph per `training` mode. The traced function also returns the probe loss and its gradients, so
the gradient check and the inventory read one trace (NOTES.md 2: the graph shows what call() really
reads; the tape does not, NOTES.md 7).
"""

from __future__ import annotations

import contextlib
import inspect
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import state
from .errors import GradcheckError
from .loading import Loaded, error_text, user_frame_of
from .naming import Names
from .options import Options
from .outputs import float_leaves
from .report import finding
from .runtime import tensorflow
from .sampling import projections, sample_inputs
from .source import user_location


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
            self.created[id(variable)] = (variable, user_location(traceback.extract_stack()[:-1]))
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

    def consumers_location(self, placeholder) -> str | None:
        """The user's line of the first op that uses a captured tensor."""
        for op in placeholder.consumers():
            location = user_location(op.traceback)
            if location:
                return location
        return None


@dataclass
class Probe:
    loaded: Loaded
    options: Options
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

    @property
    def float_input_indexes(self) -> list[int]:
        return [i for i, spec in enumerate(self.options.inputs) if spec.is_float]

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

    def input_tensors(self):
        tf, _ = tensorflow()
        return [tf.constant(a) for a in self.inputs]


def call_layer(layer, inputs, training, accepts_training: bool):
    """Call the layer as Keras would: one input as itself, several as a list (the contract), or
    as separate arguments when call() asks for that many (`MultiHeadAttention.call(query, value)`,
    NOTES.md 9)."""
    keywords = {"training": training} if accepts_training and training is not None else {}
    _check_input_count(layer, len(inputs))
    if len(inputs) == 1:
        return layer(inputs[0], **keywords)
    if _required_positional(layer) == len(inputs):
        return layer(*inputs, **keywords)
    return layer(list(inputs), **keywords)


def _check_input_count(layer, given: int) -> None:
    """call(a, b) given three --input-shapes: say so, rather than Keras's "missing a required argument"."""
    try:
        parameters = inspect.signature(layer.call).parameters.values()
    except (TypeError, ValueError):
        return
    names = [
        p.name
        for p in parameters
        if p.kind == p.POSITIONAL_OR_KEYWORD and p.default is p.empty and p.name not in ("training", "mask")
    ]  # Keras fills these itself
    if len(names) > 1 and len(names) != given:
        raise GradcheckError(
            f"{given} --input-shape value(s) for a call() that takes {len(names)} inputs ({', '.join(names)}). "
            "Give --input-shape once per input of call(), in the order of its arguments."
        )


def _required_positional(layer) -> int:
    try:
        parameters = inspect.signature(layer.call).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(1 for p in parameters if p.kind == p.POSITIONAL_OR_KEYWORD and p.default is p.empty)


def takes_training(layer) -> bool:
    try:
        parameters = inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False
    return "training" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def _float_outputs(tf, result):
    leaves = float_leaves(tf, result)
    return [t for _, t in leaves], [n for n, _ in leaves]


def random_training(options: Options) -> bool:
    """The `training` value for a call that should show randomness: True, unless --no-training."""
    return options.training if options.training is not None else True


def _user_failure(error: Exception, doing: str, options: Options) -> GradcheckError:
    where = user_frame_of(error)
    place = f" at {where}" if where else ""
    text = error_text(error)
    if isinstance(error, MemoryError):  # often raised with no text at all: name the request and the limit
        total = sum(spec.elements for spec in options.inputs)
        text = (f"{text}; " if text else "") + (
            f"out of memory with inputs of {total:,} numbers in all (--max-elements allows "
            f"{options.max_elements:,} per input)"
        )
    text = text or "(no message)"
    text = text if text.endswith((".", "!", "?")) else text + "."
    shapes = " and ".join(",".join(map(str, s.shape)) for s in options.inputs)
    hint = "Fix the layer, or check that --input-shape/--input-dtype describe what it expects"
    return GradcheckError(
        f"{type(error).__name__} raised{place} while {doing} on input shape {shapes}: {text} "
        f"{hint} (run with --debug for the full traceback)."
    )


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
        except GradcheckError:
            raise
        except Exception as error:
            raise _user_failure(error, "building and calling the layer", options) from None
        mark = len(log.created)
        stochastic_mode = random_training(options) if accepts_training else None
        carried = state.fixed(layer, keras, options.seed, rng=False)  # RNN states from zero
        try:
            # A stateful RNN carries its state from call to call: both calls start from the same
            # state, so only randomness (dropout, noise) can make them differ.
            state.restore(carried)
            second = call_layer(layer, tensors, stochastic_mode, accepts_training)
            state.restore(carried)
            third = call_layer(layer, tensors, stochastic_mode, accepts_training)
        except Exception as error:
            raise _user_failure(error, "calling the layer a second time", options) from None
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
        options=options,
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
        except GradcheckError:
            raise
        except Exception as error:
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
                "trace-failed",
                None,
                f"call() could not be traced with tf.function ({probe.trace_error}). Keras's fit() "
                "traces call(), so it will fail there too unless the model is compiled with "
                "run_eagerly=True. Graph-based checks (which op cuts a path, constants) were skipped.",
            )
        )
    if probe.stochastic:
        findings.append(
            finding(
                "stochastic-output",
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


def loss_of(tf, outputs, projections_, batch: int):
    """sum(r * y) / batch over every float output, in float32 at least (float64 for float64 outputs)."""
    total: Any = None
    for y, r in zip(outputs, projections_):
        dtype = tf.float64 if y.dtype == tf.float64 else tf.float32
        term = tf.reduce_sum(tf.cast(y, dtype) * tf.cast(r, dtype))
        term = tf.cast(term, tf.float64) if total is not None and total.dtype == tf.float64 else term
        total = term if total is None else total + tf.cast(term, total.dtype)
    return total / batch


def _trace(probe: Probe, mode: str) -> Trace:
    tf, keras = tensorflow()
    layer = probe.layer
    training = {"true": True, "false": False}.get(mode)
    float_indexes = probe.float_input_indexes
    count = len(probe.inputs)
    batch = probe.options.inputs[0].shape[0]
    holder = {}

    def forward(*arguments):
        xs, rs = list(arguments[:count]), list(arguments[count:])
        with tf.GradientTape() as tape:
            for i in float_indexes:
                tape.watch(xs[i])
            result = call_layer(layer, xs, training, probe.accepts_training)
            outputs, _ = _float_outputs(tf, result)
            loss = loss_of(tf, outputs, rs, batch)
        sources = probe.gradient_variables + [xs[i] for i in float_indexes]
        grads = tape.gradient(loss, sources, unconnected_gradients=tf.UnconnectedGradients.NONE)
        grads = [None if g is None else tf.convert_to_tensor(g) for g in grads]
        holder["loss"] = loss
        holder["inputs"] = xs
        return {"loss": loss, "outputs": outputs, "grads": grads}

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
    """The graph's nodes (with names, attributes and inputs) and the identity of what it captures.

    Nested functions (a while loop's body) get unique names per trace, so such graphs never
    compare equal: the comparison errs towards checking both modes."""
    definition = graph.as_graph_def()
    nodes = tuple(node.SerializeToString(deterministic=True) for node in definition.node)
    library = definition.library.SerializeToString(deterministic=True)
    return nodes, library, tuple(id(external) for external, _ in graph.captures)


def trace_layer_function(layer, python_function, specs):
    """tf.function(python_function).get_concrete_function(*specs), leaving `layer` as it was.

    A call() that assigns an attribute (`self.kernel = self.kernel / n`) leaves a tensor of the
    trace's graph on the layer; any later eager call would then fail. Such attributes are put back.
    """
    tf, _ = tensorflow()
    before = {id(sub): (sub, dict(vars(sub))) for sub in layer._flatten_layers(include_self=True, recursive=True)}
    function = tf.function(python_function, autograph=_autograph_reaches(layer)).get_concrete_function(*specs)
    for sub, attributes in before.values():
        for key, value in list(vars(sub).items()):
            is_graph_tensor = tf.is_tensor(value) and not isinstance(value, tf.Variable) and not hasattr(value, "numpy")
            if is_graph_tensor and key in attributes:
                vars(sub)[key] = attributes[key]
    return function


def _autograph_reaches(layer) -> bool:
    """Whether autograph would convert any of the layer's code when it converts gradcheck's wrapper.

    It converts a called object only when the object's `__call__` is off its do-not-convert list,
    and Keras is on that list: Keras's `Layer.__call__` runs call() unconverted (as fit() does,
    whose step Keras marks do_not_convert). So for a layer that keeps Keras's `__call__`, autograph
    would convert only gradcheck's own wrapper, which needs none, at a cost of about a second per
    run (and more for each new wrapper); it stays on for a class that defines its own `__call__`.
    """
    call = getattr(type(layer), "__call__", None)
    module = getattr(call, "__module__", None) or ""
    return not (module == "keras" or module.startswith("keras."))


def run_trace(probe: Probe, trace: Trace) -> dict:
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
