"""Where a gradient path is cut: the first ops between a tensor and the probe loss that pass no gradient.

A None gradient says only that no path carries a gradient; the traced graph says which op ends each
path (design notes 2 and 3). From the variable's handle (or the input's placeholder) the walk goes forward
through consumers, keeping only ops from which the loss is reachable, and stops at an op that cuts:
one whose on-path outputs are not floating (ArgMax, a cast to int or bool, a comparison), or whose
registered gradient gives None from those outputs to its on-path inputs (StopGradient, Round, Floor,
numpy_function ...). Ops behind a cut are never reached, so only the first cut on each path is named.
"""

from __future__ import annotations

from dataclasses import dataclass

from ....layer.source import user_location
from ..runtime import tensorflow

# op type -> (what the user wrote, why it passes no gradient, what to do)
_STRAIGHT_THROUGH = "use a straight-through estimator, e.g. `x + tf.stop_gradient(tf.round(x) - x)`"
_EXPLANATIONS = {
    "ArgMax": (
        "tf.argmax",
        "an index has no gradient",
        "To learn through a choice, weight the candidates with a softmax instead (or Gumbel-softmax), "
        "or use a straight-through estimator `soft + tf.stop_gradient(hard - soft)`.",
    ),
    "ArgMin": (
        "tf.argmin",
        "an index has no gradient",
        "To learn through a choice, weight the candidates with a softmax instead (or Gumbel-softmax), "
        "or use a straight-through estimator `soft + tf.stop_gradient(hard - soft)`.",
    ),
    "StopGradient": (
        "tf.stop_gradient",
        "it blocks the gradient by design",
        "Remove tf.stop_gradient if the tensor should learn; if it is meant to stay fixed, make it "
        "`self.add_weight(..., trainable=False)`.",
    ),
    "Round": ("tf.round", "its gradient is defined as none", f"To train through rounding, {_STRAIGHT_THROUGH}."),
    "Floor": ("tf.floor", "its gradient is defined as none", f"To train through rounding, {_STRAIGHT_THROUGH}."),
    "Ceil": ("tf.math.ceil", "its gradient is defined as none", f"To train through rounding, {_STRAIGHT_THROUGH}."),
    "Rint": ("tf.math.rint", "its gradient is defined as none", f"To train through rounding, {_STRAIGHT_THROUGH}."),
    "Cast": (
        "a cast",
        "integer and bool values have no gradient",
        f"Keep the computation in floating point; to quantise while training, {_STRAIGHT_THROUGH}.",
    ),
    "PyFunc": (
        "tf.numpy_function",
        "TensorFlow cannot differentiate numpy code",
        "Write the computation with TensorFlow ops, or give it a gradient with @tf.custom_gradient.",
    ),
    "PyFuncStateless": (
        "tf.numpy_function",
        "TensorFlow cannot differentiate numpy code",
        "Write the computation with TensorFlow ops, or give it a gradient with @tf.custom_gradient.",
    ),
    "EagerPyFunc": (
        "tf.py_function",
        "its body leaves TensorFlow (a .numpy() call or numpy code)",
        "Write the computation with TensorFlow ops, or give it a gradient with @tf.custom_gradient.",
    ),
}
_COMPARISONS = {"Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual", "IsNan", "IsInf", "IsFinite"}
_COMPARISON_TEXT = (
    "a comparison",
    "a bool has no gradient",
    "To learn through a threshold, use a smooth gate such as `tf.sigmoid(k * (a - b))`.",
)


# Ops that read a tensor's shape, not its values.
_SHAPE_OPS = frozenset({"Shape", "ShapeN", "Size", "Rank", "ZerosLike", "OnesLike"})


@dataclass(frozen=True)
class Cut:
    """One op that ends a gradient path."""

    op_type: str
    written_as: str  # what the user wrote, e.g. "tf.argmax"
    why: str
    advice: str
    location: str | None

    def describe(self) -> str:
        shown = f"{self.op_type} ({self.written_as})" if self.written_as != self.op_type else self.op_type
        return f"{shown} at {self.location}" if self.location else shown

    @property
    def shape_only(self) -> bool:
        """The op reads its input's shape, not its values: a path through it carries no value."""
        return self.op_type in _SHAPE_OPS


def find_cuts(trace, source) -> list[Cut]:
    """The first cutting ops on the paths from `source` (a handle or input placeholder) to the loss,
    in graph order; empty when `source` does not reach the loss at all or no cut could be named."""
    tf, _ = tensorflow()
    feeds_loss = ancestors(trace.loss.op)
    start = entry_tensors(source, feeds_loss)
    on_path, frontier, cuts, seen = {t.ref() for t in start}, list(start), [], set()  # tensors hash by .ref()
    while frontier:
        tensor = frontier.pop()
        for op in tensor.consumers():
            if op not in feeds_loss or op in seen:
                continue
            seen.add(op)
            inputs = [t for t in op.inputs if t.ref() in on_path and t.dtype.is_floating]
            outputs = [t for t in op.outputs if t is trace.loss or any(c in feeds_loss for c in t.consumers())]
            if not inputs:
                continue
            if _cuts(tf, trace.graph, inputs, outputs):
                cuts.append(op)
                continue
            for output in outputs:
                if output.ref() not in on_path:
                    on_path.add(output.ref())
                    frontier.append(output)
    order = {op: index for index, op in enumerate(trace.graph.get_operations())}
    cuts.sort(key=lambda op: order[op])
    if any(_is_choice(op) for op in cuts):
        # A hard choice (top-1 routing, hard attention): the index or the equal-to-max mask is the
        # op to name, whatever helper ops (Bitcast, Equal) the library put beside it.
        cuts.sort(key=lambda op: not _is_choice(op))
        named = [_describe(tf, op, choice=index == 0) for index, op in enumerate(cuts)]
        return named[:1] + [cut for cut in named[1:] if cut.location != named[0].location]
    return [_describe(tf, op) for op in cuts]


