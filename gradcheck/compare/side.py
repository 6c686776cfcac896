"""One backend's side of a comparison: the layer's outputs, gradients and call stream on weights,
inputs and random draws every backend shares, written for the command to compare (verdict.py).

Runs in the backend's worker, after that backend's own checks, as the last check of the pipeline.
The layer is copied in float64 as the finite-difference twin is (layer/twin.py; the layer itself,
in float32, when no float64 copy runs: the file says so). Its weights are then drawn from --seed
by each weight's position, name and shape, so every backend holds the same numbers whatever its
initialisers drew; the inputs and projections are the probe's (drawn by numpy from --seed). Each
training mode the probe traced is run with the random draws fixed (draws.py); a mode whose draws
cannot all be fixed is left out, and the file says why.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass

import numpy as np

from ..checks.interface import CheckResult, Context
from ..errors import LayerRaised
from ..layer.calling import call_layer, training_of
from ..layer.source import error_text, user_frame_of
from ..runtime import backend


@dataclass(frozen=True)
class BackendSide:
    """This backend's outputs, gradients and call stream on shared weights (a comparison is asked for)."""

    folder: str
    seed: int
    stage = "preparing the comparison with the other backends"

    @classmethod
    def from_options(cls, options) -> BackendSide | None:
        return cls(options.compare_folder, options.seed) if options.compare_folder else None

    def run(self, context: Context) -> CheckResult:
        inputs = [row.name for row in context.inputs]
        write_side(context.probe, [inputs[i] for i in context.probe.float_input_indexes], self.folder, self.seed)
        return CheckResult()


def shared_value(seed: int, index: int, name: str, current: np.ndarray) -> np.ndarray:
    """The value every backend gives the weight at `index` named `name`: from the seed, the position,
    the name and the shape only. It is centred on the layer's own value when that is one constant
    (a LayerNormalization's scale of ones stays near 1), on 0 otherwise: what each backend's random
    initialiser drew differs, so nothing of it may decide the value."""
    generator = np.random.default_rng([seed, 31337, index, zlib.crc32(name.encode())])
    shape = current.shape
    if len(shape) >= 2:
        spread = float(np.sqrt(2.0 / (int(np.prod(shape[:-1])) + shape[-1])))
    else:
        spread = 0.1
    constant = current.size and np.all(current == current.flat[0])
    centre = float(current.flat[0]) if constant else 0.0
    return (centre + spread * generator.standard_normal(shape)).astype(current.dtype)


def write_side(probe, input_names: list, folder: str, seed: int) -> None:
    from ..checks.preprocessing import preprocessing_base

    framework = backend()
    meta: dict = {"backend": framework.name, "status": "ok", "modes": [], "skipped": {}, "stream": {}}
    # What the verdict restates as it restates the layer's own input findings (checks/preprocessing.py).
    base = preprocessing_base(probe.layer)
    meta.update(inputs=input_names, preprocessing=[type(probe.layer).__name__, base] if base else None)
    arrays: dict = {}
    try:
        _passes(probe, framework, input_names, seed, meta, arrays)
    except LayerRaised as raised:
        error = raised.error
        meta.update(
            status="raised",
            error=f"{type(error).__name__}: {error_text(error, 300)}",
            where=user_frame_of(error),
            doing=raised.doing,
        )
    os.makedirs(folder, exist_ok=True)
    np.savez(os.path.join(folder, f"{framework.name}.npz"), **arrays)
    with open(os.path.join(folder, f"{framework.name}.json"), "w") as stream:
        json.dump(meta, stream)


def _passes(probe, framework, input_names: list, seed: int, meta: dict, arrays: dict) -> None:
    from ..layer.twin import make_twin

    variables = [v for v in probe.gradient_variables if framework.is_float(framework.backing(v))]
    twin = make_twin(probe, variables)
    meta.update(dtype=twin.dtype, fallback=twin.reason)
    held = [(probe.tensor_name(v), twin.variables.get(id(framework.backing(v)))) for v in variables]
    held = [(name, variable) for name, variable in held if variable is not None]
    for index, (name, variable) in enumerate(held):
        framework.assign(variable, shared_value(seed, index, name, np.asarray(framework.to_numpy(variable))))
    names = [name for name, _ in held] + input_names
    for mode in [trace.mode for trace in probe.distinct_traces()] or ["n/a"]:
        training = training_of(mode)
        twin.reset_seeds()
        with twin.arithmetic(), framework.fixed_draws(seed) as draws:
            xs = [framework.constant(x) for x in twin.inputs]
            taped = framework.gradients(
                twin.layer,
                xs,
                probe.projections,
                training=training,
                accepts_training=probe.accepts_training,
                variables=[variable for _, variable in held],
                float_indexes=probe.float_input_indexes,
                batch=probe.batch_size,
                float64=twin.dtype == "float64",
            )
        if draws.unreplayed:
            meta["skipped"][mode] = (
                f"it draws with {', '.join(sorted(set(draws.unreplayed)))}, which cannot be held fixed"
            )
            continue
        for output_name, output in zip(probe.output_names, taped.outputs):
            arrays[f"{mode}|output|{output_name}"] = np.asarray(framework.to_numpy(output), "float64")
        for name, grad in zip(names, taped.grads):
            if grad is not None:
                arrays[f"{mode}|grad|{name}"] = np.asarray(framework.to_numpy(grad), "float64")
        meta["modes"].append(mode)
        meta["stream"][mode] = _stream(probe, framework, twin, training, seed, mode, arrays)


def _stream(probe, framework, twin, training, seed: int, mode: str, arrays: dict) -> list:
    """The pass again, eagerly, its backend-API calls recorded with their own gradients."""
    twin.reset_seeds()
    with twin.arithmetic(), framework.fixed_draws(seed), framework.recorded_calls() as stream:
        xs = [framework.constant(x) for x in twin.inputs]
        call_layer(twin.layer, xs, training, probe.accepts_training, "calling the layer for the comparison")
    with twin.arithmetic():
        framework.call_gradients(stream, seed)
    for index, call in enumerate(stream.calls):
        arrays[f"{mode}|call|{index}|output"] = call.output
        if call.gradient is not None:
            arrays[f"{mode}|call|{index}|gradient"] = call.gradient
    return [[call.op, call.line] for call in stream.calls]
