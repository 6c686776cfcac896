"""Where a value leaves a dtype policy or is lost under it, in the traced graph of a copy of the
layer under that policy (checks/dtype_policy.py makes the comparison and the findings)."""

from __future__ import annotations

import numpy as np

from ....errors import LayerRaised
from ....layer.source import user_location
from ..runtime import tensorflow
from ..tracing import trace_layer_function
from .cuts import ancestors
from .nonfinite import forward_origin
from .values import evaluate


class PolicyLocator:
    """Finds where a value leaves the policy or is lost, in the copy's traced forward+backward graph.

    Built lazily: the trace and the evaluation of every tensor happen only for a finding."""

    def __init__(self, probe, copy, compute: str, taped):
        """`taped(xs)`: the check's own pass of `copy` (its loss and gradients) on inputs `xs`."""
        self.probe, self.copy, self.compute, self.taped = probe, copy, compute, taped
        self._traced = None

    def _trace(self):
        if self._traced is not None:
            return self._traced
        tf, _ = tensorflow()
        probe = self.probe

        def step(*xs):
            taped = self.taped(list(xs))
            return {"outputs": taped.outputs, "grads": [tf.zeros(()) if g is None else g for g in taped.grads]}

        specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in probe.inputs]
        try:
            function = trace_layer_function(self.copy, step, specs)
        except LayerRaised:  # the copy cannot be traced: the finding is made without the op
            self._traced = (None, {})
            return self._traced
        self._traced = (function, self._values(function))
        return self._traced

    def _values(self, function) -> dict:
        """{graph tensor ref: numpy value} for every low-precision float tensor of the graph."""
        graph = function.graph
        fetches = [
            t
            for op in graph.get_operations()
            if op.type != "Placeholder"
            for t in op.outputs
            if t.dtype.name == self.compute
        ]
        if not fetches:
            return {}
        values = evaluate(graph, fetches, len(self.probe.inputs), self.probe.input_tensors())
        return {} if values is None else {t.ref(): v for t, v in zip(fetches, values)}

    def cast_location(self) -> str | None:
        """The user's line of the first Cast from the compute dtype to a wider float on an output's path."""
        function, _ = self._trace()
        if function is None:
            return None

        tf, _ = tensorflow()
        path = set()
        for output in function.structured_outputs["outputs"]:
            path |= ancestors(output.op)
        for op in function.graph.get_operations():
            if op.type != "Cast" or op not in path or op.name.startswith("gradient_tape/"):
                continue
            if op.get_attr("SrcT") == tf.as_dtype(self.compute) and op.get_attr("DstT") in (tf.float32, tf.float64):
                location = user_location(op.traceback)
                if location:
                    return location
        return None

    def first_loss(self, target, how: str) -> tuple[str | None, str | None]:
        """(op type, file:line) of the first op on `target`'s path whose output is lost that way
        while its inputs are not."""
        function, values = self._trace()
        if function is None or not values:
            return None, None

        kind, key = target
        outputs = function.structured_outputs[kind]
        index = self.probe.output_names.index(key) if kind == "outputs" else key
        path = ancestors(outputs[index].op)
        lost = _is_nonfinite if how.startswith("overflows") else _is_flushed
        for op in function.graph.get_operations():
            if op not in path or op.type in ("Cast", "ReadVariableOp", "Const"):
                continue
            made = [values[t.ref()] for t in op.outputs if t.ref() in values]
            before = [values[t.ref()] for t in op.inputs if t.ref() in values and t.op.type != "Const"]
            if made and any(lost(v) for v in made) and not any(lost(v) for v in before):
                op_type, where, _ = forward_origin(op)
                if where:
                    return op_type, where
        return None, None


def _is_nonfinite(value) -> bool:
    return not np.all(np.isfinite(value))


def _is_flushed(value) -> bool:
    value = np.asarray(value)
    return value.size > 0 and np.mean(value == 0) > 0.5
