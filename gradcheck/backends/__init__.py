"""The backend seam: everything that speaks a framework sits behind one object with this protocol.

The checks (checks/, numeric/) and the layer's bookkeeping (layer/) are written against Keras and
numpy, and ask the backend for what only the framework can answer: how to trace call() and take
the probe loss's gradients, which variables and constants a trace reads, which op at which user
line cuts, kills or makes NaN of a gradient, how to compile the float64 twin's loss for finite
differences and its Hessian-vector products, and how a value becomes a tensor. TensorFlow's
implementation is `backends/tensorflow/` (its graph forensics in `backends/tensorflow/graph/`);
JAX's is `backends/jax/` (jaxprs) and PyTorch's `backends/torch/` (a pass recorded op by op), with
what those two share in `backends/shared/`. runtime.backend() picks one by KERAS_BACKEND.

Objects the protocol passes around without the checks looking inside: a `Trace` (call() traced in
one training mode), a *source* (where a weight or an input enters a trace: `Trace.source`), a
`Forward` (the twin's loss and gradients for finite differences) and a `Curvature` (its gradient
and H·v for the second order). The findings a backend makes itself (a backward pass that raises, a
NaN's origin) use the codes of codes.py, with the framework's own words in their messages.

This module imports no framework; it may import the top-level contracts only.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol


class Trace(Protocol):
    """call() traced under one value of `training`, with the probe loss and its gradients."""

    mode: str  # "true", "false" or "n/a"
    fingerprint: Any  # equal for two traces that compute the same thing

    def source(self, variable=None, input_index: int | None = None) -> Any:
        """Where a variable (or the float input at `input_index`) enters the trace; None: not read."""


class Forward(Protocol):
    """The float64 twin's probe loss and its gradients in one training mode, compiled once."""

    stops: bool  # a stop_gradient somewhere in the layer: then the two gradients below differ

    def loss(self, xs: list, tensors: list | None = None) -> float: ...

    def gradients(self, xs: list, *, tape: bool = False) -> tuple[float, list]:
        """(loss, gradients): the derivative of what the forward pass computes (every stop_gradient
        taken as the identity it is in value), or with `tape` the gradient fit() uses; a weight with
        `rows(target)` gets its gradient on those rows only."""

    def rows(self, target) -> Any:
        """The rows of the target's weight the samples look up, when the loss reads it only by such
        lookups and not every row (an embedding's table): a numpy array of row numbers, else None."""

    def unread(self, target, *, tape: bool = False) -> float | None:
        """The norm of the gradient the last gradients() gave the rows `rows(target)` leaves out
        (zero for a correct gradient: the loss does not depend on them); None without rows."""

    def low_precision(self, target) -> Any:
        """The first op on the target's path that computes in less than float64 (None: none)."""

    def custom_gradient_line(self, target) -> str | None:
        """The user's line applying a custom gradient on the target's path ("" outside their code)."""

    def custom_gradients(self, target) -> list[str]:
        """Each custom gradient on the target's path, in words: where it is applied and the
        function computing it, nearest first (empty: none)."""

    def no_gradient_by_design(self, target) -> str | None:
        """The line of an op with no gradient at all (numpy code) on the target's path ("" outside
        the user's code), or None."""

    def stop_line(self, target) -> str | None:
        """The line of a stop_gradient on the target's path ("" outside the user's code), or None."""


class Curvature(Protocol):
    """The twin's gradient and Hessian-vector products in one training mode (--order 2)."""

    twin: Any
    center: list  # ∇L at θ

    def value(self) -> list: ...

    def gradient(self, displacement=None) -> list: ...

    def hessian_vector(self, direction) -> list: ...


@dataclass(frozen=True)
class Words:
    """How the findings' messages name the framework's own things, so a message about a JAX layer
    says `jax.custom_vjp` where a TensorFlow one says `tf.custom_gradient`."""

    framework: str  # "TensorFlow"
    raw_variable: str  # what a raw, untracked variable is: "tf.Variable"
    custom_gradient: str  # how a hand-written gradient is written: "tf.custom_gradient"
    tracer: str  # what traces call() as fit() would: "tf.function"
    stop_gradient: str  # "tf.stop_gradient"
    # How an op's own gradient is given, when no custom gradient is on a wrong one's path.
    registered_gradient: str  # "a gradient registered with tf.RegisterGradient or gradient_override_map"


