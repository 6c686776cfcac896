"""The probe: build the layer on sampled inputs, watch what it creates, and trace what call() uses.

Everything the checks need is computed here once and kept on one `Probe` object: the layer, its
inputs and outputs, the names of what it holds, where each variable was created, and one traced
graph per `training` mode (made by the backend). The traced function also returns the probe loss
and its gradients, so the gradient check and the inventory read one trace (design notes 2: the
graph shows what call() really reads; the tape does not, design notes 7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import codes
from ..errors import GradcheckError, LayerFailed, LayerRaised
from ..options.settings import InputSpec, Options
from ..report import finding
from ..runtime import backend
from . import state
from .calling import call_layer, random_training, takes_training
from .loading import Loaded
from .naming import Names
from .sampling import projections, sample_inputs
from .source import error_text, foreign_op_line, user_code_error, user_frame_of


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
    log: Any  # the backend's record of the variables made, with the user's line of each
    created_in_call: list  # (tf.Variable, location) made by a call after the first
    gradient_variables: list  # what the traced gradients are taken with respect to, in order
    traces: list = field(default_factory=list)  # the backend's Trace per training mode
    trace_error: str | None = None  # why call() could not be traced, with the user's line
    backward_failures: list = field(default_factory=list)  # backward-failed findings (backward.py)
    twins: list = field(default_factory=list)  # float64 copies made so far, shared by the checks (twin.py)
    # A training mode whose outputs have other shapes than the first call's (RandomCrop crops only
    # with training=True) gets projections of its own: see projections_for.
    mode_projections: dict = field(default_factory=dict)

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

    def projections_for(self, mode: str) -> list:
        """The projections of the probe loss in a training mode ("true", "false", "n/a"): drawn
        for that mode's own output shapes, so each mode is its own probe (design notes 20)."""
        return self.mode_projections.get(mode, self.projections)

    def input_tensors(self):
        return [backend().constant(a) for a in self.inputs]


def _float_outputs(result):
    leaves = backend().float_leaves(result)
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


def make_probe(loaded: Loaded, options: Options, log) -> Probe:
    """The layer called on inputs sampled for `options`, traced per mode; `log` records variables."""
    framework = backend()
    layer = loaded.layer
    inputs = sample_inputs(options.inputs, options.seed)
    accepts_training = takes_training(layer)
    tensors = [framework.constant(a) for a in inputs]

    with log.recording():
        try:
            # --training/--no-training holds for every call gradcheck makes, this one included.
            first = call_layer(layer, tensors, options.training, accepts_training)
        except LayerRaised as raised:
            raise _user_failure(raised.error, "building and calling the layer", options) from None
        mark = len(log.created)
        stochastic_mode = random_training(options.training) if accepts_training else None
        carried = state.fixed(layer, options.seed, rng=False)  # RNN states from zero
        try:
            # A stateful RNN carries its state from call to call: both calls start from the same
            # state, so only randomness (dropout, noise) can make them differ.
            state.restore(carried)
            second = call_layer(layer, tensors, stochastic_mode, accepts_training)
            state.restore(carried)
            third = call_layer(layer, tensors, stochastic_mode, accepts_training)
        except LayerRaised as raised:
            raise _user_failure(raised.error, "calling the layer a second time", options) from None
        shapes = _shapes_by_mode(layer, tensors, options, accepts_training, first, second, stochastic_mode)
        created_in_call = log.since(mark)

    # No float output (Discretization's bucket ids): nothing to differentiate, and what call()
    # reads and the reload are still checked (probe_findings says so; pipeline.py skips the rest).
    outputs, output_names = _float_outputs(first)
    if not outputs and not _holds_a_tensor(first, framework):
        # The layer's own doing (LayerFailed): on JAX, a tf.sin in call() returns a TensorFlow tensor.
        foreign = foreign_op_line(layer, framework.name)
        raise LayerFailed(
            f"call() returned {type(first).__name__} with no tensor in it, so there is nothing a "
            "gradient can flow from. A layer must return a tensor (or a tuple, list or dict of them); "
            "check what call() returns" + (f" (another framework's op at {foreign}?)." if foreign else "."),
            foreign,
        )
    stochastic = any(
        not np.array_equal(framework.to_numpy(a), framework.to_numpy(b), equal_nan=True)  # a NaN output is not noise
        for a, b in zip(_float_outputs(second)[0], _float_outputs(third)[0])
    )
    names = Names(layer, framework)
    gradient_variables = framework.gradient_variables(layer, names)
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
        mode_projections={
            mode: projections(mode_shapes, options.seed)
            for mode, mode_shapes in shapes.items()
            if mode_shapes != [tuple(o.shape) for o in outputs]
        },
        accepts_training=accepts_training,
        stochastic=stochastic,
        names=names,
        log=log,
        created_in_call=created_in_call,
        gradient_variables=gradient_variables,
    )
    for mode in _modes(options, accepts_training):
        try:
            probe.traces.append(framework.trace(probe, mode))
        except LayerRaised as raised:  # call() (or its gradient) cannot be traced
            error = raised.error
            where = user_frame_of(error)
            probe.trace_error = f"{type(error).__name__}: {error_text(error, 300)}" + (
                f" (at {where})" if where else ""
            )
            probe.traces = []
            break
    return probe


