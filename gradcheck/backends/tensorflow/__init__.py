"""The TensorFlow backend: Keras on `tf`, traced with tf.function, its graphs read for forensics.

- `runtime.py` — TensorFlow imported quietly, once; the checks compiled without Grappler.
- `leaves.py` — the float leaves of what call() returns (sparse and ragged tensors included) and the
  probe loss; `tape.py` — the one tape: the probe loss and its gradients.
- `tracing.py` — the variables a layer creates, call() traced per training mode, a trace run.
- `arithmetic.py` — float64 arithmetic for the twin; `unfilled.py` — copies whose large weights skip
  their initializer (they are given other values right after).
- `forward.py` — the twin's loss and gradients for finite differences; `curvature.py` — its
  gradient and Hessian-vector products for the second order.
- `graph/` — forensics on a traced graph: what it reads, the op that cuts a path, where a gradient
  dies or turns NaN, a backward that raises, a dtype policy's losses.

Everything here may import the neutral rooms (layer/, the contracts); nothing outside backends/
imports a module of this package except through `BACKEND` (runtime.backend()).
"""

from __future__ import annotations

import numpy as np

from .. import Words
from ..shared.compared import BackendComparison
from . import arithmetic, runtime
from .graph import cuts, dying, nonfinite, reads
from .graph.backward import backward_failure
from .leaves import float_leaves
from .tape import probe_gradients
from .tracing import VariableLog, backing, execute_trace, gradient_variables, trace_layer_function, trace_mode


