"""What the layer is fed: an input's shape, dtype and value range, parsed and checked.

`--input-shape`, `--input-dtype` and `--input-range` (one per input of call()), pyproject entries and
check()'s `input_shape`/`input_dtype`/`input_range` become InputSpecs here. Like options.py, nothing
here imports TensorFlow or numpy, and every refusal is one paragraph naming the value.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Optional

from ..errors import GradcheckError
from .values import as_number, quote

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)
DEFAULT_FLOAT_RANGE = (-1.0, 1.0)
DEFAULT_INT_RANGE = (0, 10)

# Accepted input ranges (README "Usage" lists them; the other options' are in values.py).
# Float inputs stay within ±1e18: the checks square values (RMS, the probe loss), and 1e18² still
# fits float32 (max 3.4e38), so a sane layer gives no false nonfinite-gradient. float16 inputs must
# fit float16 itself.
MAX_FLOAT_INPUT = 1e18
MAX_FLOAT16 = 65504.0
# An integer input is drawn from [LOW, HIGH): HIGH may be one past the dtype's largest value.
INT_BOUNDS = {
    "int8": (-(2**7), 2**7),
    "int16": (-(2**15), 2**15),
    "int32": (-(2**31), 2**31),
    "int64": (-(2**63), 2**63),
    "uint8": (0, 2**8),
}


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


def parse_shape(text: str) -> tuple[int, ...]:
    """`100,5` -> (100, 5). Every entry a positive integer; the first is the batch size."""
    text = text.strip().strip("()[]")
    if not text:
        raise GradcheckError(
            "--input-shape is empty. Give the full shape of one input, batch dimension first, "
            "as integers separated by commas, e.g. --input-shape 100,5."
        )
    if "," not in text and re.fullmatch(r"\d+(\s*[xX×*;:\s]\s*\d+)+", text):
        meant = ",".join(re.findall(r"\d+", text))
        raise GradcheckError(
            f"--input-shape {text!r} is not integers separated by commas; did you mean --input-shape {meant}?"
        )
    shape = []
    for part in text.split(","):
        part = part.strip()
        if not re.fullmatch(r"[+-]?\d{1,40}", part):  # longer is no shape, and int() refuses 4300 digits
            raise GradcheckError(
                f"--input-shape {text!r} has {part!r}, which is not an integer. Give the full shape "
                "as positive integers separated by commas, batch dimension first, e.g. 100,5."
            )
        shape.append(int(part))
    return shape_of(tuple(shape), text)


def shape_of(value, text: str | None = None) -> tuple[int, ...]:
    """One input's shape from a string or a sequence of integers (numpy integers too)."""
    if isinstance(value, str):
        return parse_shape(value)
    dims = _as_list(value)
    shown = repr(text) if text is not None else quote(value)
    if dims is None or not dims:
        raise GradcheckError(
            f"--input-shape {shown} is not a shape. Give the full shape of one input, batch dimension first, "
            "as a tuple of integers such as (100, 5) or a string such as '100,5'."
        )
    shape: list[int] = []
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise GradcheckError(
                f"--input-shape {shown} has {quote(dim)}, a {type(dim).__name__}; every dimension must be "
                "an integer of at least 1 (Python or numpy integers), batch dimension first, e.g. (100, 5)."
            )
        size = int(dim)
        if size <= 0:
            raise GradcheckError(
                f"--input-shape {shown} has {quote(size)}; every dimension must be at least 1. "
                "Give the full shape, batch dimension first, e.g. 100,5."
            )
        if size >= 2**63:
            raise GradcheckError(
                f"--input-shape {shown} has {quote(size)}, beyond what any tensor dimension can hold (2**63 - 1). "
                "Give the full shape, batch dimension first, e.g. 100,5."
            )
        shape.append(size)
    return tuple(shape)


def parse_dtype(text) -> str:
    name = text if isinstance(text, str) else getattr(text, "name", None)  # np.dtype, tf.DType
    if not isinstance(name, str) or name.strip().lower() not in DTYPES:
        raise GradcheckError(
            f"--input-dtype {quote(text)} is not a dtype gradcheck can sample. Use one of: {', '.join(DTYPES)}."
        )
    return name.strip().lower()