def _shapes_by_mode(layer, tensors, options: Options, accepts_training: bool, first, second, second_mode) -> dict:
    """{mode: the shapes of the float outputs with training=mode} for "true" and "false", from the
    calls already made where one had that `training`, else from one more call (its random and
    carried state put back after it). A mode whose call raises is left out: its trace says why.

    The first call passes `training` only when --training/--no-training says so; without it Keras
    gives call() its own default, which is inference when that default is None or False (Dropout,
    BatchNormalization, every layer written the usual way), so that call serves as training=False
    and no pass is added. A default of True (Keras's image augmentation layers) or none to read
    takes the extra call."""
    if not accepts_training:
        return {}
    known = {"true" if second_mode else "false": second}
    if options.training is not None:
        known.setdefault("true" if options.training else "false", first)
    elif _training_default(layer) in (None, False):
        known.setdefault("false", first)
    shapes = {mode: [tuple(o.shape) for o in _float_outputs(result)[0]] for mode, result in known.items()}
    for mode in ("true", "false") if options.training is not False else ("false",):
        if mode in shapes:
            continue
        saved = state.snapshot(layer)
        try:
            result = call_layer(layer, tensors, mode == "true", accepts_training)
            shapes[mode] = [tuple(o.shape) for o in _float_outputs(result)[0]]
        except LayerRaised:
            pass
        finally:
            state.restore(saved)
    return shapes


def _training_default(layer):
    """The default of call()'s `training` parameter; True when it has none to read (**kwargs)."""
    import inspect

    try:
        parameter = inspect.signature(layer.call).parameters.get("training")
    except (TypeError, ValueError):
        return True
    return True if parameter is None or parameter.default is parameter.empty else parameter.default


def _holds_a_tensor(result, framework) -> bool:
    if isinstance(result, dict):
        return any(_holds_a_tensor(value, framework) for value in result.values())
    if isinstance(result, (list, tuple)):
        return any(_holds_a_tensor(value, framework) for value in result)
    return framework.is_tensor(result)


def probe_findings(probe: Probe) -> list:
    """What building and tracing the layer showed by itself: call() cannot be traced, or its
    output is random from call to call."""
    findings = []
    if probe.trace_error:
        findings.append(
            finding(
                codes.TRACE_FAILED,
                None,
                f"call() could not be traced with {backend().words.tracer} ({probe.trace_error}). Keras's fit() "
                "traces call(), so it will fail there too unless the model is compiled with "
                "run_eagerly=True. Graph-based checks (which op cuts a path, constants) and the finite-difference comparison were skipped.",
            )
        )
    if not probe.outputs:
        findings.append(_no_float_output(probe))
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


def _no_float_output(probe: Probe):
    trainable = [probe.tensor_name(v) for v in probe.gradient_variables]
    weights = (
        f" Its trainable variables ({', '.join(f'`{name}`' for name in trainable)}) cannot learn through "
        "it: no loss on an integer output has a gradient."
        if trainable
        else ""
    )
    return finding(
        codes.NO_FLOAT_OUTPUT,
        None,
        "call() returns no floating-point tensor (integer or bool values only), so there is nothing "
        "differentiable to check: what call() reads and the save/reload round trip were checked, the "
        f"gradient checks were not.{weights} That is right for a layer that turns values into indices "
        "(Discretization, StringLookup); if it should return floats, check what call() returns.",
    )


def _modes(options: Options, accepts_training: bool) -> list[str]:
    if not accepts_training:
        return ["n/a"]
    if options.training is None:
        return ["true", "false"]
    return ["true" if options.training else "false"]


def location_of_variable(probe: Probe, variable) -> str | None:
    record = probe.log.created.get(id(backend().backing(variable)))
    if record and record[1]:
        return record[1]
    return probe.names.assignment_location(variable)
