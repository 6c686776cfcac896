"""Finite-difference checks: does the gradient the tape gives agree with the loss it differentiates?

A wrong `tf.custom_gradient` or hand-written backward gives a gradient that exists and is finite,
and is wrong; only a comparison with finite differences shows it. For each trainable weight call()
reads and each float input, on a float64 twin of the layer (twin.py):

0. Joint screen (screening.py): every float64 tensor displaced at once along its own first two
   directions; when that one comparison agrees within the smallest tensor's allowance, their
   directional passes below are skipped (halves of a failing group are looked at again).
1. Directional check (every tensor, any size): the tape's r·J·u (the gradient of the probe loss
   dotted with a seeded random unit direction u) against the central difference
   (L(θ + h·u) − L(θ − h·u)) / 2h. Two forward passes per direction, whatever the tensor's size.
2. Per-entry check (tensors of at most SMALL_TENSOR entries, or all with --exhaustive): the same
   with u = each unit vector, which finds an error confined to a few entries and names them.
3. Only a comparison that fails is looked at again (the cheap check first, detail on failure):
   with steps 10x and 100x smaller, and with one-sided differences. A smooth function with a wrong
   gradient keeps the same disagreement as h shrinks, and its one-sided slopes agree with each
   other; at a kink (ReLU, abs, max within h of the point) the one-sided slopes differ by the jump
   in slope, so it is reported as a non-differentiable point (info), not a mismatch. A steep but
   smooth function gets smaller steps still, until the estimates settle (steps.py).

The forward pass is compiled once per training mode (tf.function); weights are perturbed by
assign and inputs passed as arguments, so nothing retraces. Layers with randomness get their
Keras SeedGenerator states (and any RNN state, state.py) restored before every pass, so both sides
see the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import GradcheckError
from .fallback import fallback_findings, low_precision_op
from .gradient_paths import blocks_gradient_by_design, downstream_op, is_custom_gradient
from .inventory import tensor_name
from .loading import error_text, user_frame_of
from .outputs import float_tensors
from .probe import backing, call_layer, trace_layer_function
from .progress import Progress
from .report import finding
from .runtime import tensorflow
from .screening import draw_directions, first_step, screen, value_of
from .steps import Comparison, compare, relative_error
from .subbatch import Samples, leading_samples, whole_batch

DIRECTIONS = 3  # random directions per tensor and mode: one suffices for a gross error; three for margin
# Tensors up to this many entries are also checked entry by entry: 2 passes per entry, so at most
# 64 passes, about 10x the directional check's 6. Larger tensors are checked entry by entry only
# with --exhaustive; in float64 a random direction still sees an error confined to one entry of a
# tensor of n entries, diluted by about sqrt(n) (1e-3 on one entry of 1e4: 1e-5, at rtol).
SMALL_TENSOR = 32
_REFINED_ENTRIES = 8  # failing entries looked at again with smaller steps (the worst first)
_SHOWN_ENTRIES = 3  # worst entries named in a message


@dataclass(frozen=True)
class Tolerance:
    eps: float  # step, as a fraction of the tensor's scale max(RMS(θ), 1)
    rtol: float  # allowed |tape − numeric| as a fraction of the larger of the two
    atol: float  # floor of the allowed |tape − numeric|, as a fraction of the largest gradient norm


# Keyed by the dtype the arithmetic runs in. A central difference with step h is off by
# h²·|f'''|/6 (truncation) plus about ε·|L|/h (the loss's rounding, ε the dtype's machine epsilon).
# Balancing the two gives h ≈ ε^(1/3) and an error ≈ ε^(2/3) of the function's scale:
#   float64: ε = 1.1e-16 -> h ≈ 5e-6 (eps 1e-5), error ≈ 2e-11; rtol 1e-5 leaves a factor 1e5 for
#            curvature and for rounding summed over many outputs, and is 100x below the 1e-3
#            relative errors the check must catch.
#   float32: ε = 6e-8 -> h ≈ 4e-3 (eps 1e-3, where NOTES.md 8 measured agreement), error ≈ 1.5e-5;
#            with the same margins that gives rtol 1e-2: a float32 comparison sees gross errors only.
# The absolute floor: rounding noise in the numeric estimate is ≈ ε·sqrt(n)·|L|/h for n summed
# outputs, i.e. ≈ ε·sqrt(n)/eps of the gradient scale: 1e-8 for float64 at n = 1e6, 6e-3 for
# float32 at n = 1e4. A gradient that is rounding noise (MultiHeadAttention's key bias, which truly
# gets none) sits below that floor and is not held to a relative tolerance.
TOLERANCES = {
    "float64": Tolerance(eps=1e-5, rtol=1e-5, atol=1e-7),
    "float32": Tolerance(eps=1e-3, rtol=1e-2, atol=1e-2),
    # The same balance for the half-precision policies (the layer itself, when no float64 copy
    # exists): float16 ε = 9.8e-4 -> h ≈ 0.1, error ≈ 1e-2; bfloat16 ε = 7.8e-3 -> h ≈ 0.2,
    # error ≈ 4e-2. Only gross errors are visible there.
    "float16": Tolerance(eps=1e-1, rtol=2e-1, atol=2e-1),
    "bfloat16": Tolerance(eps=2e-1, rtol=5e-1, atol=5e-1),
}


@dataclass
class Target:
    """A tensor whose gradient is checked: a variable (by its original tf.Variable) or an input."""

    name: str
    variable: object = None  # the original tf.Variable, for a weight
    input_index: int | None = None
    location: str | None = None  # where its findings point
    verdict: str = "ok"
    error: float = 0.0
    dtype: str = "float64"
    fallback_op: object = None  # the LowPrecisionOp on its path that made it compare in float32
    gradient_location: str | None = None  # the user's line applying a custom gradient on its path
    checked: bool = False  # compared in at least one training mode
    skipped_modes: list = field(default_factory=list)  # modes it could not be compared in
    messages: list = field(default_factory=list)  # (verdict, text) per failing comparison


def check_numeric(probe, tensors, inputs):
    """Return ({tensor: facts}, {input: facts}, findings) from the finite-difference comparison."""
    if not probe.options.numeric:
        return {}, {}, []
    targets = _targets(probe, tensors, inputs)
    if not targets:
        return {}, {}, []
    if not probe.traces:  # call() cannot be compiled; trace-failed already says so
        return _skipped(targets, tensors)
    from .twin import make_twin, original_layer

    variables = [t.variable for t in targets if t.variable is not None]
    twin = make_twin(probe, variables)
    fewer = leading_samples(probe, twin)
    if fewer is not None:  # a large batch: its leading samples first (subbatch.py)
        try:
            _run(probe, twin, targets, fewer)
            return _results(probe, twin, targets, tensors)
        except GradcheckError:  # the time limit
            raise
        except Exception:  # e.g. a batch size written into call(): the whole batch decides
            targets = _targets(probe, tensors, inputs)
    try:
        _run(probe, twin, targets, whole_batch(probe, twin))
    except Exception as error:  # raised by the layer in a pass the probe did not make
        reason = f"{type(error).__name__}: {error_text(error, 200)}"
        targets = _targets(probe, tensors, inputs)
        if twin.reason is None:  # the float64 twin raised: try the layer itself, in float32
            twin = original_layer(probe, variables, f"the layer raised in float64 ({reason})", user_frame_of(error))
            try:
                _run(probe, twin, targets, whole_batch(probe, twin))
            except Exception:
                return _skipped(targets, tensors)
        else:
            return _skipped(targets, tensors)
    return _results(probe, twin, targets, tensors)


def _run(probe, twin, targets, samples: Samples) -> None:
    progress = Progress(probe.options.progress, _total_steps(probe, samples, targets))
    try:
        seen: list = []
        for trace in probe.distinct_traces():
            forward = _Forward(probe, twin, trace.mode, targets, samples)
            loss0, grads = forward.gradients([np.array(x) for x in samples.inputs])
            # A layer that computes the same thing in both modes (most do) is checked once: the same
            # function and the same gradients give the same comparisons.
            if any(_same(loss0, grads, other) for other in seen):
                progress.skip(progress.total // len(probe.distinct_traces()))
                continue
            seen.append((loss0, grads))
            _check_mode(probe, twin, trace.mode, targets, progress, forward, loss0, grads, samples)
    finally:
        progress.close()
        if twin.layer is probe.layer:
            twin.reset_seeds()  # the user's layer: its RNG and statistics as they were


def _targets(probe, tensors, inputs) -> list[Target]:
    _, keras = tensorflow()
    rows = {t.name: t for t in tensors if t.kind in ("trainable", "untracked")}  # not a constant of the same name
    targets = []
    for variable in probe.gradient_variables:
        name = tensor_name(probe, variable)
        row = rows.get(name)
        tf_variable = backing(variable, keras)
        if row is None or not row.read_by_call or not tf_variable.dtype.is_floating:
            continue
        targets.append(Target(name=name, variable=tf_variable, location=row.created_at))
    for index, item in enumerate(inputs):
        if item.differentiable:
            targets.append(Target(name=item.name, input_index=index))
    return targets


def _skipped(targets, tensors):
    variables = {t.name: {"numeric_verdict": "skipped"} for t in targets if t.variable is not None}
    inputs = {t.name: {"numeric_verdict": "skipped"} for t in targets if t.variable is None}
    return variables, inputs, []


def _size(probe, samples, target) -> int:
    if target.variable is not None:
        return int(np.prod(target.variable.shape))
    return int(samples.inputs[target.input_index].size)


def _total_steps(probe, samples, targets) -> int:
    per_mode = 0
    for target in targets:
        size = _size(probe, samples, target)
        per_mode += DIRECTIONS + (size if size <= SMALL_TENSOR or probe.options.exhaustive else 0)
    return per_mode * len(probe.distinct_traces())


class _Forward:
    """The twin's probe loss and its gradients, each compiled once for one training mode."""

    def __init__(self, probe, twin, mode: str, targets, samples: Samples):
        tf, keras = tensorflow()
        self.twin = twin
        training = {"true": True, "false": False}.get(mode)
        count = len(samples.inputs)
        batch = samples.batch
        float_indexes = [t.input_index for t in targets if t.variable is None]
        sources = [twin.variables[id(t.variable)] for t in targets if t.variable is not None]

        def loss_of(xs, rs):
            result = call_layer(twin.layer, xs, training, probe.accepts_training)
            flat = float_tensors(tf, result)
            # float64 projections even for a float32 layer: the sum itself adds no rounding.
            terms = [tf.reduce_sum(tf.cast(y, tf.float64) * r) for y, r in zip(flat, rs)]
            return tf.add_n(terms) / batch

        def loss(*arguments):
            return loss_of(list(arguments[:count]), list(arguments[count:]))

        def gradients(*arguments):
            xs, rs = list(arguments[:count]), list(arguments[count:])
            with tf.GradientTape() as tape:
                for i in float_indexes:
                    tape.watch(xs[i])
                value = loss_of(xs, rs)
            grads = tape.gradient(value, sources + [xs[i] for i in float_indexes])
            return value, [None if g is None else tf.convert_to_tensor(g) for g in grads]

        specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in samples.inputs]
        specs += [tf.TensorSpec(r.shape, tf.float64) for r in samples.projections]
        self.projections = [tf.constant(r) for r in samples.projections]
        twin.reset_seeds()
        with twin.arithmetic():
            self.gradient_function = trace_layer_function(twin.layer, gradients, specs)
        self._loss, self._specs, self._loss_function = loss, specs, None

    @property
    def loss_function(self):
        """Traced on first use: a mode found identical to an earlier one never needs it."""
        if self._loss_function is None:
            tf, _ = tensorflow()
            self.twin.reset_seeds()
            with self.twin.arithmetic():
                self._loss_function = trace_layer_function(self.twin.layer, self._loss, self._specs)
        return self._loss_function

    @property
    def graph(self):
        return self.loss_function.graph

    def loss(self, xs, tensors=None) -> float:
        """The probe loss on numpy inputs `xs` (or on `tensors` already made from them)."""
        tf, _ = tensorflow()
        self.twin.reset_seeds()
        tensors = tensors if tensors is not None else [tf.constant(x) for x in xs]
        return float(self.loss_function(*tensors, *self.projections).numpy())

    def gradients(self, xs):
        tf, _ = tensorflow()
        self.twin.reset_seeds()
        value, grads = self.gradient_function(*[tf.constant(x) for x in xs], *self.projections)
        return float(value.numpy()), [None if g is None else np.asarray(g.numpy(), "float64") for g in grads]

    def placeholder(self, target):
        """The graph tensor a target enters the loss through (an input, or a variable's handle)."""
        if target.variable is None:
            return self.graph.inputs[target.input_index]
        handle = self.twin.variables[id(target.variable)].handle
        for external, internal in self.graph.captures:
            if external is handle:
                return internal
        return None


