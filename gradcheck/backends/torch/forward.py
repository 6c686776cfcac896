"""The float64 twin's probe loss and its gradients on torch, for the finite-difference check
(numeric/first_order.py), and the walks along a tensor's path its verdict needs.

torch runs eagerly: each pass calls the twin, inside its arithmetic (Keras's float64 policy with
its float64->float32 promotion switched off, backends/shared/precision.py), with the twin's
variables as the check assigned them. The walks read one recorded pass of the twin (recording.py),
made on first use.
"""

from __future__ import annotations

import contextlib
import inspect

import numpy as np

from ...errors import user_code
from ...layer.calling import call_layer, training_of
from ...layer.source import format_location, is_user_file
from ..shared.findings import LowPrecisionOp
from ..shared.leaves import float_leaves
from .recording import recorder
from .runtime import torch_modules
from .tracing import gradients_of, input_tensors, is_float_tensor, probe_loss, to_numpy

_LOW = ("float32", "float16", "bfloat16")


class Forward:
    """The twin's probe loss and its gradients in one training mode (backends.Forward)."""

    def __init__(self, probe, twin, mode: str, targets, samples):
        self.twin, self.samples, self.targets = twin, samples, targets
        self.training, self.accepts_training = training_of(mode), probe.accepts_training
        self.float64 = twin.dtype == "float64"
        self.sources = [twin.variables[id(t.variable)] for t in targets if t.variable is not None]
        self.float_indexes = [t.input_index for t in targets if t.variable is None]
        self._record = None

    @property
    def stops(self) -> bool:
        """A detach (ops.stop_gradient on torch) in the layer."""
        return any(op.name == "detach" for op in self._recorded().ops)

    def _call(self, xs: list):
        torch, _ = torch_modules()
        result = call_layer(self.twin.layer, xs, self.training, self.accepts_training)
        outputs = [t for _, t in float_leaves(result, is_float_tensor)]
        return probe_loss(torch, outputs, self.samples.projections, self.samples.batch, self.float64)

    def loss(self, xs: list, tensors=None) -> float:
        torch, _ = torch_modules()
        self.twin.reset_seeds()
        with self.twin.arithmetic(), torch.no_grad(), user_code("running the layer's loss in a finite-difference pass"):
            return float(self._call(input_tensors(xs, [])))

    def gradients(self, xs: list, *, tape: bool = False):
        """(loss, gradients); unless `tape`, every detach taken as the identity it is in value: the
        derivative finite differences measure."""
        torch, _ = torch_modules()
        # Asked first: the recorded pass it may make draws from the random state reset below.
        passing = _PassThroughDetach() if self.stops and not tape else contextlib.nullcontext()
        self.twin.reset_seeds()
        with self.twin.arithmetic(), user_code("running the layer's gradient in a finite-difference pass"):
            inputs = input_tensors(xs, self.float_indexes)
            with torch.enable_grad(), passing:
                loss = self._call(inputs)
            grads = gradients_of(loss, self.sources + [inputs[i] for i in self.float_indexes])
        return float(loss.detach()), [None if g is None else np.asarray(to_numpy(g), "float64") for g in grads]

    def _recorded(self):
        """One recorded pass of the twin, each target followed under its own key (id of the Target)."""
        if self._record is None:
            torch, _ = torch_modules()
            xs = input_tensors(self.samples.inputs, self.float_indexes)
            tensors = [(self.twin.variables[id(t.variable)], id(t)) for t in self.targets if t.variable is not None]
            tensors += [(xs[t.input_index], id(t)) for t in self.targets if t.variable is None]
            self.twin.reset_seeds()
            with self.twin.arithmetic(), torch.enable_grad(), recorder(tensors, []) as watching:
                with user_code("running the layer in a finite-difference pass"):
                    self._call(xs)
            self._record = watching.record
        return self._record

    def rows(self, target) -> None:
        """Every weight is compared whole here (embedding rows: TensorFlow only so far)."""
        return None

    def unread(self, target, *, tape: bool = False) -> None:
        return None

    def low_precision(self, target) -> LowPrecisionOp | None:
        """The first op on the target's path whose float output is narrower than float64."""
        if self.twin.dtype != "float64":
            return None
        if target.variable is not None:
            own = str(self.twin.variables[id(target.variable)].dtype).removeprefix("torch.")
            if own in _LOW:  # a raw Parameter the twin holds in float32: it moves in float32 steps
                return LowPrecisionOp("Parameter", own, None)
        for op in self._recorded().ops:
            low = [dtype for dtype in op.float_outputs if dtype in _LOW]
            if id(target) in op.deps and low:
                return LowPrecisionOp(op.name, low[0], op.line)
        return None

    def custom_gradient_line(self, target) -> str | None:
        """Where the torch.autograd.Function on the target's path is: its backward in the user's
        code, else the line that applied it ("" when neither is the user's)."""
        for deps, function, line, _ in self._recorded().customs:
            if id(target) in deps:
                return self._backward_line(function) or line or ""
        return None

    @staticmethod
    def _backward_line(function) -> str | None:
        """The `def` line of a Function's backward in the user's code (below any @staticmethod)."""
        try:
            backward = function.backward
            filename = inspect.getsourcefile(backward)
            lines, first = inspect.getsourcelines(backward)
        except (AttributeError, TypeError, OSError):
            return None
        if not filename or not is_user_file(filename):
            return None
        offset = next((i for i, text in enumerate(lines) if text.lstrip().startswith("def ")), 0)
        return format_location(filename, first + offset)

    def custom_gradients(self, target) -> list[str]:
        """Each torch.autograd.Function on the target's path, in words: where it is applied, and
        the backward that computes its gradient."""
        described = []
        for deps, function, line, _ in self._recorded().customs:
            if id(target) not in deps:
                continue
            words = (
                f"the torch.autograd.Function `{function.__name__}` applied at {line}"
                if line
                else (f"the torch.autograd.Function `{function.__name__}`")
            )
            backward = self._backward_line(function)
            described.append(
                f"{words}, whose backward is `{function.__name__}.backward` at {backward}" if backward else words
            )
        return described

    def no_gradient_by_design(self, target) -> str | None:
        """torch has no op with no gradient at all that keeps its output on the path (numpy code
        leaves autograd, and then the gradient is None): nothing to say."""
        return None

    def stop_line(self, target) -> str | None:
        """The line of a detach on the target's path ("" outside the user's code), or None."""
        for op in self._recorded().ops:
            if op.name == "detach" and id(target) in op.deps:
                return op.line or ""
        return None


def _PassThroughDetach():
    """A TorchFunctionMode in which `detach` is a differentiable identity (`view_as`)."""
    torch, _ = torch_modules()
    from torch.overrides import TorchFunctionMode

    class PassThrough(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") == "detach" and args:
                return args[0].view_as(args[0])
            return func(*args, **(kwargs or {}))

    return PassThrough()
