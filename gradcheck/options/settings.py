"""What a check is asked to do, and the one place where every value of it is validated.

The command line (its option callbacks), pyproject.toml entries and `check()`'s keywords all end in
`make_options`, so a value is accepted or refused the same way wherever it comes from. Nothing here
imports TensorFlow or numpy: a bad value is refused at once, before any work starts, with one
paragraph naming the option, the value and what it accepts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import GradcheckError
from .backends import parse_backends
from .ignores import IgnoreRule, parse_ignores
from .inputs import (
    DTYPES,
    FLOAT_DTYPES,
    INT_BOUNDS,
    MAX_FLOAT16,
    MAX_FLOAT_INPUT,
    InputSpec,
    build_inputs,
    check_range,
    check_size,
    parse_dtype,
    parse_range,
    parse_shape,
    per_input,
    shape_of,
)
from .values import (
    check_fail_on,
    check_target,
    flag,
    init_of,
    integer,
    parse_init,
    positive_number,
    quote,
)

# The input parsing (inputs.py) and check_target, check_fail_on, parse_init and init_of (values.py)
# are part of this interface: callers import them from here.
__all__ = [
    "DTYPES",
    "FLOAT_DTYPES",
    "INT_BOUNDS",
    "MAX_FLOAT16",
    "MAX_FLOAT_INPUT",
    "InputSpec",
    "Options",
    "build_inputs",
    "check_fail_on",
    "check_range",
    "check_setting",
    "check_size",
    "check_target",
    "init_of",
    "make_options",
    "parse_dtype",
    "parse_init",
    "parse_range",
    "parse_shape",
    "shape_of",
]


DTYPE_POLICIES = ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16")
DEFAULT_MAX_ELEMENTS = 50_000_000  # ~200 MB per float32 input: far beyond a unit check, short of a swap storm
DEFAULT_TIMEOUT = 300.0

# Gradient scale thresholds (see gradients.py for the measure): an update-to-weight ratio below
# 1e-7 cannot move a float32 weight at any usual learning rate (its ulp is ~1.2e-7 of it); above
# 1e4, a learning rate of 1e-3 moves a weight ten times its own size in a single step.
DEFAULT_VANISHING = 1e-7
DEFAULT_EXPLODING = 1e4


@dataclass(frozen=True)
class Options:
    """Everything after the target. Defaults are the documented ones."""

    inputs: tuple[InputSpec, ...] = ()
    init: dict = field(default_factory=dict)
    seed: int = 0
    training: Optional[bool] = None  # None: both modes when call() accepts `training`
    vanishing_threshold: float = DEFAULT_VANISHING
    exploding_threshold: float = DEFAULT_EXPLODING
    numeric: bool = True
    exhaustive: bool = False
    rtol: Optional[float] = None
    atol: Optional[float] = None
    eps: Optional[float] = None
    max_elements: int = DEFAULT_MAX_ELEMENTS
    timeout: Optional[float] = DEFAULT_TIMEOUT
    dtype_policies: tuple[str, ...] = ()  # Keras dtype policies to run the layer under too (dtype_policy.py)
    reload: bool = True  # the save/reload round trip (reload.py)
    order: int = 1  # 2: also check second derivatives (second_order.py)
    # Findings the gate marks as ignored after the check (gate/); the worker does not read it.
    ignore: tuple[IgnoreRule, ...] = ()
    # Keras backends to check on (options/backends.py); empty: KERAS_BACKEND's, else TensorFlow. A
    # job the command hands a worker holds exactly one (options.backends.per_backend).
    backends: tuple[str, ...] = ()
    # Set by the command when a target is checked on several backends: the folder this backend's
    # side of the comparison is written to (compare/side.py). Not an option of check().
    compare_folder: Optional[str] = None


# Options field -> its validator. A field missing here is passed through as given.
_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "seed": lambda v: integer("seed", v),
    "max_elements": lambda v: integer("max_elements", v),
    "training": lambda v: flag("training", v, allow_none=True),
    "numeric": lambda v: flag("numeric", v),
    "exhaustive": lambda v: flag("exhaustive", v),
    "vanishing_threshold": lambda v: positive_number("vanishing_threshold", v, allow_none=False),
    "exploding_threshold": lambda v: positive_number("exploding_threshold", v, allow_none=False),
    "rtol": lambda v: positive_number("rtol", v),
    "atol": lambda v: positive_number("atol", v),
    "eps": lambda v: positive_number("eps", v),
    "timeout": lambda v: positive_number("timeout", v),  # None: no time limit (the API only)
    "reload": lambda v: flag("reload", v),
    "order": lambda v: integer("order", v),
    "dtype_policies": lambda v: dtype_policies(v),
    "ignore": lambda v: parse_ignores(v, "check(ignore=...)"),
    "backends": lambda v: parse_backends(v),
}


def dtype_policies(value) -> tuple[str, ...]:
    """One policy name or a list of them (check(dtype_policy=...), pyproject, --dtype-policy)."""
    names = (value,) if isinstance(value, str) else tuple(value or ())
    for name in names:
        if name not in DTYPE_POLICIES:
            raise GradcheckError(
                f"--dtype-policy {quote(name)} is not a policy gradcheck can run. Use one of: {', '.join(DTYPE_POLICIES)}."
            )
    return names


def check_setting(name: str, value):
    """One field of Options validated alone (the CLI's callback for its option calls this)."""
    return _SETTINGS[name](value) if name in _SETTINGS else value


def make_options(*, input_shape=None, input_dtype=(), input_range=(), init=None, **settings) -> Options:
    """Options from the command line, a pyproject.toml entry or check()'s keywords, all validated.

    Raises:
        GradcheckError (a ValueError): the first bad value, named with its option, the value and
            what the option accepts; an unknown keyword, named with the valid ones.
    """
    if "dtype_policy" in settings:  # check(dtype_policy=[...]) reads as the --dtype-policy option does
        settings["dtype_policies"] = settings.pop("dtype_policy")
    if "backend" in settings:  # check(backend="jax") reads as the --backend option does
        settings["backends"] = settings.pop("backend")
    allowed = [f.name for f in dataclasses.fields(Options) if f.name not in ("inputs", "init", "compare_folder")]
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        note = " (fail_on is a keyword of gradcheck.testing.assert_trainable)" if "fail_on" in unknown else ""
        raise GradcheckError(
            f"check() got the unknown keyword {', '.join(map(repr, unknown))}{note}. Its keywords are: "
            f"input_shape, input_dtype, input_range, init, {', '.join(allowed)}."
        )
    values = {name: check_setting(name, value) for name, value in settings.items()}
    vanishing = values.get("vanishing_threshold", DEFAULT_VANISHING)
    exploding = values.get("exploding_threshold", DEFAULT_EXPLODING)
    if not vanishing < exploding:
        raise GradcheckError(
            f"--vanishing-threshold {vanishing:g} is not below --exploding-threshold {exploding:g}, so every "
            "gradient would be both. Give a vanishing threshold below the exploding one (defaults 1e-7 and 1e4)."
        )
    inputs = build_inputs(
        per_input(input_shape, "--input-shape"),
        per_input(input_dtype, "--input-dtype"),
        per_input(input_range, "--input-range"),
    )
    options = Options(inputs=inputs, init=init_of(init), **values)
    check_size(options.inputs, options.max_elements)
    return options