def parse_range(text) -> tuple[float, float]:
    """`-1,1` or (-1, 1) -> (-1.0, 1.0): two finite numbers, LOW < HIGH."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.strip().strip("()[]").split(",")]
    else:
        parts = _as_list(text) or []
    numbers_ = [as_number(p) for p in parts]
    if len(numbers_) != 2 or None in numbers_:
        raise GradcheckError(
            f"--input-range {quote(text)} is not two numbers. Give LOW,HIGH, e.g. --input-range -1,1 "
            "(for an integer input the values are drawn from [LOW, HIGH))."
        )
    low, high = numbers_
    if not (math.isfinite(low) and math.isfinite(high)):
        raise GradcheckError(
            f"--input-range {quote(text)} is not finite: LOW and HIGH must be finite numbers, "
            "within ±1e18, e.g. --input-range -1,1."
        )
    if not low < high:
        raise GradcheckError(f"--input-range {quote(text)}: LOW must be below HIGH, e.g. --input-range -1,1.")
    return (low, high)


def check_range(value_range: tuple[float, float], dtype: str) -> tuple[float, float]:
    """Refuse a range the input's dtype cannot hold (or whose squares overflow float32)."""
    low, high = value_range
    shown = f"{low:g},{high:g}"
    if dtype == "bool":
        raise GradcheckError(
            f"--input-range {shown} is given for a bool input, which is drawn as True/False; leave it out."
        )
    if dtype in INT_BOUNDS:
        lowest, past = INT_BOUNDS[dtype]
        if not (low.is_integer() and high.is_integer()) or low < lowest or high > past:
            raise GradcheckError(
                f"--input-range {shown} does not fit the {dtype} input: LOW and HIGH must be integers "
                f"with {lowest} <= LOW < HIGH <= {past} (values are drawn from [LOW, HIGH))."
            )
        return (low, high)
    if max(abs(low), abs(high)) > (MAX_FLOAT16 if dtype == "float16" else MAX_FLOAT_INPUT):
        raise GradcheckError(
            f"--input-range {shown} is too large for the {dtype} input: LOW and HIGH must be within "
            f"±{'65504' if dtype == 'float16' else '1e18'}"
            + (
                " (the largest float16)."
                if dtype == "float16"
                else " (the gradient checks square values, and larger ones overflow float32)."
            )
        )
    return (low, high)


def _as_list(value) -> list | None:
    """A list of a tuple, list, numpy array or tf.TensorShape; None for anything else."""
    if isinstance(value, (str, bytes, dict)):
        return None
    for method in ("as_list", "tolist"):  # tf.TensorShape, numpy arrays (as Python numbers)
        if hasattr(value, method):
            try:
                value = getattr(value, method)()
            except Exception:  # noqa: BLE001 - a shape-like object that cannot list itself
                return None
            break
    return list(value) if isinstance(value, (list, tuple)) else None


def _is_single(items: list) -> bool:
    """True when a list holds plain values (one shape or one range), not one entry per input."""
    return all(not isinstance(v, str) and _as_list(v) is None for v in items)


_PER_INPUT_EXAMPLE = {
    "--input-shape": "input_shape=(100, 5), or [(100, 5), (100, 3)] for two inputs",
    "--input-dtype": "input_dtype='int32', or ['float32', 'int32'] for two inputs",
    "--input-range": "input_range=(-1, 1), or [(-1, 1), (0, 10)] for two inputs",
}


def per_input(value, option: str) -> list:
    """An option that takes one value per input, as the API accepts it: one value or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    items = _as_list(value)
    if items is None:
        if option == "--input-dtype" and hasattr(value, "name"):
            return [value]
        raise GradcheckError(
            f"{option[2:].replace('-', '_')}={quote(value)} is neither one value nor a list of values, one per "
            f"input. Give e.g. {_PER_INPUT_EXAMPLE[option]}."
        )
    if option != "--input-dtype" and items and _is_single(items):
        return [tuple(items)]  # one shape (100, 5) or one range (-1, 1)
    return items


def build_inputs(shapes, dtypes=(), ranges=()) -> tuple[InputSpec, ...]:
    """Pair the per-input lists; dtypes and ranges are optional but, when given, one per input."""
    shapes = [shape_of(s) for s in shapes]
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
    ranges = [check_range(parse_range(r), d) for r, d in zip(ranges, dtypes)] or [None] * len(shapes)
    return tuple(InputSpec(s, d, r) for s, d, r in zip(shapes, dtypes, ranges))


def _size_text(numbers_: int, bytes_each: int = 8) -> str:
    """About how much memory a copy takes; below 1 MB in KB, so a small limit does not read '0 MB'."""
    size = numbers_ * bytes_each
    if size >= 10**30:
        return f"{_count(size // 10**6)} MB"
    if size >= 1e6:
        return f"{size / 1e6:,.0f} MB"
    return f"{size / 1e3:,.0f} KB" if size >= 1e3 else f"{size} bytes"


def _count(number: int) -> str:
    return f"{number:,}" if number < 10**30 else f"more than 10^{len(str(number)[:4300]) - 1}"


def check_size(inputs, max_elements: int) -> None:
    """Refuse inputs too large to sample, before anything is allocated."""
    for index, spec in enumerate(inputs):
        if spec.elements > max_elements:
            shape = ",".join(map(str, spec.shape))
            shape = shape if len(shape) <= 80 else f"{shape[:77]}..."
            raise GradcheckError(
                f"Input {index} of shape {shape} has {_count(spec.elements)} numbers, "
                f"above the limit of {_count(max_elements)}; sampling and checking it would need about "
                f"{_size_text(spec.elements)} per copy (float64, the largest copy made). Use a smaller batch "
                "or shape (a gradient check needs only a few examples), or raise the limit with --max-elements."
            )
