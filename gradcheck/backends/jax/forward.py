"""The float64 twin's probe loss and its gradients on JAX, for the finite-difference check
(numeric/first_order.py), and the walks along a tensor's path its verdict needs.

The twin's call() is traced once per mode, under x64 and Keras's float64 arithmetic
(backends/shared/precision.py), and the jaxpr is evaluated under jit with the twin's variables and
raw arrays passed in as they are at each call: the check perturbs them by assigning, and nothing
is traced again. Every pass runs inside the twin's arithmetic (x64 on): outside it, JAX would give
float32 results from the very same float64 arrays.
"""

from __future__ import annotations

import numpy as np

from ...errors import user_code
from ...layer.calling import training_of
from ..shared.findings import LowPrecisionOp
from .gradients import loss_function, positions
from .jaxprs import called_from_user, is_float, is_var, line_of, nested
from .runtime import jax_modules
from .tracing import probe_loss, trace_call

_LOW = ("float32", "float16", "bfloat16")
_CALLBACKS = frozenset({"pure_callback", "io_callback"})


class Forward:
    """The twin's probe loss and its gradients in one training mode (backends.Forward)."""

    def __init__(self, probe, twin, mode: str, targets, samples):
        jax, _ = jax_modules()
        self.twin, self.samples = twin, samples
        self.float64 = twin.dtype == "float64"
        variables = [twin.variables[id(t.variable)] for t in targets if t.variable is not None]
        float_indexes = [t.input_index for t in targets if t.variable is None]
        twin.reset_seeds()
        with twin.arithmetic():
            self.traced = trace_call(twin.layer, list(samples.inputs), training_of(mode), probe.accepts_training)
        self.targets = positions(self.traced, variables, float_indexes)
        self.sources = {
            id(t): self.traced.var(twin.variables[id(t.variable)] if t.variable is not None else None, t.input_index)
            for t in targets
        }
        jaxpr, batch, float64 = self.traced.jaxpr, samples.batch, self.float64
        self.stops = _has_stop(jaxpr)

        def evaluate(consts, arguments, projections):
            outputs = jax.core.eval_jaxpr(jaxpr, consts, *arguments)
            return probe_loss(jax.numpy, outputs, projections, batch, float64)

        self._loss = jax.jit(evaluate)
        self._reached: dict = {}

    def loss(self, xs: list, tensors=None) -> float:
        """The probe loss on numpy inputs `xs`, the twin's variables as they are now."""
        self.twin.reset_seeds()
        with self.twin.arithmetic(), user_code("running the layer's loss in a finite-difference pass"):
            consts, arguments = self.traced.arguments(list(xs))
            return float(self._loss(consts, arguments, list(self.samples.projections)))

    def gradients(self, xs: list, *, tape: bool = False):
        """(loss, gradients); unless `tape`, every stop_gradient evaluated as the identity it is in
        value: the derivative finite differences measure."""
        from .gradients import _reached

        jax, _ = jax_modules()
        through = self.stops and not tape
        self.twin.reset_seeds()
        with self.twin.arithmetic(), user_code("running the layer's gradient in a finite-difference pass"):
            loss_of, floats = loss_function(
                self.traced,
                list(xs),
                self.samples.projections,
                self.samples.batch,
                self.targets,
                float64=self.float64,
                through_stops=through,
            )
            (value, _), grads = jax.jit(jax.value_and_grad(loss_of, has_aux=True))(floats)
            if through not in self._reached:
                self._reached[through] = _reached(jax, lambda fl: loss_of(fl)[0], floats)
        made = iter(np.asarray(g, "float64") if ok else None for g, ok in zip(grads, self._reached[through]))
        return float(value), [None if p is None else next(made) for p in self.targets]

    def _path(self, target):
        """(equation, the top-level equation whose line it is) along float edges from the target."""
        source = self.sources.get(id(target))
        return [] if source is None else list(_float_path(self.traced.jaxpr, {source}, None))

    def rows(self, target) -> None:
        """Every weight is compared whole here (embedding rows: TensorFlow only so far)."""
        return None

    def unread(self, target, *, tape: bool = False) -> None:
        return None

    def low_precision(self, target) -> LowPrecisionOp | None:
        """The first equation on the target's path whose float output is narrower than float64."""
        source = self.sources.get(id(target))
        if source is None:
            return None
        own = str(source.aval.dtype)
        if own in _LOW:  # a raw array the twin holds in float32: it moves in float32 steps
            return LowPrecisionOp("array", own, None)
        for eqn, top in self._path(target):
            low = [str(out.aval.dtype) for out in eqn.outvars if str(out.aval.dtype) in _LOW]
            if low:
                return LowPrecisionOp(eqn.primitive.name, low[0], line_of(top))
        return None

    def custom_gradient_line(self, target) -> str | None:
        """The user's line applying a custom_vjp/custom_jvp of their own on the target's path."""
        for eqn, top in self._path(target):
            if eqn.primitive.name in ("custom_vjp_call", "custom_jvp_call") and called_from_user(eqn):
                return line_of(top) or ""
        return None

    def custom_gradients(self, target) -> list[str]:
        """Each jax.custom_vjp / custom_jvp of the user's own on the target's path, in words: where it
        is applied, and for a custom_vjp the backward function that computes its gradient."""
        described = []
        for eqn, top in self._path(target):
            if eqn.primitive.name not in ("custom_vjp_call", "custom_jvp_call") or not called_from_user(eqn):
                continue
            kind = "jax.custom_vjp" if eqn.primitive.name == "custom_vjp_call" else "jax.custom_jvp"
            applied = line_of(top)
            words = f"the {kind} applied at {applied}" if applied else f"a {kind}"
            backward = _user_function(getattr(eqn.params.get("bwd"), "f", None))
            described.append(f"{words}, whose backward is {backward}" if backward else words)
        return described

    def no_gradient_by_design(self, target) -> str | None:
        """The line of a Python callback on the target's path (it has no gradient at all)."""
        return self._first_line(target, _CALLBACKS)

    def stop_line(self, target) -> str | None:
        """The line of a stop_gradient on the target's path ("" outside the user's code), or None."""
        return self._first_line(target, {"stop_gradient"}) if self.stops else None

    def _first_line(self, target, names) -> str | None:
        for eqn, top in self._path(target):
            if eqn.primitive.name in names:
                return line_of(top) or ""
        return None


