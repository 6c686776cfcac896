"""Issue 9: every bad option, path, config entry and API argument is refused before any work, with
one paragraph (exit 2 / GradcheckError), and every output format stays well-formed for any message.

Option errors need no TensorFlow; the few tests that run a layer say so in their name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT, run_cli

from gradcheck import GradcheckError, check
from gradcheck.options import InputSpec, make_options
from gradcheck.options.pyproject import targets_from_pyproject
from gradcheck.render import github as render_github, json as render_json, junit as render_junit
from gradcheck.report import Report, TargetFailure, finding
from gradcheck.testing import assert_trainable

LAYERS = "tests/data/validation_layers.py"


MISSING = "tests/data/no_such_file.py:Layer"  # never loaded: option errors come first


def refused(args) -> str:
    """Run the CLI, assert the usage-error contract, and return the message."""
    result = run_cli(args)
    assert result.exit_code == 2, result
    assert result.stdout == "", result
    assert result.stderr.startswith("gradcheck: ") and result.stderr.count("\n") == 1, result
    assert "Traceback" not in result.stderr, result
    return result.stderr


@pytest.mark.parametrize(
    "option", ["--eps", "--atol", "--rtol", "--vanishing-threshold", "--exploding-threshold", "--timeout"]
)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0"])
def test_non_finite_or_non_positive_numbers_are_refused(option, value):
    message = refused([f"{LAYERS}:Dense3", "--input-shape", "4,5", option, value])
    assert f"gradcheck: {option} {value} is out of range:" in message
    assert "must be a finite number above 0" in message


def test_eps_above_one_and_a_word_are_refused():
    assert "must be a finite number above 0 and at most 1." in refused([MISSING, "--eps", "2"])
    assert "--eps 'abc' is not a number" in refused([MISSING, "--eps", "abc"])
    assert "at most 10,000,000" in refused([MISSING, "--timeout", "1e9"])


def test_vanishing_threshold_must_be_below_exploding():
    message = refused([f"{LAYERS}:Dense3", "--input-shape", "4,5", "--vanishing-threshold", "1e5"])
    assert "--vanishing-threshold 100000 is not below --exploding-threshold 10000" in message


@pytest.mark.parametrize(
    "value, phrase",
    [
        ("-1", "--seed -1 is out of range: it must be an integer from 0 to 4,294,967,295."),
        ("4294967296", "--seed 4294967296 is out of range"),
        ("1.5", "--seed '1.5' is not an integer"),
        ("abc", "--seed 'abc' is not an integer"),
    ],
)
def test_seed_is_an_integer_below_2_to_the_32(value, phrase):
    assert phrase in refused([MISSING, "--seed", value])


def test_largest_seed_is_accepted():
    assert make_options(input_shape=(4, 5), seed=2**32 - 1).seed == 2**32 - 1


@pytest.mark.parametrize(
    "value, phrase",
    [
        ("-inf,inf", "--input-range '-inf,inf' is not finite"),
        ("nan,1", "--input-range 'nan,1' is not finite"),
        ("0,1e39", "--input-range 0,1e+39 is too large for the float32 input: LOW and HIGH must be within ±1e18"),
        ("1,1", "LOW must be below HIGH"),
        ("a,b", "is not two numbers"),
    ],
)
def test_input_range_is_finite_ordered_and_bounded(value, phrase):
    assert phrase in refused([f"{LAYERS}:Dense3", "--input-shape", "4,5", f"--input-range={value}"])


@pytest.mark.parametrize(
    "dtype, value, phrase",
    [
        (
            "int8",
            "0,1000",
            "--input-range 0,1000 does not fit the int8 input: LOW and HIGH must be integers with -128 <= LOW < HIGH <= 128",
        ),
        ("uint8", "-1,5", "does not fit the uint8 input"),
        ("int32", "0.5,3", "does not fit the int32 input"),
        (
            "float16",
            "0,1e5",
            "--input-range 0,100000 is too large for the float16 input: LOW and HIGH must be within ±65504",
        ),
        ("bool", "0,1", "is given for a bool input"),
    ],
)
def test_input_range_fits_the_dtype(dtype, value, phrase):
    args = [f"{LAYERS}:Dense3", "--input-shape", "4,5", "--input-dtype", dtype, f"--input-range={value}"]
    assert phrase in refused(args)


def test_ranges_at_the_edge_of_the_dtype_are_accepted():
    options = make_options(
        input_shape=[(4,), (4,), (4,)],
        input_dtype=["int8", "uint8", "float16"],
        input_range=["-128,128", "0,256", "-65504,65504"],
    )
    assert [s.value_range for s in options.inputs] == [(-128.0, 128.0), (0.0, 256.0), (-65504.0, 65504.0)]


def test_shape_with_x_suggests_commas():
    assert "--input-shape '100x5' is not integers separated by commas; did you mean --input-shape 100,5?" in refused(
        [MISSING, "--input-shape", "100x5"]
    )


def test_repeated_init_key_is_refused():
    assert "--init units is given twice (3 and '4'). Give each constructor keyword once." in refused(
        [MISSING, "--init", "units=3", "--init", "units=4"]
    )


def test_small_limit_is_given_in_kb_or_bytes():
    message = refused([f"{LAYERS}:Dense3", "--input-shape", "4,5", "--max-elements", "10"])
    assert (
        "has 20 numbers, above the limit of 10; sampling and checking it would need about 160 bytes per copy" in message
    )
    message = refused([f"{LAYERS}:Dense3", "--input-shape", "100,50", "--max-elements", "10"])
    assert "about 40 KB per copy" in message and "0 MB" not in message


@pytest.mark.parametrize(
    "target, phrase",
    [
        ("layers.py", "TARGET 'layers.py' is not MODULE:NAME"),
        ("no/such/file.py:Layer", "There is no file 'no/such/file.py'"),
        ("tests/data:Layer", "'tests/data' is not a Python file"),
        ("my-package.layers:Layer", "'my-package.layers' is neither a dotted module name nor a path to a .py file"),
    ],
)
def test_bad_target_is_refused(target, phrase):
    assert phrase in refused([target, "--input-shape", "4,5"])


_NO_TENSORFLOW = textwrap.dedent("""
    import sys, time
    from click.testing import CliRunner
    from gradcheck.cli import main
    start = time.perf_counter()
    result = CliRunner().invoke(main, sys.argv[1:])
    print(result.exit_code, "tensorflow" in sys.modules, round(time.perf_counter() - start, 3))
    print(result.stderr, end="")
