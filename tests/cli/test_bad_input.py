"""Every bad input of issue 5 exits 2 with one clear paragraph on stderr, no traceback, nothing on stdout.

The layers these need live in tests/data/ (not sample_layers/, whose every class must be checkable).
"""

import pytest
from conftest import ROOT, line_of, run_cli

BAD = "tests/data/bad_layers.py"


def at(what: str) -> str:
    """`tests/data/bad_layers.py:N`, N the line marked `# raises here: WHAT`."""
    return f"{BAD}:{line_of(f'# raises here: {what}', BAD)}"


CASES = {
    "module missing": (["no_such_module_xyz:Layer", "--input-shape", "4,5"], "No module named 'no_such_module_xyz'"),
    "file missing": (["no/such/file.py:Layer", "--input-shape", "4,5"], "There is no file 'no/such/file.py'"),
    "syntax error": (
        ["tests/data/syntax_error.py:Broken", "--input-shape", "4,5"],
        f"tests/data/syntax_error.py:{line_of('def call(self, inputs)', 'tests/data/syntax_error.py')}: syntax error",
    ),
    # Python's own hint ends with a question mark: quoted without a full stop after it.
    "syntax error with a hint": (
        ["tests/data/syntax_error_hint.py:Broken", "--input-shape", "4,5"],
        f"tests/data/syntax_error_hint.py:{line_of('WIDTHS = [1 2]', 'tests/data/syntax_error_hint.py')}: syntax "
        "error: invalid syntax. Perhaps you forgot a comma? Python cannot import the module until it is fixed.\n",
    ),
    "name missing": (
        [f"{BAD}:Nope", "--input-shape", "4,5"],
        "`bad_layers.py` has no `Nope`. It defines the Layer classes `BuildRaises`, `CallRaises`",
    ),
    "not a layer": (
        [f"{BAD}:NOT_A_LAYER", "--input-shape", "4,5"],
        "`NOT_A_LAYER` is an int (42). gradcheck checks a Keras Layer or Model",
    ),
    "class not a layer": (
        [f"{BAD}:PlainClass", "--input-shape", "4,5"],
        "`PlainClass` is a class that is not a keras.layers.Layer subclass",
    ),
    "factory returns no layer": (
        [f"{BAD}:factory_returns_string", "--input-shape", "4,5"],
        "returned str, not a Keras Layer or Model",
    ),
    "factory raises": (
        [f"{BAD}:factory_raises", "--input-shape", "4,5"],
        f"factory_raises() raised KeyError at {at('factory')}: 'no such config'",
    ),
    "shape empty": ([f"{BAD}:FixedWidth", "--input-shape", ""], "--input-shape is empty"),
    "shape not integer": ([f"{BAD}:FixedWidth", "--input-shape", "4,x"], "has 'x', which is not an integer"),
    "shape zero": ([f"{BAD}:FixedWidth", "--input-shape", "4,0"], "has 0; every dimension must be at least 1"),
    "shape negative": ([f"{BAD}:FixedWidth", "--input-shape", "4,-5"], "has -5; every dimension must be at least 1"),
    "no shape": ([f"{BAD}:FixedWidth"], "No input shape given"),
    "dtype count": (
        [f"{BAD}:FixedWidth", "--input-shape", "4,5", "--input-dtype", "float32", "--input-dtype", "int32"],
        "2 --input-dtype value(s) for 1 input(s)",
    ),
    "range count": (
        [f"{BAD}:FixedWidth", "--input-shape", "4,5", "--input-range", "0,1", "--input-range", "0,1"],
        "2 --input-range value(s) for 1 input(s)",
    ),
    "unknown dtype": (
        [f"{BAD}:FixedWidth", "--input-shape", "4,5", "--input-dtype", "float17"],
        "'float17' is not a dtype gradcheck can sample",
    ),
    "init rejected": (
        [f"{BAD}:NeedsUnits", "--input-shape", "4,5", "--init", "units=-1"],
        f"NeedsUnits(units=-1) raised ValueError at {at('init')}: units must be positive, got -1. Its signature is NeedsUnits(units, **kwargs).",
    ),
    "init misspelt": (
        [f"{BAD}:NeedsUnits", "--input-shape", "4,5", "--init", "unitz=3"],
        "needs the argument 'units' to be constructed (--init unitz is not one of its named parameters)",
    ),
    "init not key=value": (
        [f"{BAD}:NeedsUnits", "--input-shape", "4,5", "--init", "units"],
        "--init 'units' is not KEY=VALUE",
    ),
    "build raises": (
        [f"{BAD}:BuildRaises", "--input-shape", "4,5"],
        f"ValueError raised at {at('build')} while building and calling the layer on input shape 4,5: build needs a rank-3 input.",
    ),
    "call raises": (
        [f"{BAD}:CallRaises", "--input-shape", "4,5"],
        f"RuntimeError raised at {at('call')} while building and calling the layer on input shape 4,5: call is broken.",
    ),
    "shape mismatch": (
        [f"{BAD}:FixedWidth", "--input-shape", "4,7"],
        f"InvalidArgumentError raised at {at('shape')} while building and calling the layer on input shape 4,7: Matrix size-incompatible: In[0]: [4,7], In[1]: [5,3] [Op:MatMul]. Fix the layer",
    ),
    "returns None": (
        [f"{BAD}:ReturnsNone", "--input-shape", "4,5"],
        "call() returned NoneType with no tensor in it",
    ),
    "too large": (
        [f"{BAD}:FixedWidth", "--input-shape", "100000,100000"],
        "has 10,000,000,000 numbers, above the limit of 50,000,000; sampling and checking it would need about 80,000 MB",
    ),
    "hangs": ([f"{BAD}:Hangs", "--input-shape", "4,5", "--timeout", "1"], "The check did not finish within 1 s"),
    "bad format": ([f"{BAD}:FixedWidth", "--input-shape", "4,5", "--format", "xml"], "'xml' is not one of"),
    "json and format": (
        [f"{BAD}:FixedWidth", "--input-shape", "4,5", "--json", "--format", "text"],
        "--json is --format json",
    ),
    "bad target": (["layers.py", "--input-shape", "4,5"], "TARGET 'layers.py' is not MODULE:NAME"),
}


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    """Each case of CASES run once, asked to write a report it must not write; the tests that read
    a case's message share the run (the "hangs" case costs a fresh worker each time it runs)."""
    runs = {}

    def run(name):
        if name not in runs:
            output = tmp_path_factory.mktemp("bad") / "report.json"
            runs[name] = (run_cli([*CASES[name][0], "--output", output]), output)
        return runs[name]

    return run


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_bad_input_exits_2_with_one_clear_message(name, bad_run):
    phrase = CASES[name][1]
    result, output = bad_run(name)
    assert result.exit_code == 2, result
    assert phrase in result.stderr, result
    assert "Traceback" not in result.stderr + result.stdout, result
    assert result.stdout == "", result
    assert not output.exists(), result


