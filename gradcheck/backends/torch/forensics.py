"""Forensics on a recorded pass (recording.py): the op that cuts a gradient path, the activation
where a gradient dies, the numpy arrays and tensors call() uses as constants, and the op that made
the first NaN, in the forward pass or (hooks on every autograd node) in the backward one.
"""

from __future__ import annotations

import numpy as np

from ...errors import LayerRaised, user_code
from ...layer import state
from ...layer.calling import call_layer, training_of
from ..shared.findings import Cut, make_cut, pick_culprit
from ..shared.leaves import float_leaves
from .recording import recorder
from .runtime import torch_modules
from .tracing import input_key, input_tensors, is_float_tensor, probe_loss, sources_of

_CHOICES = ("argmax", "argmin")
_ROUNDING = ("round", "floor", "ceil", "sign", "trunc")
_CASTS = frozenset({"to", "type", "long", "int", "short", "bool", "byte", "char", "type_as"})
_COMPARISONS = frozenset(
    {"gt", "lt", "ge", "le", "eq", "ne", "greater", "less", "greater_equal", "less_equal", "equal", "not_equal"}
    | {"__gt__", "__lt__", "__ge__", "__le__", "__eq__", "__ne__", "isnan", "isinf", "isfinite"}
)
_PRIORITY = ("argmax", "argmin", "stop_gradient", "round", "floor", "ceil", "sign", "trunc", "cast", "comparison")


def _kind(op) -> str | None:
    if op.name in _CHOICES or op.name in _ROUNDING:
        return op.name
    if op.name == "detach":
        return "stop_gradient"
    if op.name in _COMPARISONS:
        return "comparison"
    if op.name in _CASTS and op.output_dtype:
        return "cast"
    return None


def _describe(op) -> Cut:
    kind = _kind(op)
    written_as = {"detach": "Tensor.detach"}.get(op.name, f"torch.{op.name}")
    if kind == "comparison":
        written_as = "a comparison"
    return make_cut(kind, op.name, written_as, op.line, op.output_dtype)


def find_cuts(trace, source) -> list[Cut]:
    """The ops that cut a path from `source` (a recorded key), one per user line, in call order."""
    by_line: dict = {}
    for op in trace.record.ops:
        if op.cut is None or source not in op.deps:
            continue
        cut = _describe(op)
        location = cut.location or f"#{id(op)}"
        kept = by_line.get(location)
        rank = _PRIORITY.index(_kind(op)) if _kind(op) in _PRIORITY else len(_PRIORITY)
        if kept is None or rank < kept[0]:
            by_line[location] = (rank, cut)
    return [cut for _, cut in by_line.values()]


def culprit(probe, run, source, status: str):
    """The activation on `source`'s path that explains `status` (zero, vanishing, exploding)."""
    if run.trace is None or source is None or status not in ("zero", "vanishing", "exploding"):
        return None
    slopes = [
        (name, name, line, kind, np.asarray(_numpy(x), "float64"), np.asarray(_numpy(y), "float64"))
        for deps, name, line, kind, x, y in run.trace.record.activations
        if source in deps
    ]
    return pick_culprit(status, slopes)


def _numpy(tensor) -> np.ndarray:
    from .tracing import to_numpy

    return to_numpy(tensor)


def constants_used(probe, backend) -> list:
    """(object, values, first_use()) for every float numpy array or tensor call() uses that is not a
    variable (a plain torch.Tensor made in build(), a numpy array)."""
    found, seen = [], set()
    for trace in probe.traces:
        for key in trace.record.reads:
            obj = probe.names.objects.get(key) if isinstance(key, int) else None
            if obj is None or key in seen or backend.is_variable(obj) or not backend.is_leaf(obj):
                continue
            _, keras = backend.modules()
            if isinstance(obj, keras.Variable) or not backend.is_float(obj):
                continue
            seen.add(key)
            first = trace.record.first_use.get(key)
            found.append((obj, np.asarray(backend.to_numpy(obj)), lambda first=first: first[1] if first else None))
    return found


def nonfinite_origin(probe, run, target):
    """(op, user line, " (in its gradient, node)" or "") of the first non-finite value feeding
    `target` ("grads", index) or ("outputs", position); None when it cannot be named."""
    if run.trace is None:
        return None
    record = run.trace.record
    if record.first_nonfinite is not None or target[0] == "outputs":
        return (*record.first_nonfinite, "") if record.first_nonfinite is not None else None
    try:
        return _backward_origin(probe, run.trace)
    except LayerRaised:
        return None


def _backward_origin(probe, trace):
    """Run the pass again, recorded, with a hook on every autograd node: the first node whose
    incoming gradients are finite and whose outgoing ones are not, named by its forward op."""
    torch, _ = torch_modules()
    backing_of = trace.backing
    saved = state.snapshot(probe.layer)
    state.restore(state.fixed(probe.layer, probe.seed))
    try:
        xs = input_tensors(probe.inputs, probe.float_input_indexes)
        tensors, arrays = sources_of(probe, backing_of)
        tensors += [(xs[i], input_key(i)) for i in range(len(xs))]
        with torch.enable_grad():
            with recorder(tensors, arrays) as watching:
                result = call_layer(probe.layer, xs, training_of(trace.mode), probe.accepts_training)
            outputs = [t for _, t in float_leaves(result, is_float_tensor)]
            loss = probe_loss(torch, outputs, probe.projections, probe.batch_size)
        found: list = []
        handles = [node.register_hook(_hook(node, found)) for node in _nodes(loss.grad_fn)]
        wanted = [backing_of(v) for v in probe.gradient_variables] + [xs[i] for i in probe.float_input_indexes]
        wanted = [w for w in wanted if w.requires_grad]
        try:
            with user_code("differentiating the probe loss to locate a NaN"):
                torch.autograd.grad(loss, wanted, allow_unused=True)
        finally:
            for handle in handles:
                handle.remove()
    finally:
        state.restore(saved)
    if not found:
        return None
    node = found[0]
    name, line = watching.record.node_line.get(node, (type(node).__name__, None))
    return (name, line, f" (in its gradient, {type(node).__name__})")


def _nodes(root) -> list:
    seen, stack, nodes = set(), [root], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if not hasattr(node, "variable"):
            nodes.append(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return nodes


def _hook(node, found: list):
    torch, _ = torch_modules()

    def finite(gradients) -> bool:
        return all(bool(torch.isfinite(g).all()) for g in gradients if g is not None)

    def hook(grad_inputs, grad_outputs):
        if not found and finite(grad_outputs) and not finite(grad_inputs):
            found.append(node)

    return hook
