"""Property tests (hypothesis): any value given to the command line, a pyproject.toml entry or
check() is either accepted or refused with exit 2 / GradcheckError and one paragraph: never a
traceback, never slow, never after TensorFlow loads.

The values are the hostile ones: nan, inf, negatives, huge numbers, odd strings, unicode, control
characters and rich markup. Example counts stay modest so the suite stays fast.
"""

from __future__ import annotations

import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from click.testing import CliRunner  # noqa: E402
from hypothesis import (  # noqa: E402
    HealthCheck,
    assume,
    given,
    settings,
    strategies as st,  # noqa: E402
)

from gradcheck.cli import main  # noqa: E402
from gradcheck.errors import GradcheckError  # noqa: E402
from gradcheck.options.pyproject import targets_from_pyproject  # noqa: E402
from gradcheck.options.settings import DTYPES, INT_BOUNDS, MAX_FLOAT16, MAX_FLOAT_INPUT, Options, make_options  # noqa: E402

MISSING = "tests/data/no_such_file.py:Layer"  # every accepted value ends at "There is no file": exit 2, no TensorFlow
FAST = settings(max_examples=80, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

MARKUP = [
    "[red]x[/red]",
    "[/]",
    ":smile:",
    "[bold",
    "]",
    "%0A",
    "::error::pwned",
    "\n::error::pwned",
    "\x00",
    "\x1b[31m",
]
floats = st.floats(allow_nan=True, allow_infinity=True)
float_text = st.one_of(
    floats.map(repr), floats.map(lambda f: f"{f:g}"), st.sampled_from(["nan", "inf", "-inf", "1e39", "-0", "1e-400"])
)
int_text = st.integers(min_value=-(2**70), max_value=2**70).map(str)
odd_text = st.one_of(st.text(max_size=30), st.sampled_from(MARKUP), st.text(alphabet="0123456789,x-. e", max_size=12))
value_text = st.one_of(float_text, int_text, odd_text)

POSITIVE = ["--eps", "--rtol", "--atol", "--vanishing-threshold", "--exploding-threshold", "--timeout"]
OPTIONS = POSITIVE + [
    "--seed",
    "--max-elements",
    "--input-shape",
    "--input-dtype",
    "--input-range",
    "--init",
    "--format",
    "--fail-on",
]


def _tensorflow_loaded() -> bool:
    return "tensorflow" in sys.modules


def _one_paragraph(message: str) -> None:
    assert message.strip(), message
    assert "Traceback" not in message, message
    assert "\n\n" not in message, message


@FAST
@given(st.lists(st.tuples(st.sampled_from(OPTIONS), value_text), min_size=1, max_size=3))
def test_command_line_values_are_accepted_or_refused_in_one_paragraph(pairs):
    tensorflow_before = _tensorflow_loaded()
    args = [MISSING] + [f"{option}={value}" for option, value in pairs]
    start = time.perf_counter()
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    elapsed = time.perf_counter() - start

    assert result.exit_code == 2, (args, result.output)
    assert result.stdout == "", (args, result.stdout)
    assert result.stderr.startswith("gradcheck: ") and result.stderr.count("\n") == 1, (args, result.stderr)
    assert "Traceback" not in result.stderr
    assert elapsed < 1.0, (args, elapsed)
    if not tensorflow_before:
        assert not _tensorflow_loaded(), args
    if "There is no file" in result.stderr:  # every value was accepted: check that it should have been
        for option, value in dict(pairs).items():  # a single-value option given twice: the last counts, as in click
            if option in POSITIVE:
                number = float(value.strip())
                assert math.isfinite(number) and number > 0, (option, value)
            if option == "--seed":
                assert 0 <= int(value.strip().replace("_", "")) < 2**32, value


# --- misspelt options ----------------------------------------------------------------------------

LONG_OPTIONS = sorted(
    {name for param in main.params for name in param.opts + param.secondary_opts if name.startswith("--")}
)


@st.composite
def misspelt_options(draw) -> str:
    """A long option with one letter dropped, doubled, swapped with the next or replaced: what a
    user types, and click answers with "Did you mean ...?"."""
    name = draw(st.sampled_from(LONG_OPTIONS))
    at = draw(st.integers(min_value=2, max_value=len(name) - 1))
    letter = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz-"))
    edit = draw(st.sampled_from(["drop", "double", "swap", "replace"]))
    if edit == "drop":
        return name[:at] + name[at + 1 :]
    if edit == "double":
        return name[: at + 1] + name[at:]
    if edit == "swap" and at + 1 < len(name):
        return name[:at] + name[at + 1] + name[at] + name[at + 2 :]
    return name[:at] + letter + name[at + 1 :]


@FAST
@given(misspelt_options(), st.booleans())
def test_a_misspelt_option_is_one_sentence_with_one_full_stop_or_question_mark(option, with_value):
    """click's suggestion ("Did you mean '--jobs'?") is quoted into gradcheck's paragraph without a
    full stop after its question mark, nor brackets around it."""
    assume(option not in LONG_OPTIONS and not option.startswith("---") and option != "--")
    args = [option, *(["2"] if with_value else []), MISSING]
    result = CliRunner().invoke(main, args, catch_exceptions=False)

    assert result.exit_code == 2, (args, result.output)
    assert result.stdout == ""
    message = result.stderr
    assert message.startswith(f"gradcheck: No such option {option!r}.") and message.count("\n") == 1, message
    said, advice = message.rstrip("\n").split(" Run gradcheck --help for the options", 1)
    assert advice == ".", message
    assert said[-1] in ".?" and said[-2] not in ".?!)", message  # one full stop or question mark, once
    assert not any(mark in said for mark in ("?.", "..", "?)", ".)", "(Did")), message
    if "Did you mean" in said:
        assert re.fullmatch(
            r"gradcheck: No such option '[^']+'\. Did you mean '--[a-z-]+'((, '--[a-z-]+')* or '--[a-z-]+')?\?", said
        ), said


def test_a_misspelt_option_names_the_option_meant():
    result = CliRunner().invoke(main, ["--jbos", "2", MISSING], catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (
        2,
        "gradcheck: No such option '--jbos'. Did you mean '--jobs' or '--json'? Run gradcheck --help for the options.\n",
    )
    result = CliRunner().invoke(main, ["--seeed", "2", MISSING], catch_exceptions=False)
    assert (
        result.stderr
        == "gradcheck: No such option '--seeed'. Did you mean '--seed'? Run gradcheck --help for the options.\n"
    )


# --- pyproject.toml -----------------------------------------------------------------------------


def _toml(value) -> str:
    """A TOML spelling of a generated value (JSON string escapes are TOML escapes too)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


scalars = st.one_of(st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), floats, odd_text, value_text)
toml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)
KEYS = [
    "target",
    "input-shape",
    "input-dtype",
    "input-range",
    "init",
    "seed",
    "training",
    "numeric",
    "exhaustive",
    "max-elements",
    "timeout",
]
entries = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), toml_values, max_size=5)
entry_or_junk = st.one_of(
    entries.map(lambda e: {"target": "a.py:A", "input-shape": "8,5", **e}),  # mostly near-valid entries
    entries,
    toml_values,
)
documents = st.one_of(
    st.lists(entry_or_junk, min_size=1, max_size=3).map(lambda ts: {"tool": {"gradcheck": {"targets": ts}}}),
    toml_values.map(lambda v: {"tool": v}),
    toml_values.map(lambda v: {"tool": {"gradcheck": v}}),
    toml_values.map(lambda v: {"tool": {"gradcheck": {"targets": v}}}),
)


@FAST
@given(documents)
def test_pyproject_entries_are_accepted_or_refused_in_one_paragraph(document):
    tensorflow_before = _tensorflow_loaded()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pyproject.toml"
        path.write_text("".join(f"{json.dumps(k)} = {_toml(v)}\n" for k, v in document.items()), encoding="utf-8")
        try:
            jobs = targets_from_pyproject({}, str(path))
        except GradcheckError as error:
            _one_paragraph(str(error))
            return
    for label, outcome in jobs:
        assert isinstance(label, str)
        if isinstance(outcome, GradcheckError):
            _one_paragraph(str(outcome))
            assert "[[tool.gradcheck.targets]] entry " in str(outcome), str(outcome)
        else:
            assert isinstance(outcome, Options)
            _assert_sound(outcome)
    if not tensorflow_before:
        assert not _tensorflow_loaded()


# --- check()'s keywords (make_options) ----------------------------------------------------------

api_values = st.one_of(
    st.none(),
    st.booleans(),
    floats,
    st.integers(min_value=-(2**80), max_value=2**80),
    odd_text,
    value_text,
    st.lists(st.one_of(st.integers(min_value=-3, max_value=2**40), floats, odd_text), max_size=3),
    st.lists(st.one_of(st.integers(min_value=-3, max_value=64), floats, odd_text), max_size=3).map(tuple),
    st.dictionaries(odd_text, st.integers(), max_size=2),
)
KEYWORDS = [
    "input_shape",
    "input_dtype",
    "input_range",
    "init",
    "seed",
    "training",
    "vanishing_threshold",
    "exploding_threshold",
    "numeric",
    "exhaustive",
    "rtol",
    "atol",
    "eps",
    "max_elements",
    "timeout",
]


def _assert_sound(options: Options) -> None:
    """What an accepted Options must hold, whatever produced it."""
    for name in ("rtol", "atol", "eps", "timeout", "vanishing_threshold", "exploding_threshold"):
        value = getattr(options, name)
        assert value is None or (math.isfinite(value) and value > 0), (name, value)
    assert options.vanishing_threshold < options.exploding_threshold
    assert type(options.seed) is int and 0 <= options.seed < 2**32
    assert options.training in (None, True, False) and type(options.max_elements) is int
    for spec in options.inputs:
        assert spec.shape and all(type(size) is int and size >= 1 for size in spec.shape), spec
        assert spec.dtype in DTYPES
        low, high = spec.resolved_range
        assert math.isfinite(low) and math.isfinite(high) and low < high
        if spec.dtype in INT_BOUNDS:
            assert INT_BOUNDS[spec.dtype][0] <= low and high <= INT_BOUNDS[spec.dtype][1]
        elif spec.dtype != "bool":
            assert max(abs(low), abs(high)) <= (MAX_FLOAT16 if spec.dtype == "float16" else MAX_FLOAT_INPUT)
    assert all(isinstance(key, str) and key.isidentifier() for key in options.init)


@FAST
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(KEYWORDS), st.sampled_from(["fail_on", "epsilon", "inputs"])),
        api_values,
        min_size=1,
        max_size=3,
    )
)
def test_check_keywords_are_accepted_or_refused_with_gradcheck_error(keywords):
    tensorflow_before = _tensorflow_loaded()
    keywords.setdefault("input_shape", (4, 5))
    start = time.perf_counter()
    try:
        options = make_options(**keywords)
    except GradcheckError as error:
        assert isinstance(error, ValueError)
        message = str(error)
        assert message and "\n" not in message, message
    else:
        _assert_sound(options)
    assert time.perf_counter() - start < 1.0
    if not tensorflow_before:
        assert not _tensorflow_loaded()
