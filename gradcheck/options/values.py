"""Checks of single option values: numbers, integers, flags, constructor keywords and the TARGET string.

Part of the one validation layer (options.make_options uses them for every source of a value: the
command line's callbacks, pyproject.toml entries, check()'s keywords). Free of TensorFlow and numpy,
so a bad value is refused at once. Each message names the option, quotes the value and states the
accepted range.
"""

from __future__ import annotations

import ast
import math
import numbers
import os
import re

from ..errors import GradcheckError

# Accepted ranges (README "Usage" lists them).
MAX_SEED = 2**32 - 1  # keras.utils.set_random_seed refuses larger seeds
MAX_TIMEOUT = 1e7  # ~4 months; setitimer overflows near 1e12 s, and no check should need more


def quote(value) -> str:
    """A value as a message quotes it: a number as the number, anything else as its repr, which
    escapes newlines and control characters so the message stays one line."""
    try:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            if abs(int(value)).bit_length() > 64:  # str() refuses ints of over 4300 digits
                return f"a {abs(int(value)).bit_length()}-bit integer"
            return str(int(value))
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return f"{float(value):g}"
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails: name its type instead
        return f"a {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def as_number(text_or_value):
    """A real number from a command-line string or an API value; None when it is not one."""
    if isinstance(text_or_value, str):
        try:
            return float(text_or_value.strip())
        except ValueError:
            return None
    if isinstance(text_or_value, bool) or not isinstance(text_or_value, numbers.Real):
        return None
    try:
        return float(text_or_value)
    except OverflowError:  # an integer beyond float's range: out of every range here
        return math.inf


# field -> (option, largest accepted value or None, what the value is, an example)
_POSITIVE = {
    "eps": ("--eps", 1.0, "the finite-difference step (a fraction of each tensor's scale)", "1e-3"),
    "rtol": ("--rtol", None, "the relative tolerance of the finite-difference check", "1e-2"),
    "atol": ("--atol", None, "the absolute tolerance of the finite-difference check", "1e-2"),
    "vanishing_threshold": ("--vanishing-threshold", None, "the vanishing-gradient threshold", "1e-7"),
    "exploding_threshold": ("--exploding-threshold", None, "the exploding-gradient threshold", "1e4"),
    "timeout": ("--timeout", MAX_TIMEOUT, "the time limit in seconds", "300"),
}


def positive_number(name: str, value, *, allow_none: bool = True) -> float | None:
    """A finite number above 0 (and at most the option's bound) for the setting `name`."""
    if value is None and allow_none:
        return None
    option, upper, what, example = _POSITIVE[name]
    number = as_number(value)
    accepted = "a finite number above 0" + (f" and at most {upper:,.0f}" if upper is not None else "")
    if number is None or not math.isfinite(number) or number <= 0 or (upper is not None and number > upper):
        shown = quote(value if number is None else number)
        problem = "is not a number" if number is None else "is out of range"
        raise GradcheckError(f"{option} {shown} {problem}: {what} must be {accepted}. Give e.g. {option} {example}.")
    return number


# field -> (option, smallest, largest or None, an example)
_INTEGERS = {
    "seed": ("--seed", 0, MAX_SEED, "0"),
    "max_elements": ("--max-elements", 1, None, "1000000"),
    "order": ("--order", 1, 2, "2"),  # 1: gradients; 2: also second derivatives
}


def integer(name: str, value) -> int:
    """An integer within the setting's range; numpy integers are accepted, bools and floats are not."""
    option, low, high, example = _INTEGERS[name]
    accepted = f"an integer from {low:,} to {high:,}" if high is not None else f"an integer of at least {low}"
    number = None
    if isinstance(value, str):
        digits = value.strip().replace("_", "")
        if re.fullmatch(r"[+-]?\d{1,40}", digits):  # int() refuses over 4300 digits; 40 is beyond any range
            number = int(digits)
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    if number is None:
        raise GradcheckError(
            f"{option} {quote(value)} is not an integer: it must be {accepted}. Give e.g. {option} {example}."
        )
    if number < low or (high is not None and number > high):
        raise GradcheckError(
            f"{option} {quote(number)} is out of range: it must be {accepted}. Give e.g. {option} {example}."
        )
    return number