def _same(loss0, grads, other) -> bool:
    other_loss, other_grads = other
    return loss0 == other_loss and all(
        (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
        for a, b in zip(grads, other_grads)
    )


def _check_mode(probe, twin, mode, targets, progress, forward, loss0, grads, samples) -> None:
    base = [np.array(x) for x in samples.inputs]
    if not np.isfinite(loss0) or forward.loss(base) != forward.loss(base):
        for target in targets:  # NaN output, or randomness outside Keras's seed generators
            target.skipped_modes.append(mode)
        return
    finite = [g for g in grads if g is not None and np.all(np.isfinite(g))]
    scale = max((float(np.linalg.norm(g)) for g in finite), default=0.0)  # the largest gradient norm
    # Each tensor's DIRECTIONS unit directions, drawn once for the screen and the per-tensor checks.
    directions = draw_directions(probe.options.seed, grads, DIRECTIONS, DIRECTIONS)
    float64 = _tolerance(probe.options, "float64")  # one joint look first: it may clear them all (screening.py)
    cleared = screen(
        forward,
        twin,
        _ordered(targets),
        grads,
        base,
        steps=lambda t: first_step(float64.eps, value_of(twin, base, t)),
        eligible=lambda t: low_precision_op(forward.placeholder(t)) is None,
        tolerance=float64,
        floor=float64.atol * scale,
        seed=probe.options.seed,
        per_tensor=DIRECTIONS,
        directions=directions,
    )
    for target, grad, drawn in zip(_ordered(targets), grads, directions):
        if grad is None or not np.all(np.isfinite(grad)):
            target.skipped_modes.append(mode)  # gradients.py reports a None or NaN gradient
            continue
        dtype = twin.dtype
        low = low_precision_op(forward.placeholder(target)) if dtype == "float64" else None
        if low is not None:
            dtype, target.fallback_op = low.dtype, target.fallback_op or low
        if dtype != "float64":
            target.dtype = dtype
        tolerance = _tolerance(probe.options, dtype)
        evaluate = _evaluator(forward, twin, target, base)
        step = first_step(tolerance.eps, evaluate.value())
        floor = tolerance.atol * scale
        comparisons = []
        try:
            for direction in drawn:
                if id(target) in cleared:  # its screen comparisons stand in for this one
                    progress.advance()
                    continue
                comparisons.append(
                    compare(
                        "a random direction",
                        float(np.sum(grad * direction)),
                        evaluate,
                        direction,
                        step,
                        loss0,
                        tolerance,
                        floor,
                        dtype,
                    )
                )
                progress.advance()
            comparisons += cleared.get(id(target), [])
            if grad.size <= SMALL_TENSOR or probe.options.exhaustive:
                comparisons += _entries(grad, evaluate, step, loss0, tolerance, floor, dtype, progress)
        finally:
            evaluate.restore()  # the weight exactly as it was, even when the layer raised
        if (
            any(c.verdict == "mismatch" for c in comparisons)
            and downstream_op(forward, target, blocks_gradient_by_design) is not None
        ):
            # A path through tf.stop_gradient (or numpy_function) moves the loss and finite
            # differences see it, while the gradient leaves it out on purpose (a straight-through
            # estimator): the disagreement says nothing about the gradient, so it is not a
            # mismatch. Paths where the stop is harmless (tf.nn.moments' stop_gradient(mean) in
            # LayerNormalization) agree, and stay checked.
            target.skipped_modes.append(mode)
            continue
        if any(c.verdict == "mismatch" for c in comparisons):
            target.gradient_location = target.gradient_location or downstream_op(forward, target, is_custom_gradient)
        _record(target, comparisons, mode, dtype, step, probe)


def _ordered(targets):
    """Targets in the order the gradient function returns them: variables, then inputs."""
    return [t for t in targets if t.variable is not None] + [t for t in targets if t.variable is None]


def _tolerance(options, dtype: str) -> Tolerance:
    table = TOLERANCES[dtype]
    return Tolerance(
        eps=options.eps if options.eps is not None else table.eps,
        rtol=options.rtol if options.rtol is not None else table.rtol,
        atol=options.atol if options.atol is not None else table.atol,
    )


class _evaluator:
    """L(θ + d) for a displacement d of one target: assign for a variable, an argument for an input."""

    def __init__(self, forward, twin, target, base):
        self.forward, self.target, self.base = forward, target, base
        tf, _ = tensorflow()
        self.variable = twin.variables[id(target.variable)] if target.variable is not None else None
        self.original = self.variable.numpy() if self.variable is not None else None
        self.tensors = [tf.constant(x) for x in base]  # unchanged inputs, converted once

    def value(self) -> np.ndarray:
        if self.variable is not None:
            return np.asarray(self.original, "float64")
        return np.asarray(self.base[self.target.input_index], "float64")

    def __call__(self, displacement) -> float:
        if self.variable is not None:
            self.variable.assign((self.original + displacement).astype(self.original.dtype))
            return self.forward.loss(self.base, self.tensors)
        xs = list(self.base)
        x = xs[self.target.input_index]
        xs[self.target.input_index] = (x + displacement).astype(x.dtype)
        return self.forward.loss(xs)

    def restore(self) -> None:
        if self.variable is not None:
            self.variable.assign(self.original)


def _entries(grad, evaluate, step, loss0, tolerance, floor, dtype, progress):
    """The per-entry check; only failing entries are looked at again, the worst first."""
    rough = []
    flat = grad.reshape(-1)
    for index in range(flat.size):
        unit = np.zeros(flat.size)
        unit[index] = 1.0
        unit = unit.reshape(grad.shape)
        numeric = (evaluate(step * unit) - evaluate(-step * unit)) / (2 * step)
        rough.append((index, unit, float(flat[index]), numeric))
        progress.advance()
    comparisons = []
    failing = []
    for index, unit, tape, numeric in rough:
        label = f"entry {[int(i) for i in np.unravel_index(index, grad.shape)]}" if grad.ndim else "the entry"
        error = relative_error(tape, numeric, tolerance.rtol, floor)
        if error <= tolerance.rtol:
            comparisons.append(Comparison(label, tape, numeric, error, step))
        else:
            failing.append((error, label, unit, tape))
    failing.sort(key=lambda item: -item[0])
    for rank, (error, label, unit, tape) in enumerate(failing):
        if rank < _REFINED_ENTRIES:
            comparisons.append(compare(label, tape, evaluate, unit, step, loss0, tolerance, floor, dtype))
        else:  # judged like the worst refined one: the same cause, most likely
            verdict = next((c.verdict for c in reversed(comparisons) if c.verdict != "ok"), "mismatch")
            comparisons.append(Comparison(label, tape, float("nan"), error, step, verdict))
    return comparisons


_RANK = {"mismatch": 0, "kink": 1, "skipped": 2, "ok": 3}


def _worsen(target, verdict, error, message) -> None:
    if _RANK[verdict] < _RANK[target.verdict]:
        target.verdict = verdict
    if np.isfinite(error):
        target.error = max(target.error, error)
    if message:
        target.messages.append((verdict, message))


def _record(target, comparisons, mode, dtype, step, probe) -> None:
    target.checked = True
    worst = max(comparisons, key=lambda c: (_RANK["ok"] - _RANK[c.verdict], c.error))
    verdict = worst.verdict
    context = f"{'float64 twin' if dtype == 'float64' else dtype}" + (
        f", training={mode.capitalize()}" if mode in ("true", "false") else ""
    )
    message = None
    if verdict in ("mismatch", "kink"):  # "skipped": no step resolved the function (steps.py)
        message = _message(target, comparisons, worst, context)
    _worsen(target, verdict, max(c.error for c in comparisons if np.isfinite(c.error)), message)


def _message(target, comparisons, worst, context) -> str:
    failing = sorted(
        (c for c in comparisons if c.verdict == worst.verdict),
        key=lambda c: (-float(f"{c.error:.2g}"), -abs(c.tape - c.numeric) if np.isfinite(c.numeric) else 0.0),
    )
    entries = [c for c in failing if c.label.startswith("entry") and np.isfinite(c.numeric)][:_SHOWN_ENTRIES]
    direction = next((c for c in failing if not c.label.startswith("entry")), None)
    parts = []
    if direction is not None:
        parts.append(
            f"along a random unit direction u the tape gives r·J·u = {direction.tape:.6g}, finite "
            f"differences {direction.numeric:.6g} (relative error {direction.error:.1e}, step {direction.step:.0e})"
        )
    if entries:
        shown = "; ".join(f"{c.label[6:]} tape {c.tape:.6g} vs numeric {c.numeric:.6g}" for c in entries)
        count = sum(1 for c in comparisons if c.label.startswith("entry") and c.verdict == worst.verdict)
        parts.append(f"{count} entr{'y' if count == 1 else 'ies'} disagree, worst: {shown}")
    detail = "; ".join(parts)
    if worst.verdict == "kink":
        return (
            f"`{target.name}`: finite differences disagree with the gradient ({context}): {detail}. The "
            "one-sided slopes differ as much, so the loss has a kink (ReLU, abs, max) within the step of "
            "this point: a non-differentiable point, not a wrong gradient. Sample inputs away from the kink "
            "(--input-range, --seed) to check this tensor exactly."
        )
    return (
        f"The gradient of `{target.name}` disagrees with finite differences ({context}): {detail}. The "
        "disagreement stays at smaller steps, where the estimates agree with each other and the loss is smooth, so the gradient is "
        "wrong, not the estimate. Check the custom gradient (tf.custom_gradient) or hand-written backward "
        "this tensor flows through."
    )


def _results(probe, twin, targets, tensors):
    tensor_updates, input_updates, findings = {}, {}, []
    for target in targets:
        # A mode with randomness outside Keras's seed generators (or a NaN loss) cannot be compared;
        # the verdict then rests on the modes that could be (training=False, usually).
        verdict = target.verdict if target.checked else "skipped"
        if verdict == "ok" and target.dtype != "float64":
            verdict = "float32-fallback"
        facts = {"numeric_verdict": verdict, "numeric_error": float(target.error) if verdict != "skipped" else None}
        (tensor_updates if target.variable is not None else input_updates)[target.name] = facts
        location = target.location
        mismatch = next((m for v, m in target.messages if v == "mismatch"), None)
        kink = next((m for v, m in target.messages if v == "kink"), None)
        if mismatch:
            findings.append(finding("gradient-mismatch", target.name, mismatch, target.gradient_location or location))
        elif kink:
            findings.append(finding("non-differentiable-point", target.name, kink, location))
    findings += fallback_findings(twin, targets, tensors, lambda dtype: _tolerance(probe.options, dtype).rtol)
    return tensor_updates, input_updates, findings