_ROUTING_ADVICE = (
    "This is a hard choice (top-1 routing, hard attention): to train the scores, scale the chosen "
    "output by the probability of the choice, e.g. `probs = softmax(scores)` and "
    "`output = chosen * take_along_axis(probs, index[..., None], -1)` (as switch and top-k routers "
    "do), or weight every candidate by `probs` (soft or Gumbel-softmax), or use a straight-through "
    "estimator `soft + tf.stop_gradient(hard - soft)`."
)


def _is_choice(op) -> bool:
    """An argmax/argmin, or a comparison of a tensor with its own max or min (an equal-to-max mask)."""
    if op.type in ("ArgMax", "ArgMin"):
        return True
    if op.type not in ("Equal", "GreaterEqual", "LessEqual"):
        return False
    feeding = [_through_identity(t.op) for t in op.inputs]
    return any(o.type in ("Max", "Min", "ArgMax", "ArgMin") for o in feeding)


def _through_identity(op):
    """The op behind identities, reshapes and broadcasts that change no value."""
    while op.type in ("Identity", "Reshape", "ExpandDims", "BroadcastTo", "Squeeze") and op.inputs:
        op = op.inputs[0].op
    return op


def entry_tensors(source, feeds_loss: set) -> list:
    """The float tensors through which `source` (a variable handle or an input placeholder) enters
    the computation of the loss: a handle's reads, or the placeholder itself. Reading a variable is
    where its value enters, not a cut."""
    tf, _ = tensorflow()
    if source.dtype != tf.resource:
        return [source]
    return [t for op in source.consumers() if op in feeds_loss for t in op.outputs if t.dtype.is_floating]


def ancestors(op) -> set:
    """Every op `op` depends on, itself included."""
    found, stack = {op}, [op]
    while stack:
        for tensor in stack.pop().inputs:
            if tensor.op not in found:
                found.add(tensor.op)
                stack.append(tensor.op)
    return found


def _cuts(tf, graph, inputs, outputs) -> bool:
    if not outputs:
        return False
    if not any(t.dtype.is_floating for t in outputs):
        return True
    floating = [t for t in outputs if t.dtype.is_floating]
    try:
        with graph.as_default():
            grads = tf.gradients(floating, inputs)
    except LookupError:
        return True  # no gradient registered for this op type
    except (TypeError, ValueError, NotImplementedError):
        return False  # a gradient function that cannot run here: better to name no op than a wrong one
    return all(g is None for g in grads)


def _describe(tf, op, choice: bool = False) -> Cut:
    written_as, why, advice = _EXPLANATIONS.get(op.type) or (
        _COMPARISON_TEXT if op.type in _COMPARISONS else (op.type, "", "")
    )
    if choice:
        advice = _ROUTING_ADVICE
        if op.type in _COMPARISONS:
            written_as, why = "an equal-to-max mask", "a bool has no gradient"
    if op.type == "Cast":
        written_as = f"a cast to {op.outputs[0].dtype.name}"
        if op.outputs[0].dtype.is_floating:
            why = "its gradient is None here"
    if not why:
        kinds = {t.dtype.name for t in op.outputs if not t.dtype.is_floating}
        if kinds:
            why = f"its output is {'/'.join(sorted(kinds))}, which has no gradient"
            advice = "Keep the path in floating point, or use a straight-through estimator."
        else:
            why = "TensorFlow gives it no gradient on this path"
            advice = "Use a differentiable op here, or give it a gradient with @tf.custom_gradient."
    return Cut(op.type, written_as, why, advice, user_location(op.traceback))


def forward_op_of_kernel(graph, op_type: str):
    """The forward op that `op_type` (ResizeNearestNeighborGrad) differentiates: the tape names its
    gradient ops "gradient_tape/<forward op's scope>/<kernel>", so it is the op of type
    ResizeNearestNeighbor in that scope."""
    operations = graph.get_operations()
    for op in operations:
        if op.type == op_type and op.name.startswith("gradient_tape/"):
            scope = op.name[len("gradient_tape/") :].rsplit("/", 1)[0] + "/"
            forward_type = op_type.removesuffix("Grad")
            for candidate in operations:
                if candidate.name.startswith(scope) and candidate.type == forward_type:
                    return candidate
    return None
