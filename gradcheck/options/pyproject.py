"""Targets listed in ./pyproject.toml under `[[tool.gradcheck.targets]]`, for a CI run over many layers.

Each entry becomes the Options the command line would have built, so one bad entry fails alone:
it is returned as a GradcheckError in place of its Options, reported as a target that could not
run (exit 2), and the other entries are still checked. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import GradcheckError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 has no tomllib; tomli is the same parser (pyproject.toml depends on it there)
    import tomli as tomllib

PYPROJECT = "./pyproject.toml"

EXAMPLE = """[[tool.gradcheck.targets]]
target = "mypackage/layers.py:MyLayer"
input-shape = ["16,5"]
init = {units = 4}"""

# key in pyproject.toml -> (keyword of make_options, what the value must be, a check of its type).
# The type is checked here, to name the key; make_options then checks the value itself (ranges,
# shapes, dtypes) as it checks the command line's, so both refuse the same values.
_KEYS = {
    "target": ("target", 'a string such as "layers.py:MyLayer"', lambda v: isinstance(v, str)),
    "input-shape": (
        "input_shape",
        'a string such as "16,5", or a list of them, one per input',
        lambda v: _strings(v) and v,
    ),
    "input-dtype": (
        "input_dtype",
        'a dtype name, or a list of them, one per input, e.g. ["float32"]',
        lambda v: _strings(v),
    ),
    "input-range": (
        "input_range",
        'a "LOW,HIGH" string, or a list of them, one per input, e.g. ["-1,1"]',
        lambda v: _strings(v),
    ),
    "init": ("init", "a table of constructor keywords, e.g. {units = 4}", lambda v: isinstance(v, dict)),
    "seed": ("seed", "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "training": ("training", "true or false", lambda v: isinstance(v, bool)),
    "numeric": ("numeric", "true or false", lambda v: isinstance(v, bool)),
    "exhaustive": ("exhaustive", "true or false", lambda v: isinstance(v, bool)),
    "order": ("order", "1 or 2", lambda v: v in (1, 2) and not isinstance(v, bool)),
    "max-elements": ("max_elements", "a positive integer", lambda v: _positive_number(v) and isinstance(v, int)),
    "timeout": ("timeout", "a number of seconds above 0", lambda v: _positive_number(v)),
    "dtype-policy": ("dtype_policies", 'a list of policy names, e.g. ["mixed_float16"]', lambda v: _policies(v)),
    "reload": ("reload", "true or false", lambda v: isinstance(v, bool)),
    "backends": (
        "backends",
        'a list of backend names, e.g. ["tensorflow", "jax"] (or "all")',
        lambda v: _strings(v),
    ),
    "ignore": (
        "ignore",
        'a list of rules, each "CODE", "CODE:TENSOR" or a table {code = "...", tensor = "...", reason = "..."}',
        lambda v: isinstance(v, list),
    ),
}


def _policies(value) -> bool:
    from .settings import DTYPE_POLICIES

    return _strings(value) and all(v in DTYPE_POLICIES for v in value)


def _strings(value) -> bool:
    """A string (one input, as on the command line) or a list of strings (one per input)."""
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def targets_from_pyproject(settings: dict, path: str = PYPROJECT) -> list:
    """[(target, Options or GradcheckError)] for every entry of `[[tool.gradcheck.targets]]`.

    Args:
        settings: the command line's options for every target (seed, thresholds, timeout...);
            a key set in an entry overrides them for that entry.
        path: the pyproject.toml to read (default: the one in the current folder). File targets
            are relative to its folder.

    Raises:
        GradcheckError: no such file, it is not valid TOML, or it lists no targets. A problem
            inside one entry is returned in that entry's place instead.
    """
    entries = _read_entries(path)
    folder = os.path.dirname(os.path.abspath(path))
    jobs = []
    for number, entry in enumerate(entries, start=1):
        label = (
            entry.get("target")
            if isinstance(entry, dict) and isinstance(entry.get("target"), str)
            else f"targets[{number}]"
        )
        try:
            jobs.append(_job(entry, number, path, folder, settings))
        except GradcheckError as error:
            jobs.append((label, error))
    return jobs


def _read_entries(path: str) -> list:
    advice = (
        "Name the layer to check (gradcheck layers.py:MyLayer --input-shape 16,5), or list the layers "
        f"in pyproject.toml:\n{EXAMPLE}"
    )
    missing = f"No TARGET given and {path} lists no [[tool.gradcheck.targets]]. {advice}"
    if not os.path.isfile(path):
        raise GradcheckError(f"No TARGET given and there is no {path} in {os.getcwd()}. {advice}")
    try:
        with open(path, "rb") as stream:
            document = tomllib.load(stream)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise GradcheckError(f"{path} is not valid TOML ({error}). Fix the file, then run gradcheck again.") from None
    except OSError as error:
        raise GradcheckError(f"{path} cannot be read ({error.strerror}). Check its permissions.") from None
    # Walk tool -> gradcheck -> targets; a missing level means "no targets", a level of the wrong
    # kind (tool = "x", gradcheck = 3, targets = "x") is named, rather than failing on it later.
    value: Any = document
    for depth, name in enumerate(("tool", "tool.gradcheck", "tool.gradcheck.targets")):
        value = value.get(name.rpartition(".")[2])
        if value is None:
            raise GradcheckError(missing)
        expected = dict if depth < 2 else list
        if not isinstance(value, expected) or (expected is list and not value):
            raise GradcheckError(
                f"{path}: {name} is {_kind(value)}, where gradcheck reads "
                f"{'a table' if expected is dict else 'one [[tool.gradcheck.targets]] table per layer'}. "
                f"Write each layer as:\n{EXAMPLE}"
            )
    return value


def _kind(value) -> str:
    """What a TOML value is, in a message's words: 'a string ("x")', 'an integer (3)', 'an empty array'."""
    kinds = (
        (bool, "a boolean"),
        (str, "a string"),
        (int, "an integer"),
        (float, "a number"),
        (list, "an array"),
        (dict, "a table"),
    )
    kind = next((name for cls, name in kinds if isinstance(value, cls)), f"a {type(value).__name__}")
    if isinstance(value, (list, dict)) and not value:
        return f"an empty {kind.split()[-1]}"
    shown = repr(value)
    return f"{kind} ({shown if len(shown) <= 40 else shown[:37] + '...'})"


