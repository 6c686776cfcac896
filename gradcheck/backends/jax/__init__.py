"""The JAX backend: Keras on `jax`, call() traced into a jaxpr, the jaxpr read for forensics.

- `runtime.py` — JAX imported once; x64 switched on only where float64 is asked for.
- `raw.py` — a raw JAX array the layer holds, as a variable that can be assigned (its place).
- `jaxprs.py` — reading a jaxpr: user lines, nested jaxprs, running it equation by equation.
- `tracing.py` — call() traced per training mode in a StatelessScope; what the jaxpr reads.
- `gradients.py` — the probe loss and its gradients, None told apart from zero (dead-code elimination).
- `cuts.py` — the equation that cuts a gradient path; `forensics.py` — where a gradient dies,
  explodes or turns NaN, and a backward pass that raises.
- `forward.py` — the float64 twin's loss and gradients for finite differences, and the walks
  along a tensor's path its verdict needs (a float32 island, a custom gradient, a stop_gradient).

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
from . import raw, runtime
from .gradients import as_numpy, differentiate, positions
from .tracing import is_float_array, trace_call, trace_mode, unscoped


class JaxBackend(NumpyValues, BackendComparison):
    """backends.Backend for Keras's JAX backend."""

    name = "jax"
    words = Words(
        framework="JAX",
        raw_variable="jax.Array",
        custom_gradient="jax.custom_vjp or jax.custom_jvp",
        tracer="jax.jit",
        stop_gradient="jax.lax.stop_gradient",
        registered_gradient="a primitive's JVP or transpose rule",
    )
    # Checks that do not run here, and why (pipeline.py reports each as one info finding).
    unavailable = {
        "SecondOrder": "Hessian-vector products are compared on the TensorFlow backend only so far",
    }

    def modules(self, hide_stderr: bool = True):
        return runtime.jax_modules(hide_stderr)

    def versions(self) -> dict:
        return runtime.versions()

    def seed(self, seed: int) -> None:
        self.modules()
        seed_keras(seed)

    def compiling(self):
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def float64_scope(self, promote: bool = False):
        with runtime.x64(), keras_float64():
            yield

    def constant(self, value, dtype=None):
        jax, _ = self.modules()
        value = np.asarray(value) if dtype is None else np.asarray(value).astype(dtype)
        with runtime.x64(runtime.wide(value.dtype)):
            return jax.numpy.asarray(value)

    def is_tensor(self, value) -> bool:
        jax, _ = self.modules()
        return isinstance(value, jax.Array)

    def is_variable(self, value) -> bool:
        """A raw float array the layer holds as if it were a weight (a 0/1 mask is a constant)."""
        if isinstance(value, raw.RawArray):
            return True
        jax, keras = self.modules()
        if not isinstance(value, jax.Array) or isinstance(value, keras.Variable) or not is_float_array(value):
            return False
        return not _is_mask(value)

    def is_leaf(self, value) -> bool:
        jax, keras = self.modules()
        return isinstance(value, (jax.Array, keras.Variable, np.ndarray))

    def backing(self, variable):
        slot = raw.slot_of(variable)
        return slot if slot is not None else variable

    def remember_places(self, names) -> None:
        raw.remember(names, self.is_variable)

    def attributes(self, value):
        return getattr(value, "__dict__", None)

    def to_numpy(self, value):
        _, keras = self.modules()
        value = self.backing(value)
        if isinstance(value, keras.Variable):
            value = value.value
        elif isinstance(value, raw.RawArray):
            value = value.current
        return np.asarray(value)

    def assign(self, variable, value) -> None:
        _, keras = self.modules()
        variable = self.backing(variable)
        if isinstance(variable, raw.RawArray):
            variable.assign(value)
            return
        with runtime.x64(runtime.wide(np.asarray(value).dtype) or variable.dtype in ("float64", "int64")):
            variable.assign(value)

    def dtype_name(self, value) -> str:
        _, keras = self.modules()
        if isinstance(value, keras.Variable):
            return str(value.dtype)
        return np.dtype(value.dtype).name

    def is_float(self, value) -> bool:
        _, keras = self.modules()
        return bool(keras.backend.is_float_dtype(self.dtype_name(value)))

    def variable_label(self, variable) -> str:
        return getattr(variable, "path", None) or "array"

    def float_leaves(self, result) -> list:
        return float_leaves(result, is_float_array)

    def variable_log(self) -> KerasVariableLog:
        return KerasVariableLog()

    def trace(self, probe, mode: str):
        return trace_mode(probe, mode)

    def run(self, probe, trace) -> dict:
        targets = positions(trace.traced, probe.gradient_variables, probe.float_input_indexes)
        taped = differentiate(trace.traced, list(probe.inputs), probe.projections, probe.batch_size, targets)
        return as_numpy(taped)

    def eager_run(self, probe) -> dict:
        """call() could not be traced as fit() traces it: its gradients from a trace that puts the
        tracers in the variables themselves (a variable made in call() stops only the first), else
        its output alone and no gradient."""
        from .forensics import eager_result

        traced = unscoped(probe)
        if traced is None:
            return eager_result(probe)
        targets = positions(traced, probe.gradient_variables, probe.float_input_indexes)
        return as_numpy(differentiate(traced, list(probe.inputs), probe.projections, probe.batch_size, targets))

    def gradient_variables(self, layer, names) -> list:
        tracked = list(layer.trainable_variables)
        held = {id(v.value) for v in layer.variables}
        untracked = [obj for obj in names.objects.values() if self.is_variable(obj) and id(obj) not in held]
        return tracked + untracked

    def read_variables(self, probe):
        if probe.traces:
            reads = set().union(*(trace.reads for trace in probe.traces))
        else:  # call() could not be traced as fit() traces it: the trace without a scope, if any
            from .tracing import reads_of

            traced = unscoped(probe)
            if traced is None:
                return lambda variable: True  # not known: every variable the layer holds counts
            reads = reads_of(traced)
        return lambda variable: id(self.backing(variable)) in reads

    def constants_used(self, probe) -> list:
        from .forensics import constants_used

        return constants_used(probe, self)

    def cuts(self, trace, source) -> list:
        from .cuts import find_cuts

        return find_cuts(trace.traced.jaxpr, source)

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

    def gradients(self, layer, xs, projections, *, training, accepts_training, variables, float_indexes, batch, **kw):
        """The probe loss of `layer` (a copy under a dtype policy) and its gradients, as fit() takes them."""
        traced = trace_call(layer, list(xs), training, accepts_training)
        targets = positions(traced, variables, float_indexes)
        return differentiate(
            traced,
            list(xs),
            projections,
            batch,
            targets,
            float64=kw.get("float64", False),
            scale=kw.get("scale", 1.0),
            alive=False,
        )

    def vjp(self, function, primal, cotangent):
        jax, _ = self.modules()
        with runtime.x64(runtime.wide(np.asarray(primal).dtype)):
            y, back = jax.vjp(function, jax.numpy.asarray(primal))
            (grad,) = back(jax.numpy.asarray(cotangent).astype(y.dtype))
        return np.asarray(grad, "float64")

    def compile(self, layer, function, specs):
        raise NotImplementedError("the JAX backend evaluates jaxprs; nothing is compiled by name")


def _is_mask(value) -> bool:
    values = np.unique(np.asarray(value))
    return len(values) == 2 and set(values.tolist()) == {0.0, 1.0}


BACKEND = JaxBackend()
