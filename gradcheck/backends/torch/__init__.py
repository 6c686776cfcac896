"""The PyTorch backend: Keras on `torch`, call() recorded op by op, autograd read for forensics.

- `runtime.py` — torch imported once.
- `recording.py` — one pass recorded with a TorchFunctionMode: what each op read and made, where.
- `tracing.py` — a recorded pass per training mode; the probe loss and its gradients, None told
  apart from zero (torch's round gives a zero gradient where TensorFlow and JAX give none).
- `forensics.py` — the op that cuts a path, the activation where a gradient dies, the constants
  call() reads, the first NaN (in the backward pass, from hooks on every autograd node).
- `forward.py` — the float64 twin's loss and gradients for finite differences.

Everything here may import the neutral rooms and backends/shared/; nothing outside backends/
imports a module of this package except through `BACKEND` (runtime.backend()).
"""

from __future__ import annotations

import contextlib

import numpy as np

from .. import Words
from ..shared.compared import BackendComparison
from ..shared.leaves import float_leaves
from ..shared.precision import keras_float64
from ..shared.values import NumpyValues
from ..shared.variables import KerasVariableLog, seed_keras
from . import runtime
from .tracing import execute, is_float_tensor, probe_gradients, to_numpy, trace_mode


class TorchBackend(NumpyValues, BackendComparison):
    """backends.Backend for Keras's torch backend."""

    name = "torch"
    words = Words(
        framework="PyTorch",
        raw_variable="torch.nn.Parameter",
        custom_gradient="torch.autograd.Function",
        tracer="the torch backend's call",
        stop_gradient="Tensor.detach",
        registered_gradient="an op's derivative formula (its autograd Node)",
    )
    unavailable = {
        "SecondOrder": "Hessian-vector products are compared on the TensorFlow backend only so far",
    }

    def __init__(self) -> None:
        self._variables: dict[int, object] = {}  # id(Parameter) -> the Keras variable it holds the value of

    def modules(self, hide_stderr: bool = True):
        return runtime.torch_modules(hide_stderr)

    def versions(self) -> dict:
        return runtime.versions()

    def seed(self, seed: int) -> None:
        self.modules()
        seed_keras(seed)

    def compiling(self):
        return contextlib.nullcontext()

    def float64_scope(self, promote: bool = False):
        return keras_float64()

    def constant(self, value, dtype=None):
        torch, _ = self.modules()
        value = np.asarray(value) if dtype is None else np.asarray(value).astype(dtype)
        return torch.as_tensor(np.array(value))

    def is_tensor(self, value) -> bool:
        torch, _ = self.modules()
        return isinstance(value, torch.Tensor)

    def is_variable(self, value) -> bool:
        """A raw Parameter (or a float tensor that requires grad) the layer holds: the trap on torch."""
        torch, keras = self.modules()
        if not isinstance(value, torch.Tensor) or isinstance(value, keras.Variable) or not value.is_floating_point():
            return False
        return isinstance(value, torch.nn.Parameter) or bool(value.requires_grad)

    def is_leaf(self, value) -> bool:
        torch, keras = self.modules()
        return isinstance(value, (torch.Tensor, keras.Variable, np.ndarray))

    def backing(self, variable):
        _, keras = self.modules()
        if isinstance(variable, keras.Variable):
            held = variable.value
            self._variables[id(held)] = variable
            return held
        return variable

    def remember_places(self, names) -> None:
        """Nothing to remember: a Parameter is assigned in place."""

    def attributes(self, value):
        """A torch module keeps its Parameters, buffers and submodules apart from `__dict__`."""
        torch, _ = self.modules()
        attributes = getattr(value, "__dict__", None)
        if not isinstance(value, torch.nn.Module) or not isinstance(attributes, dict):
            return attributes
        merged = {k: v for k, v in attributes.items() if k not in _MODULE_INTERNALS}
        for part in ("_parameters", "_buffers", "_modules"):
            merged.update((k, v) for k, v in (attributes.get(part) or {}).items() if k != "_torch_params")
        return merged

    def to_numpy(self, value):
        torch, keras = self.modules()
        if isinstance(value, keras.Variable):
            value = value.value
        if isinstance(value, torch.Tensor):
            return to_numpy(value)
        return np.asarray(value)

    def assign(self, variable, value) -> None:
        torch, keras = self.modules()
        if isinstance(variable, keras.Variable):
            variable.assign(value)
            return
        with torch.no_grad():
            variable.copy_(torch.as_tensor(np.array(value), dtype=variable.dtype))

    def dtype_name(self, value) -> str:
        _, keras = self.modules()
        if isinstance(value, keras.Variable):
            return str(value.dtype)
        return str(value.dtype).removeprefix("torch.")

    def is_float(self, value) -> bool:
        _, keras = self.modules()
        return bool(keras.backend.is_float_dtype(self.dtype_name(value)))

    def variable_label(self, variable) -> str:
        held = self._variables.get(id(variable), variable)
        return getattr(held, "path", None) or "Parameter"

    def float_leaves(self, result) -> list:
        return float_leaves(result, is_float_tensor)

    def variable_log(self) -> KerasVariableLog:
        return KerasVariableLog(self.backing)

    def trace(self, probe, mode: str):
        return trace_mode(probe, mode, self.backing)

    def run(self, probe, trace) -> dict:
        return execute(probe, trace, self.backing)

    def eager_run(self, probe) -> dict:
        return execute(probe, None, self.backing)

    def gradient_variables(self, layer, names) -> list:
        tracked = list(layer.trainable_variables)
        held = {id(self.backing(v)) for v in layer.variables}
        untracked = [obj for obj in names.objects.values() if self.is_variable(obj) and id(obj) not in held]
        return tracked + untracked

    def read_variables(self, probe):
        if not probe.traces:
            return lambda variable: True
        reads = set().union(*(trace.record.reads for trace in probe.traces))
        return lambda variable: id(self.backing(variable)) in reads

    def constants_used(self, probe) -> list:
        from .forensics import constants_used

        return constants_used(probe, self)

    def cuts(self, trace, source) -> list:
        from .forensics import find_cuts

        return find_cuts(trace, source)

    def culprit(self, probe, run, source, status: str):
        from .forensics import culprit

        return culprit(probe, run, source, status)

    def backward_failure(self, trace, error: BaseException, mode: str):
        from ..shared.nonfinite import backward_failure

        return backward_failure(error, mode, self.words)

    def nonfinite_finding(self, probe, run, name, variable, index, where, created, subject):
        from ..shared.nonfinite import nonfinite_finding
        from .forensics import nonfinite_origin

        return nonfinite_finding(probe, run, name, variable, index, where, created, subject, nonfinite_origin)

    def nonfinite_outputs(self, probe, runs, findings) -> list:
        from ..shared.nonfinite import nonfinite_outputs
        from .forensics import nonfinite_origin

        return nonfinite_outputs(probe, runs, findings, nonfinite_origin)

    def forward(self, probe, twin, mode: str, targets, samples):
        from .forward import Forward

        return Forward(probe, twin, mode, targets, samples)

    def curvature(self, probe, twin, mode: str, variables: list, input_indexes: list[int]):
        raise NotImplementedError(self.unavailable["SecondOrder"])

    def policy_locator(self, probe, copy, compute: str, taped):
        from ..shared.nonfinite import NoLocator

        return NoLocator()

    def gradients(self, layer, xs, projections, **settings):
        """The probe loss of `layer` (a copy under a dtype policy) and its gradients, as fit() takes them."""
        settings["variables"] = [self.backing(v) for v in settings["variables"]]
        inputs = [x.detach().clone().requires_grad_(i in settings["float_indexes"]) for i, x in enumerate(xs)]
        return probe_gradients(layer, inputs, projections, **settings)

    def vjp(self, function, primal, cotangent):
        torch, _ = self.modules()
        x = torch.as_tensor(np.array(primal)).requires_grad_(True)
        with torch.enable_grad():
            y = function(x)
        if not y.requires_grad:
            return None
        (grad,) = torch.autograd.grad(y, x, torch.as_tensor(cotangent, dtype=y.dtype), allow_unused=True)
        return None if grad is None else np.asarray(to_numpy(grad), "float64")

    def compile(self, layer, function, specs):
        raise NotImplementedError("the torch backend runs eagerly; nothing is compiled")


def _module_internals() -> frozenset:
    """What every torch module keeps in `__dict__` (hooks, flags): none of it is the layer's."""
    import torch

    return frozenset(vars(torch.nn.Module()).keys())


class _Internals:
    _cached: frozenset | None = None

    def __contains__(self, key) -> bool:
        if _Internals._cached is None:
            _Internals._cached = _module_internals()
        return key in _Internals._cached


_MODULE_INTERNALS = _Internals()

BACKEND = TorchBackend()