""")


@pytest.mark.parametrize(
    "args",
    [
        ["layers.py", "--input-shape", "4,5"],
        ["no/such/file.py:Layer", "--input-shape", "4,5"],
        [f"{LAYERS}:Dense3", "--input-shape", "4,5", "--seed", "-1"],
        [f"{LAYERS}:Dense3", "--input-shape", "4,5", "--seed", "99999999999"],
        [f"{LAYERS}:Dense3", "--input-shape", "4,5", "--eps", "nan"],
        [f"{LAYERS}:Dense3", "--input-shape", "4,5", "--input-range=0,1e39"],
        [f"{LAYERS}:Dense3", "--input-shape", "4,5", "--init", "units=3", "--init", "units=4"],
        [f"{LAYERS}:Dense3", "--input-shape", "4,5", "--format", "xml"],
        [f"{LAYERS}:Dense3", "--input-shape", "4,5", "--no-such-option"],
    ],
)
def test_usage_errors_come_before_tensorflow_is_imported(args):
    completed = subprocess.run(
        [sys.executable, "-c", _NO_TENSORFLOW, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    status, imported, seconds = completed.stdout.splitlines()[0].split()
    assert (status, imported) == ("2", "False"), completed
    assert float(seconds) < 1.0, completed
    assert completed.stdout.splitlines()[1].startswith("gradcheck: "), completed


def test_unknown_option_and_bad_choice_are_one_paragraph():
    assert "No such option '--epz'" in refused([MISSING, "--epz", "3"])
    assert "Invalid value for '--format': 'xml' is not one of" in refused([MISSING, "--format", "xml"])
    assert "Option '--eps' requires an argument" in refused([MISSING, "--eps"])


@pytest.mark.parametrize(
    "keywords, phrase",
    [
        ({"input_shape": (4, -5)}, "--input-shape (4, -5) has -5; every dimension must be at least 1"),
        ({"input_shape": (4, 5.0)}, "--input-shape (4, 5.0) has 5, a float; every dimension must be an integer"),
        ({"input_shape": (4, True)}, "has True, a bool"),
        ({"input_shape": 5}, "input_shape=5 is neither one value nor a list of values"),
        ({"input_shape": (4, 5), "init": 5}, "init=5 is not constructor keywords"),
        ({"input_shape": (4, 5), "init": {1: 2}}, "init has the key 1, which is not a keyword name"),
        ({"input_shape": (4, 5), "init": ["units=3", 4]}, "init entry 4 is not a 'KEY=VALUE' string"),
        ({"input_shape": (4, 5), "seed": "abc"}, "--seed 'abc' is not an integer"),
        ({"input_shape": (4, 5), "seed": 1.0}, "--seed 1 is not an integer"),
        ({"input_shape": (4, 5), "timeout": -1}, "--timeout -1 is out of range"),
        ({"input_shape": (4, 5), "rtol": -1}, "--rtol -1 is out of range"),
        ({"input_shape": (4, 5), "eps": float("nan")}, "--eps nan is out of range"),
        ({"input_shape": (4, 5), "training": "yes"}, "training='yes' is not True, False or None"),
        ({"input_shape": (4, 5), "numeric": "no"}, "numeric='no' is not True or False"),
        ({"input_shape": (4, 5), "input_range": (0, float("inf"))}, "is not finite"),
        ({"input_shape": (4, 5), "input_dtype": 3}, "input_dtype=3 is neither one value nor a list of values"),
        (
            {"input_shape": [(4, 5), (4, 5)], "input_dtype": ["float32", 3]},
            "--input-dtype 3 is not a dtype gradcheck can sample",
        ),
        (
            {"input_shape": (4, 5), "epsilon": 1e-3},
            "check() got the unknown keyword 'epsilon'. Its keywords are: input_shape,",
        ),
        ({"input_shape": (4, 5), "fail_on": "warning"}, "(fail_on is a keyword of gradcheck.testing.assert_trainable)"),
    ],
)
def test_check_refuses_bad_arguments_with_gradcheck_error(keywords, phrase):
    with pytest.raises(GradcheckError) as raised:
        check("tests/data/validation_layers.py:Dense3", **keywords)
    assert phrase in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert "\n" not in str(raised.value)


def test_check_argument_errors_need_no_tensorflow():
    code = textwrap.dedent("""
        import sys
        from gradcheck import GradcheckError, check
        try:
            check("x.py:A", input_shape=(4, 5), seed=-1)
        except ValueError as error:
            print(type(error).__name__, "tensorflow" in sys.modules)
    """)
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.stdout.split() == ["GradcheckError", "False"], completed


def test_init_string_is_one_keyword_and_a_list_of_them_too():
    assert make_options(input_shape=(4, 5), init="units=3").init == {"units": 3}
    assert make_options(input_shape=(4, 5), init=["units=3", "activation=relu"]).init == {
        "units": 3,
        "activation": "relu",
    }
    assert make_options(input_shape=(4, 5), init={"units": 3}).init == {"units": 3}


def test_numpy_values_are_accepted():
    np = pytest.importorskip("numpy")
    options = make_options(
        input_shape=(np.int64(4), np.int32(5)), seed=np.uint32(7), training=np.bool_(True), rtol=np.float32(0.5)
    )
    assert options.inputs == (InputSpec((4, 5)),)
    assert (options.seed, options.training, options.rtol) == (7, True, 0.5)
    assert type(options.inputs[0].shape[0]) is int and type(options.seed) is int


def test_assert_trainable_refuses_a_bad_fail_on_before_checking():
    with pytest.raises(GradcheckError, match=r"fail_on='bogus' is not a severity. Give fail_on='error'"):
        assert_trainable("no/such/file.py:Layer", input_shape=(4, 5), fail_on="bogus")


@pytest.mark.parametrize(
    "text, phrase",
    [
        ('tool = "x"\n', "tool is a string ('x'), where gradcheck reads a table"),
        ("[tool]\ngradcheck = 3\n", "tool.gradcheck is an integer (3), where gradcheck reads a table"),
        (
            '[tool.gradcheck]\ntargets = "x"\n',
            "tool.gradcheck.targets is a string ('x'), where gradcheck reads one [[tool.gradcheck.targets]] table per layer",
        ),
        ("[tool.gradcheck]\ntargets = []\n", "tool.gradcheck.targets is an empty array"),
        ("[tool.gradcheck]\ntargets = {a = 1}\n", "tool.gradcheck.targets is a table"),
    ],
)
def test_pyproject_of_the_wrong_shape_is_named(tmp_path, text, phrase):
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(GradcheckError) as raised:
        targets_from_pyproject({}, str(tmp_path / "pyproject.toml"))
    assert phrase in str(raised.value)
    result = run_cli([], cwd=tmp_path)
    assert result.exit_code == 2 and phrase in result.stderr and "Traceback" not in result.stderr, result


@pytest.mark.parametrize(
    "entry, phrase",
    [
        ('targets = ["x"]', "entry 1 is a string ('x'), not a table"),
        ("targets = [3]", "entry 1 is an integer (3), not a table"),
        ('targets = [{target = "a.py:A", input-shape = "8,5"}, "x"]', "entry 2 is a string ('x'), not a table"),
        ('targets = [{target = "a.py", input-shape = "8,5"}]', "entry 1: TARGET 'a.py' is not MODULE:NAME"),
        ('targets = [{target = "a.py:A", input-shape = "8,5", seed = -1}]', "entry 1: --seed -1 is out of range"),
        (
            'targets = [{target = "a.py:A", input-shape = "8,5", timeout = nan}]',
            "entry 1: timeout = nan is not a number of seconds above 0",
        ),
        (
            'targets = [{target = "a.py:A", input-shape = "8,5", input-range = "0,1e39"}]',
            "entry 1: --input-range 0,1e+39 is too large",
        ),
    ],
)
def test_pyproject_entries_of_the_wrong_shape_are_numbered(tmp_path, entry, phrase):
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.gradcheck]\n{entry}\n")
    errors = [str(e) for _, e in targets_from_pyproject({}, str(path)) if isinstance(e, GradcheckError)]
    assert any(phrase in e for e in errors), errors


def test_pyproject_input_shape_may_be_a_plain_string(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text('[[tool.gradcheck.targets]]\ntarget = "a.py:A"\ninput-shape = "16,5"\ninput-dtype = "int32"\n')
    [(_, options)] = targets_from_pyproject({}, str(path))
    assert options.inputs == (InputSpec((16, 5), "int32"),)


HOSTILE = "bad \x00 nul \x1b[31m esc \x07 bell \udc80 surrogate \ufffe\n::error::pwned\r\n%0A [red]x[/red] :smile:"


def _hostile_results():
    report = Report(
        target=f"layers.py:{HOSTILE}",
        findings=(
            finding("untracked-variable", f"w{HOSTILE}", HOSTILE, "layers.py:3"),
            finding("zero-gradient", "b", HOSTILE, f"a{HOSTILE}.py:4"),
        ),
        training_modes=("n/a",),
    )
    return [report, TargetFailure(f"x.py:{HOSTILE}", HOSTILE)]


def test_junit_parses_whatever_a_message_holds():
    text = render_junit.render(_hostile_results())
    root = ET.fromstring(text.encode("utf-8"))  # encodes: no lone surrogate is left either
    failure = root.find(".//testcase/failure")
    assert failure.get("message").startswith(
        "bad \\x00 nul \\x1b[31m esc \\x07 bell \\udc80 surrogate \\ufffe\n::error::pwned"
    )
    assert root.find(".//testcase/error").get("message").endswith("[red]x[/red] :smile:")


def test_github_message_cannot_start_a_command_of_its_own():
    lines = render_github.render(_hostile_results()).splitlines()
    assert not any(line.startswith("::error::pwned") for line in lines), lines
    assert all(line.startswith(("::error ", "::warning ", "::notice ", "gradcheck: ")) for line in lines), lines
    assert "%0A::error::pwned%0D%0A%250A" in lines[0]
    assert "file=a" in lines[1] and "%3A%3Aerror%3A%3Apwned" in lines[1]  # `:` escaped in a property


def test_json_is_one_document_whatever_a_message_holds():
    text = render_json.render(_hostile_results()[:1])
    document = json.loads(text)
    assert document["findings"][0]["message"] == HOSTILE
    assert text.count("\n") == text.rstrip("\n").count("\n") + 1 and text.isascii()