class TensorFlowBackend(BackendComparison):
    """backends.Backend for Keras's TensorFlow backend."""

    name = "tensorflow"
    words = Words(
        framework="TensorFlow",
        raw_variable="tf.Variable",
        custom_gradient="tf.custom_gradient",
        tracer="tf.function",
        stop_gradient="tf.stop_gradient",
        registered_gradient="a gradient registered with tf.RegisterGradient or gradient_override_map",
    )
    unavailable: dict = {}  # every check runs on TensorFlow

    def modules(self, hide_stderr: bool = True):
        return runtime.tensorflow(hide_stderr)

    def versions(self) -> dict:
        return runtime.versions()

    def seed(self, seed: int) -> None:
        _, keras = self.modules()
        keras.utils.set_random_seed(seed)

    def compiling(self):
        return runtime.unoptimized_graphs()

    def float64_scope(self, promote: bool = False):
        return arithmetic.float64_policy(promote)

    def unfilled_weights(self):
        from .unfilled import unfilled

        return unfilled()

    def constant(self, value, dtype=None):
        tf, _ = self.modules()
        return tf.constant(value) if dtype is None else tf.constant(value, dtype=dtype)

    def is_tensor(self, value) -> bool:
        tf, _ = self.modules()
        return bool(tf.is_tensor(value))

    def read_rows(self, variable, rows) -> np.ndarray:
        tf, _ = self.modules()
        # A gather of the value read whole, not of the variable: a sparse read (ResourceGather) would
        # put the variable in copy-on-read mode, as a sparse write does (assign_rows).
        return tf.gather(variable.read_value(), tf.constant(rows, tf.int64)).numpy()

    def assign_rows(self, variable, rows, values) -> None:
        tf, _ = self.modules()
        variable.scatter_update(tf.IndexedSlices(tf.constant(values, variable.dtype), tf.constant(rows, tf.int64)))
        # A sparse write leaves the variable in copy-on-read mode, where every read of it whole (an
        # embedding's lookup reads the table, then gathers) copies it: 205 MB and 40 ms a pass for
        # a float64 table of 25.6M numbers. Nothing else reads or writes it meanwhile.
        tf.raw_ops.DisableCopyOnRead(resource=variable.handle)

    def sparse_gradient(self, values, rows, variable):
        tf, _ = self.modules()
        shape = tf.constant(tuple(variable.shape), tf.int64)
        return tf.IndexedSlices(tf.constant(values, dtype=variable.dtype), tf.constant(rows, tf.int64), shape)

    def snapshot(self, variable):
        tf, _ = self.modules()
        return tf.identity(self.backing(variable))

    def assign_from(self, variable, source) -> None:
        tf, _ = self.modules()
        variable, source = self.backing(variable), self.backing(source)
        if source.dtype == variable.dtype or variable.dtype == tf.float64:  # exact: no numpy copy
            variable.assign(tf.cast(source, variable.dtype) if source.dtype != variable.dtype else source)
        else:  # narrower: rounded as numpy rounds, as copies always were
            self.assign(variable, np.asarray(self.to_numpy(source)))

    def is_variable(self, value) -> bool:
        tf, _ = self.modules()
        return isinstance(value, tf.Variable)

    def is_leaf(self, value) -> bool:
        """A value a layer may hold as a weight: a variable (Keras's or raw), a tensor, an array."""
        tf, keras = self.modules()
        return isinstance(value, (tf.Variable, keras.Variable, np.ndarray)) or tf.is_tensor(value)

    def backing(self, variable):
        _, keras = self.modules()
        return backing(variable, keras)

    def remember_places(self, names) -> None:
        """Nothing to remember: a tf.Variable is assigned in place."""

    def attributes(self, value):
        return getattr(value, "__dict__", None)

    def to_numpy(self, value):
        return value if isinstance(value, np.ndarray) else value.numpy()

    def assign(self, variable, value) -> None:
        tf, _ = self.modules()
        if isinstance(variable, tf.Variable):  # a Keras variable casts by itself
            value = np.asarray(value).astype(variable.dtype.as_numpy_dtype)
        variable.assign(value)

    def dtype_name(self, value) -> str:
        return value.dtype.name

    def is_float(self, value) -> bool:
        return bool(value.dtype.is_floating)

    def variable_label(self, variable) -> str:
        return variable.name.split(":")[0]

    def float_leaves(self, result) -> list:
        tf, _ = self.modules()
        return float_leaves(tf, result)

    def variable_log(self) -> VariableLog:
        return VariableLog()

    def trace(self, probe, mode: str):
        return trace_mode(probe, mode)

    def run(self, probe, trace) -> dict:
        return execute_trace(probe, trace)

    def eager_run(self, probe) -> dict:
        return reads.eager_result(probe)

    def gradient_variables(self, layer, names) -> list:
        return gradient_variables(layer, names)

    def read_variables(self, probe):
        return reads.read_variables(probe)

    def constants_used(self, probe) -> list:
        return reads.constants_used(probe)

    def cuts(self, trace, source) -> list:
        return cuts.find_cuts(trace, source)

    def culprit(self, probe, run, source, status: str):
        return dying.culprit(probe, run, source, status)

    def backward_failure(self, trace, error: BaseException, mode: str):
        return backward_failure(trace, error, mode)

    def nonfinite_finding(self, probe, run, name, variable, index, where, created, subject):
        return nonfinite.nonfinite_finding(probe, run, name, variable, index, where, created, subject)

    def nonfinite_outputs(self, probe, runs, findings) -> list:
        return nonfinite.nonfinite_outputs(probe, runs, findings)

    def forward(self, probe, twin, mode: str, targets, samples):
        from .forward import Forward

        return Forward(probe, twin, mode, targets, samples)

    def curvature(self, probe, twin, mode: str, variables: list, input_indexes: list[int]):
        from .curvature import Curvature

        return Curvature(probe, twin, mode, variables, input_indexes)

    def policy_locator(self, probe, copy, compute: str, taped):
        from .graph.policy import PolicyLocator

        return PolicyLocator(probe, copy, compute, taped)

    def gradients(self, layer, xs, projections, **settings):
        return probe_gradients(layer, xs, projections, **settings)

    def vjp(self, function, primal, cotangent):
        tf, _ = self.modules()
        x = tf.constant(primal)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
        grad = tape.gradient(y, x, output_gradients=tf.cast(tf.constant(cotangent), y.dtype))
        return None if grad is None else np.asarray(tf.convert_to_tensor(grad).numpy(), "float64")

    def compile(self, layer, function, specs):
        return trace_layer_function(layer, function, specs)


BACKEND = TensorFlowBackend()