def _job(entry, number: int, path: str, folder: str, settings: dict):
    from .settings import check_target, make_options

    where = f"{path}, [[tool.gradcheck.targets]] entry {number}"
    if not isinstance(entry, dict):
        raise GradcheckError(f"{where} is {_kind(entry)}, not a table. Write each layer as:\n{EXAMPLE}")
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise GradcheckError(
            f"{where} has the unknown key {', '.join(repr(k) for k in unknown)}. "
            f"The keys are: {', '.join(_KEYS)}. Check the spelling (keys use dashes, e.g. input-shape)."
        )
    for key in ("target", "input-shape"):
        if key not in entry:
            raise GradcheckError(f"{where} has no {key!r}; every entry needs target and input-shape:\n{EXAMPLE}")
    keywords = dict(settings)
    for key, value in entry.items():
        name, expected, valid = _KEYS[key]
        if not valid(value):
            shown = repr(value)
            raise GradcheckError(
                f"{where}: {key} = {shown if len(shown) <= 60 else shown[:57] + '...'} is not {expected}."
            )
        keywords[name] = value
    if "ignore" in entry:  # the entry's rules come on top of the command line's --ignore
        from .ignores import parse_ignores

        try:
            keywords["ignore"] = (*settings.get("ignore", ()), *parse_ignores(entry["ignore"], "pyproject.toml"))
        except GradcheckError as error:
            raise GradcheckError(f"{where}: {error}") from None
    target = _relative_to(folder, keywords.pop("target"))
    try:
        check_target(target, file_must_exist=False)  # its syntax now; a missing file fails when it is loaded
        return target, make_options(**keywords)
    except GradcheckError as error:
        raise GradcheckError(f"{where}: {error}") from None


def _relative_to(folder: str, target: str) -> str:
    """A file target is relative to the pyproject's folder; shown relative to the working folder."""
    module_ref, sep, name = target.rpartition(":")
    if not sep or not (module_ref.endswith(".py") or "/" in module_ref or os.sep in module_ref):
        return target  # a module path, found on the import path as on the command line
    if os.path.isabs(module_ref):
        return target
    path = os.path.normpath(os.path.join(folder, module_ref))
    cwd = os.getcwd() + os.sep
    shown = path[len(cwd) :] if path.startswith(cwd) else path  # as source.format_location shows files
    return f"{shown}{sep}{name}"