class Backend(Protocol):
    """One framework behind Keras (see the module's docstring)."""

    name: str
    words: Words
    unavailable: dict  # {check class name: why it does not run here}: pipeline.py says so in a finding

    # the framework
    def modules(self, hide_stderr: bool = True) -> tuple[Any, Any]:
        """(the framework's module, keras), imported quietly on first use."""

    def versions(self) -> dict: ...

    def seed(self, seed: int) -> None:
        """Keras's global random state seeded (initialisers draw from it): keras.utils.set_random_seed."""

    def compiling(self) -> AbstractContextManager:
        """The settings the checks compile their functions under, put back afterwards."""

    def float64_scope(self, promote: bool = False) -> AbstractContextManager:
        """float64 arithmetic for building, calling and tracing the twin."""

    def unfilled_weights(self) -> AbstractContextManager:
        """Copies made while active skip their large weights' initializers (given values right after)."""

    def constant(self, value, dtype=None) -> Any: ...

    def is_tensor(self, value) -> bool: ...

    def read_rows(self, variable, rows) -> Any:
        """The values of a variable's rows `rows` (row numbers along its first axis), as numpy."""

    def assign_rows(self, variable, rows, values) -> None:
        """Write `values` into the variable's rows `rows`, leaving every other row as it is."""

    def sparse_gradient(self, values, rows, variable) -> Any:
        """A gradient of `variable` that is `values` on its rows `rows` and zero elsewhere, in the
        form the framework's optimizer takes without a dense copy (TensorFlow's IndexedSlices, as
        its tape gives an embedding's gradient); None where there is none."""

    def snapshot(self, variable) -> Any:
        """The variable's value now, as a tensor that keeps it when the variable is written later
        (sharing its memory until then); `variable.assign(snapshot)` puts it back exactly."""

    def assign_from(self, variable, source) -> None:
        """Give `variable` the value of `source` (a variable of the same dtype, or of a float dtype
        when `variable` is float64: casts that are exact)."""

    def is_variable(self, value) -> bool:
        """A framework variable (tracked by Keras or not)."""

    def backing(self, variable) -> Any:
        """The framework variable behind a Keras variable (itself for a raw one): its identity."""

    def is_leaf(self, value) -> bool:
        """A value a layer may hold as a weight: a variable (Keras's or raw), a tensor, an array."""

    def attributes(self, value) -> dict | None:
        """An object's attributes as the attribute walk (layer/naming.py) sees them: `__dict__`,
        and for a torch module also the Parameters and submodules it keeps apart."""

    def remember_places(self, names) -> None:
        """Told every object the attribute walk found, with its place (a JAX array cannot be
        assigned in place, so its backend puts a new one where the old one is held)."""

    # values, whatever the framework holds them in (a variable, a tensor, an array)
    def to_numpy(self, value) -> Any:
        """A tensor, a variable (Keras's or raw) or a numpy array, as a numpy array."""

    def assign(self, variable, value) -> None:
        """Give a variable (Keras's or raw) the numpy `value`, in the variable's own dtype."""

    def dtype_name(self, value) -> str:
        """The dtype of a tensor, variable or array by its name: "float32"."""

    def is_float(self, value) -> bool:
        """Whether a tensor, variable or array holds floating-point numbers."""

    def variable_label(self, variable) -> str:
        """The name the framework gives a variable none of the layer's attributes holds
        (TensorFlow's `dense/kernel`, without its `:0`)."""

    def float_leaves(self, result) -> list[tuple[str, Any]]:
        """[(name, tensor)] for every float leaf of what call() returned, in a fixed order."""

    def variable_log(self) -> Any:
        """A recorder of the variables made while it is active, with the user's line of each."""

    # the probe
    def trace(self, probe, mode: str) -> Trace: ...

    def run(self, probe, trace: Trace) -> dict:
        """One pass of a trace on the probe batch: {"loss", "outputs", "grads"} as numpy."""

    def eager_run(self, probe) -> dict:
        """The same pass without a trace (call() could not be traced)."""

    def gradient_variables(self, layer, names) -> list:
        """What the probe differentiates: the trainable weights, then trainable raw variables."""

    # what a trace reads, and forensics on it
    def read_variables(self, probe) -> Callable[[Any], bool]:
        """Whether call() reads a variable (from the traces; from a tape when tracing failed)."""

    def constants_used(self, probe) -> list:
        """Float tensors and arrays call() uses as if they were weights: (object, values, first use)."""

    def cuts(self, trace: Trace, source) -> list: ...

    def culprit(self, probe, run, source, status: str) -> Any: ...

    def backward_failure(self, trace: Trace, error: BaseException, mode: str) -> Any: ...

    def nonfinite_finding(self, probe, run, name, variable, index, where, created, subject) -> Any: ...

    def nonfinite_outputs(self, probe, runs, findings) -> list: ...

    # finite differences
    def forward(self, probe, twin, mode: str, targets, samples) -> Forward: ...

    def curvature(self, probe, twin, mode: str, variables: list, input_indexes: list[int]) -> Curvature: ...

    # a comparison of backends (compare/side.py)
    def fixed_draws(self, seed: int) -> AbstractContextManager:
        """Keras's random draws made by numpy for the duration (the same numbers on every backend);
        yields an object whose `unreplayed` lists the random functions that could not be."""

    def recorded_calls(self) -> AbstractContextManager:
        """Records the outermost Keras backend-API calls made for the duration; yields the stream."""

    def call_gradients(self, stream, seed: int) -> None:
        """Each recorded call's own gradient (a VJP with a cotangent drawn from `seed`)."""

    def vjp(self, function, primal, cotangent) -> Any:
        """The gradient of sum(cotangent · function(x)) at x = `primal` (numpy), as numpy; None when
        no path reaches it. compare/stream.py asks it of each recorded backend-API call."""

    def compile(self, layer, function, specs) -> Any:
        """`function` compiled for inputs of `specs`, leaving `layer` as it was."""
