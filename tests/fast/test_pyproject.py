"""Many targets from pyproject.toml: parsing, one bad entry failing alone, and a CI run over three layers."""

import shutil
import textwrap

import pytest
from conftest import ROOT, SAMPLES, run_cli

from gradcheck.errors import GradcheckError
from gradcheck.options import InputSpec
from gradcheck.options.pyproject import targets_from_pyproject

THREE_TARGETS = """
[project]
name = "someone-elses-package"

[[tool.gradcheck.targets]]
target = "layers/classic.py:SimpleDense"
input-shape = ["16,5"]
init = {units = 4}

[[tool.gradcheck.targets]]
target = "layers/untracked.py:RawVariable"
input-shape = ["16,5"]
input-dtype = ["float32"]
input-range = ["-1,1"]

[[tool.gradcheck.targets]]
target = "layers/classic.py:DenseWithActivation"
input-shape = ["16,5"]
init = {units = 4}
seed = 3
"""


@pytest.fixture
def project(tmp_path):
    """A folder holding pyproject.toml and copies of two sample files under layers/."""
    (tmp_path / "layers").mkdir()
    for name in ("classic.py", "untracked.py"):
        shutil.copy(SAMPLES / name, tmp_path / "layers" / name)
    (tmp_path / "pyproject.toml").write_text(THREE_TARGETS)
    return tmp_path


def write(tmp_path, text):
    path = tmp_path / "pyproject.toml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_entries_become_options(project, monkeypatch):
    monkeypatch.chdir(project)
    jobs = targets_from_pyproject({"seed": 0, "timeout": 60.0})
    assert [target for target, _ in jobs] == [
        "layers/classic.py:SimpleDense",
        "layers/untracked.py:RawVariable",
        "layers/classic.py:DenseWithActivation",
    ]
    first, third = jobs[0][1], jobs[2][1]
    assert first.inputs == (InputSpec((16, 5), "float32", None),)
    assert first.init == {"units": 4} and first.timeout == 60.0
    assert (first.seed, third.seed) == (0, 3)  # an entry's key overrides the command line's


def test_file_targets_are_relative_to_the_pyprojects_folder(project, monkeypatch):
    monkeypatch.chdir(project / "layers")
    jobs = targets_from_pyproject({}, str(project / "pyproject.toml"))
    assert jobs[0][0] == "classic.py:SimpleDense"  # layers/classic.py seen from inside layers/


def test_a_pyproject_outside_the_working_folder_gives_absolute_paths(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        """
        [[tool.gradcheck.targets]]
        target = "a.py:A"
        input-shape = ["8,5"]
    """,
    )
    monkeypatch.chdir(ROOT)
    assert targets_from_pyproject({}, path)[0][0] == f"{tmp_path}/a.py:A"


def test_module_targets_are_left_as_they_are(tmp_path):
    path = write(
        tmp_path,
        """
        [[tool.gradcheck.targets]]
        target = "keras.layers:Dense"
        input-shape = ["8,5"]
        init = {units = 3}
    """,
    )
    assert targets_from_pyproject({}, path)[0][0] == "keras.layers:Dense"


def test_one_bad_entry_fails_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path,
        """
        [[tool.gradcheck.targets]]
        target = "a.py:Good"
        input-shape = ["8,5"]

        [[tool.gradcheck.targets]]
        target = "a.py:Bad"
        input-shape = ["8,5"]
        input_dtype = ["float32"]

        [[tool.gradcheck.targets]]
        target = "a.py:Worse"
        input-shape = ["8,0"]
    """,
    )
    (good, options), (bad, error), (worse, error2) = targets_from_pyproject({}, path)
    assert good == "a.py:Good" and not isinstance(options, GradcheckError)
    assert bad == "a.py:Bad" and isinstance(error, GradcheckError)
    assert "entry 2 has the unknown key 'input_dtype'" in str(error)
    assert "keys use dashes" in str(error)
    assert "entry 3: --input-shape '8,0' has 0" in str(error2)


@pytest.mark.parametrize(
    "entry, phrase",
    [
        ('target = "a.py:A"', "has no 'input-shape'"),
        ('input-shape = ["8,5"]', "has no 'target'"),
        ('target = "a.py:A"\ninput-shape = 8', 'input-shape = 8 is not a string such as "16,5", or a list of them'),
        ('target = "a.py:A"\ninput-shape = ["8,5"]\ninit = 4', "init = 4 is not a table"),
        ('target = "a.py:A"\ninput-shape = ["8,5"]\ntimeout = 0', "timeout = 0 is not a number of seconds above 0"),
        ('target = "a.py:A"\ninput-shape = ["8,5"]\ntraining = "yes"', "training = 'yes' is not true or false"),
    ],
)
def test_entry_errors_name_the_problem(tmp_path, entry, phrase):
    path = write(tmp_path, "[[tool.gradcheck.targets]]\n" + entry + "\n")
    [(_, error)] = targets_from_pyproject({}, path)
    assert isinstance(error, GradcheckError) and phrase in str(error)


def test_no_pyproject_or_no_targets_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GradcheckError, match=r"No TARGET given and there is no \./pyproject\.toml"):
        targets_from_pyproject({})
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(GradcheckError, match=r"lists no \[\[tool\.gradcheck\.targets\]\]") as raised:
        targets_from_pyproject({})
    assert 'input-shape = ["16,5"]' in str(raised.value)  # the example to copy
    (tmp_path / "pyproject.toml").write_text("[[tool.gradcheck.targets]\n")
    with pytest.raises(GradcheckError, match="is not valid TOML"):
        targets_from_pyproject({})


def test_cli_without_target_or_pyproject_exits_2(tmp_path):
    result = run_cli([], cwd=tmp_path)
    assert result.exit_code == 2, result
    assert result.stderr.startswith("gradcheck: No TARGET given"), result
    assert "Traceback" not in result.stderr


def test_input_options_without_target_exit_2(project):
    result = run_cli(["--input-shape", "4,5"], cwd=project)
    assert result.exit_code == 2, result
    assert "describe a TARGET named on the command line" in result.stderr, result