def test_too_large_mentions_the_option_to_raise_the_limit(bad_run):
    result, _ = bad_run("too large")
    assert "--max-elements" in result.stderr, result
    assert result.stderr.count("\n") == 1, result  # one paragraph


def test_messages_are_one_paragraph(bad_run):
    for name in ("factory raises", "call raises", "shape mismatch", "name missing", "hangs"):
        result, _ = bad_run(name)
        assert result.stderr.startswith("gradcheck: ") and result.stderr.count("\n") == 1, result


def test_debug_shows_the_users_traceback():
    # The check runs in a worker process; --debug brings its traceback back as text, the user's
    # exception (the suppressed context of the one-paragraph message) included.
    result = run_cli([f"{BAD}:CallRaises", "--input-shape", "4,5", "--debug"])
    assert result.exit_code == 2, result
    assert "Traceback (most recent call last)" in result.stderr, result
    line = line_of("# raises here: call", BAD)
    assert f'File "{ROOT / BAD}", line {line}, in call' in result.stderr, result
    assert "RuntimeError: Exception encountered when calling CallRaises.call().\n\ncall is broken" in result.stderr, (
        result
    )
    assert result.stderr.rstrip().splitlines()[-1].startswith(f"gradcheck: RuntimeError raised at {BAD}:{line}"), result


@pytest.mark.parametrize("name", ["ReturnsDict", "ReturnsTuple"])
def test_dict_or_tuple_output_is_checked(name):
    result = run_cli([f"{BAD}:{name}", "--input-shape", "4,5", "--json"])
    assert result.exit_code == 0, result
    document = result.json()
    assert document["ok"] is True
    assert [v["name"] for v in document["variables"]] == ["kernel"]
    assert document["variables"][0]["gradient_status"] == "ok"


LAYERS = "tests/data/validation_layers.py"


def refused(args) -> str:
    """Run the CLI, assert the usage-error contract, and return the message."""
    result = run_cli(args)
    assert result.exit_code == 2, result
    assert result.stdout == "", result
    assert result.stderr.startswith("gradcheck: ") and result.stderr.count("\n") == 1, result
    assert "Traceback" not in result.stderr, result
    return result.stderr


def test_input_count_mismatch_says_so_tensorflow():
    message = refused([f"{LAYERS}:TwoInputs", "--input-shape", "4,5", "--input-shape", "4,5", "--input-shape", "4,5"])
    assert "3 --input-shape value(s) for a call() that takes 2 inputs (first, second)" in message
    assert "missing a required argument" not in message


def test_memory_error_names_the_request_and_the_limit_tensorflow():
    message = refused([f"{LAYERS}:OutOfMemory", "--input-shape", "4,5"])
    line = (ROOT / LAYERS).read_text().splitlines().index("        raise MemoryError()") + 1
    assert (
        f"MemoryError raised at {LAYERS}:{line} while building and calling the layer on input shape 4,5: out of memory "
        "with inputs of 20 numbers in all (--max-elements allows 50,000,000 per input)."
    ) in message
    assert ": ." not in message
