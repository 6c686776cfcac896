"""Second derivatives of the probe loss: tape-of-tape Hessian-vector products against finite
differences of the tape gradient (the maths of second_order.py, which writes the findings).

For a direction v over every checked tensor at once (weights and float inputs, one unit vector):

    tape:    H·v = ∇_θ (∇_θ L · v), a second tape over the first one's gradient computation;
    numeric: (∇L(θ + h·v) − ∇L(θ − h·v)) / 2h, the tape *gradient* differenced.

The first-order check (numeric.py) has already shown ∇L right, so the numeric side is the true
Hessian times v, up to O(h²); the tape side is what differentiating the gradient gives — what a
gradient penalty, a physics-informed loss on ∂y/∂x, MAML or sharpness-aware training get. Each
tensor's block of the two vectors is compared entry by entry with the first-order tolerance table,
so an error confined to one entry is not diluted by the size of the tensor. One direction costs
two gradient passes and one double-backward pass for the whole layer, not per tensor.

The gradient penalty's mixed term, ∇_W ‖∂L/∂x‖² = 2·H_{W,x}·∂L/∂x, is the weight block of H·v
for v = (0 on the weights, ∂L/∂x on the inputs): it is checked as one more direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import LayerRaised, user_code
from ..layer.calling import training_of
from ..layer.probe import trace_layer_function
from ..layer.tape import probe_gradients
from ..runtime import tensorflow
from .steps import Settled, ladder

_NO_GRADIENT = "gradient registry has no entry for"


@dataclass
class Block:
    """One tensor's part of H·v, tape against finite differences."""

    tape: np.ndarray | None  # None: the tape's second gradient is None for this tensor
    numeric: np.ndarray
    error: float  # the worst entry's relative error (floored denominator, as in numeric.py)
    step: float
    verdict: str = "ok"  # ok | none | mismatch | kink | skipped
    worst: list = field(default_factory=list)  # (entry index, tape, numeric) of the worst entries