def flag(name: str, value, *, allow_none: bool = False) -> bool | None:
    """True or False (a numpy bool too); None where the setting allows it (training)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or (type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool")):
        return bool(value)
    if allow_none:
        raise GradcheckError(
            f"{name}={quote(value)} is not True, False or None. None (the default) checks both modes "
            "when call() takes `training`; True or False checks that mode only."
        )
    raise GradcheckError(f"{name}={quote(value)} is not True or False.")


_FAIL_ON = ("error", "warning", "info")


def check_fail_on(value) -> str:
    """assert_trainable's fail_on: the lowest severity that fails the assertion."""
    if not isinstance(value, str) or value not in _FAIL_ON:
        raise GradcheckError(
            f"fail_on={quote(value)} is not a severity. Give fail_on='error' (the default) or 'warning' "
            "(or 'info'): the lowest finding severity that fails the assertion."
        )
    return value


def check_target(target, *, file_must_exist: bool = True) -> None:
    """Refuse a TARGET string that cannot name a layer, before TensorFlow is imported.

    Checks its MODULE:NAME syntax and, for a file path, that it is a .py file that exists (a module
    path can only be checked by importing it). The messages match loading.py's, which raises them
    again for targets that reach it another way.
    """
    if not isinstance(target, str):
        return  # a layer, class or factory from the Python API
    module_ref, sep, name = target.rpartition(":")
    if not sep or not module_ref or not name or not all(part.isidentifier() for part in name.split(".")):
        raise GradcheckError(
            f"TARGET {target!r} is not MODULE:NAME. Give a module path or a file path, a colon, and "
            "the layer's name, e.g. mypackage.layers:MyLayer or path/to/layers.py:MyLayer."
        )
    if not (module_ref.endswith(".py") or os.sep in module_ref or "/" in module_ref):
        if not all(part.isidentifier() for part in module_ref.split(".")):
            raise GradcheckError(
                f"TARGET {target!r}: {module_ref!r} is neither a dotted module name nor a path to a .py file. "
                "Give e.g. mypackage.layers:MyLayer or path/to/layers.py:MyLayer."
            )
        return
    if not module_ref.endswith(".py"):
        raise GradcheckError(
            f"{module_ref!r} is not a Python file. Give a .py file, e.g. {module_ref}.py:NAME, or a module path."
        )
    if file_must_exist and not os.path.isfile(module_ref):
        raise GradcheckError(
            f"There is no file {module_ref!r} (looked from {os.getcwd()}). Check the path, which is relative "
            "to the folder you run gradcheck in."
        )


def parse_init(items) -> dict:
    """`units=10` -> {"units": 10}. The value is a Python literal if it reads as one, else a string.

    A keyword given twice is refused: silently keeping the last would check another layer than
    the one the user described.
    """
    if isinstance(items, str):
        items = [items]  # one "K=V" string, never its characters
    keywords: dict = {}
    for item in items:
        if not isinstance(item, str):
            raise GradcheckError(
                f"init entry {quote(item)} is not a 'KEY=VALUE' string. Give init as a dict "
                "({'units': 10}), a 'units=10' string, or a list of such strings."
            )
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise GradcheckError(
                f"--init {item!r} is not KEY=VALUE. Give one constructor keyword per --init, e.g. "
                "--init units=10 --init activation='relu'."
            )
        if key in keywords:
            raise GradcheckError(
                f"--init {key} is given twice ({quote(keywords[key])} and {value.strip()!r}). Give each "
                "constructor keyword once."
            )
        try:
            keywords[key] = ast.literal_eval(value.strip())
        except Exception:  # noqa: BLE001 - not a literal (or one too deep or large to read): the string it looks like
            keywords[key] = value
    return keywords


def init_of(value) -> dict:
    """`init` as the API takes it: None, a dict, a "K=V" string, or a list of such strings."""
    if value is None:
        return {}
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str) or not k.isidentifier()]
        if bad:
            raise GradcheckError(
                f"init has the key {quote(bad[0])}, which is not a keyword name. Give constructor keywords "
                "as a dict of names to values, e.g. init={'units': 10}."
            )
        return dict(value)
    if isinstance(value, (str, list, tuple)):
        return parse_init(value)
    raise GradcheckError(
        f"init={quote(value)} is not constructor keywords. Give a dict ({{'units': 10}}), a 'units=10' "
        "string, or a list of such strings."
    )
