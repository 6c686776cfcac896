"""call() on torch: one recorded pass per `training` mode (what it reads, recording.py), and the
probe loss with its gradients from autograd, None told apart from zero.

torch runs eagerly, as fit() does on torch by default, so the "trace" of a mode is a recorded
call, made with the layer's random state fixed as the gradient pass fixes it (state.py), so the
record and the numbers describe the same draws. `torch.autograd.grad(allow_unused=True)` gives
None for a tensor no path reaches; a path whose only way to the loss is through a round, floor,
ceil, sign or trunc gives a zero gradient on torch where TensorFlow and JAX give none, so those
nodes are taken as dead ends here, and such a tensor's gradient is None on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import user_code
from ...layer import state
from ...layer.calling import call_layer, training_of
from ..shared.leaves import float_leaves
from .recording import ZERO_DERIVATIVE_NODES, Record, recorder
from .runtime import torch_modules


def is_float_tensor(value) -> bool:
    torch, _ = torch_modules()
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def to_numpy(tensor) -> np.ndarray:
    """A copy: `.numpy()` of a CPU tensor shares its memory, and the checks assign the tensor after
    reading it (a finite-difference step from a value that moves with the step is no step)."""
    torch, _ = torch_modules()
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16 of torch's
        tensor = tensor.to(torch.float32)
    return tensor.numpy().copy()


def input_key(index: int):
    return ("input", index)


@dataclass
class Trace:
    """call() recorded under one value of `training` (backends.Trace)."""

    mode: str
    record: Record
    fingerprint: Any
    backing: Any  # the backend's backing(): a variable's key is id(backing(variable))

    def source(self, variable=None, input_index: int | None = None):
        """The key a variable (or the input) is recorded under; None: call() did not read it."""
        key = id(self.backing(variable)) if variable is not None else input_key(input_index or 0)
        return key if key in self.record.reads else None


def sources_of(probe, backing) -> tuple[list, list]:
    """([(tensor, key)], [(key, numpy array)]) for everything the record follows: the layer's
    variables, the tensors and arrays it holds, its inputs (added by the caller)."""
    torch, _ = torch_modules()
    tensors = [(backing(v), id(backing(v))) for v in probe.layer.variables]
    known = {key for _, key in tensors}
    arrays = []
    for key, obj in probe.names.objects.items():
        if isinstance(obj, torch.Tensor) and key not in known:
            tensors.append((obj, key))
        elif isinstance(obj, np.ndarray) and obj.dtype.kind == "f":
            arrays.append((key, obj))
    return tensors, arrays


def input_tensors(inputs: list, float_indexes: list[int]) -> list:
    torch, _ = torch_modules()
    xs = [torch.as_tensor(np.array(a)) for a in inputs]
    for i in float_indexes:
        xs[i].requires_grad_(True)
    return xs


def trace_mode(probe, mode: str, backing) -> Trace:
    saved = state.snapshot(probe.layer)
    state.restore(state.fixed(probe.layer, probe.seed))  # the draws the gradient pass will make
    try:
        xs = input_tensors(probe.inputs, probe.float_input_indexes)
        tensors, arrays = sources_of(probe, backing)
        tensors += [(xs[i], input_key(i)) for i in range(len(xs))]
        with recorder(tensors, arrays) as mode_recorder:
            result = call_layer(probe.layer, xs, training_of(mode), probe.accepts_training)
        record = mode_recorder.record
        record.outputs = [t for _, t in float_leaves(result, is_float_tensor)]
    finally:
        state.restore(saved)
    return Trace(mode, record, record.fingerprint(), backing)


def probe_loss(torch, outputs: list, projections: list, batch: int, float64: bool = False):
    """sum(r·y) over the float outputs / batch, as backends/tensorflow/leaves.probe_loss computes it."""
    total: Any = None
    for y, r in zip(outputs, projections):
        dtype = torch.float64 if float64 or y.dtype == torch.float64 else torch.float32
        term = torch.sum(y.to(dtype) * torch.as_tensor(np.asarray(r), dtype=dtype))
        total = term if total is None else total + term.to(total.dtype)
    return total / batch


@dataclass(frozen=True)
class Taped:
    """The loss, the float outputs and the gradients of one pass (as backends/tensorflow/tape.Taped)."""

    loss: Any
    outputs: list
    grads: list  # one per source, in order; None where no path reaches the loss


def probe_gradients(layer, xs, projections, *, training, accepts_training, variables, float_indexes, batch, **kw):
    """Call `layer` on `xs` (tensors) and differentiate the probe loss (times `scale`) with respect to
    `variables` (tensors) and the inputs at `float_indexes`."""
    torch, _ = torch_modules()
    with torch.enable_grad():
        outputs = [t for _, t in float_leaves(call_layer(layer, xs, training, accepts_training), is_float_tensor)]
        loss = probe_loss(torch, outputs, projections, batch, kw.get("float64", False)) * kw.get("scale", 1.0)
    sources = list(variables) + [xs[i] for i in float_indexes]
    return Taped(loss, outputs, gradients_of(loss, sources))


def gradients_of(loss, sources: list) -> list:
    """The gradient of `loss` with respect to each source; None where no path reaches it (through a
    round or the like included)."""
    torch, _ = torch_modules()
    reached = _leaves_reached(loss.grad_fn)
    wanted = [s for s in sources if s.requires_grad and id(s) in reached]
    if not wanted:
        return [None] * len(sources)
    # The layer's own backward runs here (a custom autograd.Function, an op with no gradient).
    with user_code("differentiating the probe loss"):
        grads = torch.autograd.grad(loss, wanted, allow_unused=True, retain_graph=True)
    found = {id(s): g for s, g in zip(wanted, grads)}
    return [found.get(id(s)) for s in sources]


def _leaves_reached(node) -> set:
    """ids of the leaf tensors a gradient reaches from `node`, not through a zero-derivative op."""
    reached, seen, stack = set(), set(), [node]
    while stack:
        current = stack.pop()
        if current is None or current in seen:
            continue
        seen.add(current)
        if type(current).__name__ in ZERO_DERIVATIVE_NODES:
            continue
        variable = getattr(current, "variable", None)
        if variable is not None:
            reached.add(id(variable))
        stack.extend(next_node for next_node, _ in current.next_functions)
    return reached


def execute(probe, trace, backing) -> dict:
    """One pass on the probe batch: {"loss", "outputs", "grads"} as numpy (None kept)."""
    training = training_of(trace.mode) if trace is not None else None
    if trace is None and probe.accepts_training:
        from ...layer.calling import random_training

        training = random_training(probe.training)
    xs = input_tensors(probe.inputs, probe.float_input_indexes)
    taped = probe_gradients(
        probe.layer,
        xs,
        probe.projections,
        training=training,
        accepts_training=probe.accepts_training,
        variables=[backing(v) for v in probe.gradient_variables],
        float_indexes=probe.float_input_indexes,
        batch=probe.batch_size,
    )
    return {
        "loss": float(taped.loss.detach()),
        "outputs": [to_numpy(o) for o in taped.outputs],
        "grads": [None if g is None else to_numpy(g) for g in taped.grads],
    }