def _user_function(function) -> str | None:
    """ "`name` at file:line" for a function defined in the user's code, else None."""
    from ...layer.source import format_location, is_user_file

    code = getattr(function, "__code__", None)
    if code is None or not is_user_file(code.co_filename):
        return None
    return f"`{getattr(function, '__qualname__', code.co_name)}` at {format_location(code.co_filename, code.co_firstlineno)}"


def _has_stop(jaxpr) -> bool:
    for eqn in jaxpr.eqns:
        held = nested(eqn)
        if eqn.primitive.name == "stop_gradient" or (held is not None and _has_stop(held[0])):
            return True
    return False


def _float_path(jaxpr, start: set, top):
    """Every equation a float value from `start` flows into, nested jaxprs included (each with the
    top-level equation that holds it)."""
    data = set(start)
    for eqn in jaxpr.eqns:
        inputs = [atom for atom in eqn.invars if is_var(atom)]
        if not any(atom in data for atom in inputs):
            continue
        here = top if top is not None else eqn
        yield eqn, here
        held = nested(eqn)
        if held is not None and len(held[0].invars) == len(eqn.invars):
            inner = {var for var, atom in zip(held[0].invars, eqn.invars) if is_var(atom) and atom in data}
            yield from _float_path(held[0], inner, here)
        data.update(out for out in eqn.outvars if is_float(out.aval))
