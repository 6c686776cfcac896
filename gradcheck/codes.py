"""The vocabulary of findings: every code, with its severity and a one-line summary, in one place.

A check names a finding by one of these constants (`codes.NONE_GRADIENT`), never by a string it
types itself, so a misspelt code is a NameError and not a new code nobody documented. The JSON
carries the code's name ("none-gradient"); the README's table and the per-code pages
(gradcheck/findings/, also reached as docs/findings/) are tested against `CODES`. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
ERROR: Severity = "error"
WARNING: Severity = "warning"
INFO: Severity = "info"
SEVERITY_ORDER: dict[str, int] = {ERROR: 0, WARNING: 1, INFO: 2}  # worst first


@dataclass(frozen=True)
class Code:
    """One finding code: what the JSON and the text report print (`name`), how bad it is, what it means."""

    name: str
    severity: Severity
    summary: str

    def __str__(self) -> str:
        return self.name


CODES: dict[str, Code] = {}


def _code(name: str, severity: Severity, summary: str) -> Code:
    code = Code(name, severity, summary)
    CODES[name] = code
    return code


# What call() uses (checks/inventory.py)
UNTRACKED_VARIABLE = _code(
    "untracked-variable", ERROR, "a variable used by call() that Keras does not track (absent from layer.weights)"
)
CONSTANT_TENSOR = _code(
    "constant-tensor", ERROR, "a float tensor or numpy array used by call() as a weight but not a variable"
)
VARIABLE_CREATED_IN_CALL = _code("variable-created-in-call", ERROR, "call() makes a new variable on every call")
UNUSED_VARIABLE = _code("unused-variable", ERROR, "a trainable weight that call() never reads")
NON_TRAINABLE_VARIABLE = _code(
    "non-trainable-variable", INFO, "a tracked variable with trainable=False that call() reads"
)

# Gradients (checks/gradients.py, checks/weak.py)
NONE_GRADIENT = _code(
    "none-gradient",
    ERROR,
    "a trainable weight read by call() whose gradient is None; location = the op that cuts the path",
)
INPUT_GRADIENT_NONE = _code(
    "input-gradient-none", ERROR, "the gradient w.r.t. a float input is None: layers before it cannot train"
)
NONFINITE_GRADIENT = _code("nonfinite-gradient", ERROR, "NaN/Inf in a gradient or in the output")
BACKWARD_FAILED = _code(
    "backward-failed",
    ERROR,
    "the backward pass raises (a tf.py_function around numpy code, a custom gradient of the wrong shape); location = the op whose gradient fails",
)
ZERO_GRADIENT = _code("zero-gradient", WARNING, "gradient exactly zero on the probe batch (dead ReLU, ...)")
VANISHING_GRADIENT = _code("vanishing-gradient", WARNING, "gradient tiny relative to the tensor's scale")
EXPLODING_GRADIENT = _code("exploding-gradient", WARNING, "gradient huge relative to the tensor's scale")
ROUNDING_NOISE_GRADIENT = _code(
    "rounding-noise-gradient",
    INFO,
    "a gradient that is mathematically zero, left with rounding noise (attention's key bias, a bias before a normalisation)",
)
PREPROCESSING_INPUT_GRADIENT = _code(
    "preprocessing-input-gradient",
    INFO,
    "a Keras preprocessing or augmentation layer gives its input no usable gradient (None, zero, wrong): harmless, since it sits before anything that trains",
)
INPUT_UNUSED = _code(
    "input-unused", INFO, "the output depends on a float input's shape only, not its values (a position embedding)"
)

# Finite differences (numeric/)
GRADIENT_MISMATCH = _code("gradient-mismatch", ERROR, "analytic gradient disagrees with a finite-difference estimate")
NON_DIFFERENTIABLE_POINT = _code(
    "non-differentiable-point",
    INFO,
    "finite differences disagree because an input sits on a kink (ReLU, abs, max), not because the gradient is wrong",
)
NUMERIC_SKIPPED = _code(
    "numeric-skipped",
    WARNING,
    "a gradient that could not be compared with finite differences, and why (call() untraceable, the layer raised in a pass, a numpy function on its path)",
)
SURROGATE_GRADIENT = _code(
    "surrogate-gradient",
    INFO,
    "a straight-through estimator: a custom or stop_gradient gradient standing in for a derivative that is zero almost everywhere (round, sign, argmax, a cast)",
)
FLOAT32_FALLBACK = _code(
    "float32-fallback",
    INFO,
    "the float64 comparison was not possible for a tensor; float32 steps and tolerances were used",
)
SECOND_ORDER_NONE = _code(
    "second-order-none",
    ERROR,
    "with --order 2: the gradient of a gradient is None for a tensor whose second derivative is not zero (a gradient penalty never trains it)",
)
SECOND_ORDER_MISMATCH = _code(
    "second-order-mismatch",
    ERROR,
    "with --order 2: a Hessian-vector product (or a gradient penalty's gradient) disagrees with finite differences of the gradient",
)
SECOND_ORDER_APPROXIMATE = _code(
    "second-order-approximate",
    WARNING,
    "with --order 2: a second derivative is off because a library function on the path (tf.nn.moments in LayerNormalization) uses tf.stop_gradient; the first derivative is exact",
)

# The probe itself (layer/probe.py)
STOCHASTIC_OUTPUT = _code(
    "stochastic-output",
    INFO,
    "two calls with the same input give different outputs (dropout, noise); gradient checks use fixed seeds",
)
NO_FLOAT_OUTPUT = _code(
    "no-float-output",
    INFO,
    "call() returns integers or bools only (Discretization): nothing differentiable to check, so only what call() reads and the reload were checked",
)
TRACE_FAILED = _code(
    "trace-failed",
    WARNING,
    "call() cannot be traced by tf.function, so fit() fails unless run_eagerly=True; graph checks were skipped",
)

# The worker (isolation/worker.py)
PROCESSES_LEFT_RUNNING = _code(
    "processes-left-running",
    INFO,
    "the layer's code left processes running when its check ended (a subprocess in the module, build() or call()); they were ended",
)

# Dtype policies (checks/dtype_policy.py)
DTYPE_POLICY_IGNORED = _code(
    "dtype-policy-ignored",
    WARNING,
    "under a --dtype-policy, a float output is not in the policy's compute dtype (a cast to float32 in the layer)",
)
LOW_PRECISION_LOSS = _code(
    "low-precision-loss",
    ERROR,
    "under a --dtype-policy, an output or gradient underflows, overflows or differs far beyond the compute dtype's precision",
)
LOW_PRECISION_WEIGHT = _code(
    "low-precision-weight",
    WARNING,
    "under a mixed_* policy, a weight is not float32, so optimizer steps round away in low precision",
)

# Backends (pipeline.py, layer/backend_variable.py, compare/): one backend's gaps, a module that asks
# for another, and several backends that disagree
UNAVAILABLE_ON_BACKEND = _code(
    "unavailable-on-backend",
    INFO,
    "a check asked for does not run on this Keras backend (the message says which, and why); the others ran",
)
BACKEND_SET_AFTER_IMPORT = _code(
    "backend-set-after-import",
    INFO,
    "the layer's module sets KERAS_BACKEND after Keras was imported, which takes no effect: the report is of the backend Keras runs on",
)
BACKEND_MISMATCH = _code(
    "backend-mismatch",
    ERROR,
    "with several --backend: the same weights and inputs give outputs or gradients that differ beyond float64 rounding",
)
BACKEND_UNSUPPORTED = _code(
    "backend-unsupported",
    ERROR,
    "with several --backend: the layer runs on one backend but raises on another (a framework's own op in a keras.ops layer)",
)

# Saving and reloading (checks/reload.py)
RELOAD_FAILED = _code(
    "reload-failed",
    ERROR,
    "a model holding the layer (a Functional model calling it on its Input) cannot be saved and loaded: "
    "from_config(get_config()) or a .keras save and load_model raised",
)
RELOAD_FAILED_ALONE = _code(
    "reload-failed-alone",
    WARNING,
    "the layer saved on its own cannot be loaded again, while a Functional model holding it saves and loads",
)
RELOAD_MISMATCH = _code(
    "reload-mismatch", ERROR, "the layer reloaded from its config or a .keras file computes another output"
)

# The gate itself (gate/): suppressions and the baseline, about the run's configuration, not the layer
UNUSED_IGNORE = _code(
    "unused-ignore",
    WARNING,
    "a suppression (inline comment, pyproject ignore or --ignore) that matched no finding of this run",
)
IGNORE_WITHOUT_CODE = _code(
    "ignore-without-code",
    WARNING,
    "a `# gradcheck: ignore` comment without [codes]: it ignores nothing; name the codes it is for",
)
UNKNOWN_IGNORE_CODE = _code(
    "unknown-ignore-code", WARNING, "a `# gradcheck: ignore[...]` comment names a code gradcheck does not have"
)
BASELINE_FIXED = _code(
    "baseline-fixed",
    INFO,
    "a --baseline entry that no finding of this run matches any more (fixed): rewrite the baseline to drop it",
)

# Codes about the gate's own configuration: they are never recorded in a baseline, and an inline
# comment cannot ignore them (--ignore and pyproject's ignore can).
GATE_CODES: frozenset[str] = frozenset(
    code.name for code in (UNUSED_IGNORE, IGNORE_WITHOUT_CODE, UNKNOWN_IGNORE_CODE, BASELINE_FIXED)
)