class Curvature:
    """The twin's gradient and Hessian-vector product for one training mode, each compiled once.

    Sources are the checked weights (the twin's variables) then the float inputs, in that order;
    a gradient or H·v is a list of numpy arrays in that order (None where the tape gives None).
    """

    def __init__(self, probe, twin, mode: str, variables: list, input_indexes: list[int]):
        tf, _ = tensorflow()
        self.twin, self.variables, self.input_indexes = twin, variables, input_indexes
        training = training_of(mode)
        count = len(twin.inputs)
        batch = probe.batch_size

        def first(xs, rs):
            return probe_gradients(
                twin.layer,
                xs,
                rs,
                training=training,
                accepts_training=probe.accepts_training,
                variables=variables,
                float_indexes=input_indexes,
                batch=batch,
                float64=True,
            ).grads

        def inner_product(xs, rs, vs):
            grads = first(xs, rs)
            terms = [tf.reduce_sum(tf.cast(g, tf.float64) * v) for g, v in zip(grads, vs) if g is not None]
            return tf.add_n(terms) if terms else tf.constant(0.0, tf.float64)

        def gradient(*arguments):
            return first(list(arguments[:count]), list(arguments[count:]))

        def hessian_vector(*arguments):
            xs, rs, vs = self._split(arguments)
            with tf.GradientTape() as outer:
                for i in input_indexes:
                    outer.watch(xs[i])
                product = inner_product(xs, rs, vs)
            with user_code("differentiating the gradient of the probe loss"):
                result = outer.gradient(product, variables + [xs[i] for i in input_indexes])
            return [None if h is None else tf.convert_to_tensor(h) for h in result]

        def product(*arguments):
            return inner_product(*self._split(arguments))

        self._count = count
        self.specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in twin.inputs]
        self.specs += [tf.TensorSpec(r.shape, tf.float64) for r in probe.projections]
        self.direction_specs = [tf.TensorSpec(v.shape, tf.float64) for v in variables]
        self.direction_specs += [tf.TensorSpec(twin.inputs[i].shape, tf.float64) for i in input_indexes]
        self.projections = [tf.constant(r) for r in probe.projections]
        twin.reset_seeds()
        self.gradient_function = trace_layer_function(twin.layer, gradient, self.specs)
        self._hessian_vector, self._product = hessian_vector, product
        self._hessian_function = None
        self.originals = [v.numpy() for v in variables]
        self._center: list | None = None
        self.base = [np.array(x) for x in twin.inputs]

    def _split(self, arguments):
        count, outputs = self._count, len(self.projections)
        return (list(arguments[:count]), list(arguments[count : count + outputs]), list(arguments[count + outputs :]))

    @property
    def hessian_function(self):
        """Traced on first use. Raises LookupError when an op on the path has no registered gradient
        of its gradient; second_order.py then names it from the inner product's graph."""
        if self._hessian_function is None:
            self.twin.reset_seeds()
            try:
                self._hessian_function = trace_layer_function(
                    self.twin.layer, self._hessian_vector, self.specs + self.direction_specs
                )
            except LayerRaised as raised:
                # TensorFlow's LookupError names the op; keep only its line.
                line = next((text.strip() for text in str(raised.error).splitlines() if _NO_GRADIENT in text), None)
                if line is None:
                    raise
                raise LookupError(line.removeprefix("LookupError: ")) from None
        return self._hessian_function

    def product_graph(self):
        """(graph, ∇L·v tensor) of the first gradient dotted with v: the double-backward graph
        cuts.find_cuts walks to name the op whose gradient has no gradient."""
        self.twin.reset_seeds()
        function = trace_layer_function(self.twin.layer, self._product, self.specs + self.direction_specs)
        return function.graph, function.outputs[0]

    def value(self) -> list[np.ndarray]:
        """θ: the checked weights and float inputs, float64."""
        return [np.asarray(v, "float64") for v in self.originals] + [
            np.asarray(self.base[i], "float64") for i in self.input_indexes
        ]

    @property
    def center(self) -> list:
        """∇L at θ itself, computed once: where the gradient is differenced around."""
        if self._center is None:
            self._center = self.gradient()
        return self._center

    def gradient(self, displacement=None) -> list:
        """∇L at θ + displacement (a list like value()); weights are put back afterwards."""
        tf, _ = tensorflow()
        xs = list(self.base)
        if displacement is not None:
            for variable, original, d in zip(self.variables, self.originals, displacement):
                variable.assign((original + d).astype(original.dtype))
            for i, d in zip(self.input_indexes, displacement[len(self.variables) :]):
                xs[i] = (xs[i] + d).astype(xs[i].dtype)
        try:
            self.twin.reset_seeds()
            with user_code("running the float64 copy's gradient"):
                grads = self.gradient_function(*[tf.constant(x) for x in xs], *self.projections)
        finally:
            if displacement is not None:
                for variable, original in zip(self.variables, self.originals):
                    variable.assign(original)
        return [None if g is None else np.asarray(g.numpy(), "float64") for g in grads]

    def hessian_vector(self, direction) -> list:
        tf, _ = tensorflow()
        self.twin.reset_seeds()
        function = self.hessian_function  # traced first: a LookupError there is a finding of its own
        with user_code("running the float64 copy's Hessian-vector product"):
            result = function(
                *[tf.constant(x) for x in self.base], *self.projections, *[tf.constant(d) for d in direction]
            )
        return [None if h is None else np.asarray(h.numpy(), "float64") for h in result]


def compare(curvature, direction, step, tolerance, dtype, wanted) -> list:
    """Blocks of H·v (tape) against central differences of the tape gradient, one per source;
    `wanted` says which sources are compared (the penalty direction compares weights only).

    The first-order check's ladder (steps.ladder) applied to the gradient: a failing block is looked
    at again at smaller steps, then told apart as a kink (the gradient jumps within the step: ReLU,
    max) or a wrong second derivative. A block whose tape is None and that fails is `none`.
    """
    tape = curvature.hessian_vector(direction)

    def evaluate(h: float) -> list:
        return curvature.gradient([h * d for d in direction])

    first = (evaluate(step), evaluate(-step))
    numeric = [(p - m) / (2 * step) for p, m in zip(*first)]
    # The floor, as in the first-order check: atol of the largest block's norm, below which an entry
    # is rounding noise (a structural zero of the Hessian, differenced) and not held to rtol.
    scale = max([float(np.linalg.norm(n)) for n in numeric] + [float(np.linalg.norm(t)) for t in tape if t is not None])
    floor = tolerance.atol * scale
    settled = ladder(tape, evaluate, curvature.center, step, tolerance.rtol, floor, dtype, wanted, first)
    return [None if done is None else _block(t, done, tolerance.rtol) for t, done in zip(tape, settled)]


def _block(tape, settled: Settled, rtol: float) -> Block:
    errors = settled.errors
    order = np.argsort(-errors, axis=None)[:3]
    worst = [
        (
            tuple(int(i) for i in np.unravel_index(k, errors.shape)),
            0.0 if tape is None else float(tape.reshape(-1)[k]),
            float(settled.numeric.reshape(-1)[k]),
        )
        for k in order
        if errors.reshape(-1)[k] > rtol
    ]
    verdict = "none" if tape is None and settled.verdict == "mismatch" else settled.verdict
    return Block(tape, settled.numeric, settled.error, settled.step, verdict, worst)
