"""What a check is asked to do: inputs, constructor keywords, seeds and thresholds.

Parsing of the command-line spellings (`100,5`, `-1,1`, `units=10`) lives here, free of TensorFlow,
so the CLI and the pyproject.toml reader share it and argument errors stay instant.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Optional

from .errors import GradcheckError

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)
DEFAULT_FLOAT_RANGE = (-1.0, 1.0)
DEFAULT_INT_RANGE = (0, 10)
DEFAULT_MAX_ELEMENTS = 50_000_000  # ~200 MB per float32 input: far beyond a unit check, short of a swap storm
DEFAULT_TIMEOUT = 300.0

# Gradient scale thresholds (see gradients.py for the measure): an update-to-weight ratio below
# 1e-7 cannot move a float32 weight at any usual learning rate (its ulp is ~1.2e-7 of it); above
# 1e4, a learning rate of 1e-3 moves a weight ten times its own size in a single step.
DEFAULT_VANISHING = 1e-7
DEFAULT_EXPLODING = 1e4


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"
    value_range: Optional[tuple[float, float]] = None  # None: the dtype's default

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def resolved_range(self) -> tuple[float, float]:
        if self.value_range is not None:
            return self.value_range
        return DEFAULT_FLOAT_RANGE if self.is_float else DEFAULT_INT_RANGE

    @property
    def elements(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


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
    order: int = 1  # 2: also check second derivatives (second_order.py)
    progress: bool = False  # a progress bar on stderr for slow steps (the CLI sets it on a terminal)


def parse_shape(text: str) -> tuple[int, ...]:
    """`100,5` -> (100, 5). Every entry a positive integer; the first is the batch size."""
    text = text.strip().strip("()[]")
    if not text:
        raise GradcheckError(
            "--input-shape is empty. Give the full shape of one input, batch dimension first, "
            "as integers separated by commas, e.g. --input-shape 100,5."
        )
    shape = []
    for part in text.split(","):
        part = part.strip()
        try:
            size = int(part)
        except ValueError:
            raise GradcheckError(
                f"--input-shape {text!r} has {part!r}, which is not an integer. Give the full shape "
                "as positive integers separated by commas, batch dimension first, e.g. 100,5."
            ) from None
        if size <= 0:
            raise GradcheckError(
                f"--input-shape {text!r} has {size}; every dimension must be at least 1. "
                "Give the full shape, batch dimension first, e.g. 100,5."
            )
        shape.append(size)
    return tuple(shape)


def parse_dtype(text: str) -> str:
    name = text.strip().lower()
    if name not in DTYPES:
        raise GradcheckError(
            f"--input-dtype {text!r} is not a dtype gradcheck can sample. Use one of: {', '.join(DTYPES)}."
        )
    return name


def parse_range(text: str) -> tuple[float, float]:
    """`-1,1` -> (-1.0, 1.0), LOW < HIGH."""
    parts = [p.strip() for p in text.strip().strip("()[]").split(",")]
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise GradcheckError(
            f"--input-range {text!r} is not two numbers. Give LOW,HIGH, e.g. --input-range -1,1 "
            "(for an integer input the values are drawn from [LOW, HIGH))."
        ) from None
    if not low < high:
        raise GradcheckError(f"--input-range {text!r}: LOW must be below HIGH, e.g. --input-range -1,1.")
    return (low, high)


def parse_init(items) -> dict:
    """`units=10` -> {"units": 10}. The value is a Python literal if it reads as one, else a string."""
    keywords = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise GradcheckError(
                f"--init {item!r} is not KEY=VALUE. Give one constructor keyword per --init, e.g. "
                "--init units=10 --init activation='relu'."
            )
        try:
            keywords[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            keywords[key] = value  # a bare word such as relu: taken as the string it looks like
    return keywords


def build_inputs(shapes, dtypes=(), ranges=()) -> tuple[InputSpec, ...]:
    """Pair the per-input lists; dtypes and ranges are optional but, when given, one per input."""
    shapes = [parse_shape(s) if isinstance(s, str) else tuple(s) for s in shapes]
    if not shapes:
        raise GradcheckError(
            "No input shape given. Tell gradcheck what to feed the layer with --input-shape, batch "
            "dimension first, e.g. --input-shape 100,5 (repeat it once per input)."
        )
    for option, values in (("--input-dtype", dtypes), ("--input-range", ranges)):
        if values and len(values) != len(shapes):
            raise GradcheckError(
                f"{len(values)} {option} value(s) for {len(shapes)} input(s). Give {option} once per "
                "--input-shape, in the same order, or leave it out for the default."
            )
    dtypes = [parse_dtype(d) for d in dtypes] or ["float32"] * len(shapes)
    ranges = [parse_range(r) if isinstance(r, str) else tuple(r) for r in ranges] or [None] * len(shapes)
    return tuple(InputSpec(s, d, r) for s, d, r in zip(shapes, dtypes, ranges))


def check_size(inputs, max_elements: int) -> None:
    """Refuse inputs too large to sample, before anything is allocated."""
    for index, spec in enumerate(inputs):
        if spec.elements > max_elements:
            megabytes = spec.elements * 8 / 1e6  # float64 twin of the input, the largest copy made
            raise GradcheckError(
                f"Input {index} of shape {','.join(map(str, spec.shape))} has {spec.elements:,} numbers, "
                f"above the limit of {max_elements:,}; sampling and checking it would need about "
                f"{megabytes:,.0f} MB per copy. Use a smaller batch or shape (a gradient check needs "
                "only a few examples), or raise the limit with --max-elements."
            )

