"""--backend, pyproject's `backends`, check(backend=...): validated before any framework loads, spread
into one job per backend, a backend that is not installed refused with the command that installs it."""

import importlib.util
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

from gradcheck.cli import main
from gradcheck.errors import GradcheckError
from gradcheck.options.backends import check_installed, parse_backends, per_backend
from gradcheck.options.settings import make_options
from gradcheck.runtime import backend_name

SAMPLE = "sample_layers/classic.py:SimpleDense"


def test_all_is_every_backend_in_order_and_a_name_counts_once():
    assert parse_backends("all") == ("tensorflow", "jax", "torch")
    assert parse_backends(["jax", "tensorflow", "jax"]) == ("jax", "tensorflow")
    assert parse_backends(("torch", "all")) == ("torch", "tensorflow", "jax")


@pytest.mark.parametrize("value", ["numpy", "TensorFlow", "", "jax,torch"])
def test_a_name_that_is_not_a_backend_is_refused_with_the_choices(value):
    with pytest.raises(GradcheckError) as raised:
        parse_backends(value)
    assert str(raised.value) == (
        f"--backend {value!r} is not a Keras backend gradcheck checks on. Use one of tensorflow, jax, torch, all "
        "(repeat --backend for several; all is every one of them)."
    )


def test_the_command_refuses_a_bad_backend_before_loading_anything():
    result = CliRunner().invoke(main, [SAMPLE, "--input-shape", "16,5", "--backend", "numpy"])
    assert result.exit_code == 2
    assert "--backend 'numpy' is not a Keras backend gradcheck checks on" in result.stderr


def test_an_uninstalled_backend_is_refused_with_the_command_that_installs_it(monkeypatch):
    # Only jax missing (the fast lane hides Keras itself, so everything else is said to be there).
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else object())
    with pytest.raises(GradcheckError) as raised:
        check_installed(per_backend([(SAMPLE, make_options(input_shape="16,5", backends="jax"))]))
    message = str(raised.value)
    assert message.startswith("--backend jax: JAX is not installed in this environment (")
    assert message.endswith("Install it with: pip install 'gradcheck[jax]'")


def test_the_command_exits_2_with_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else object())
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, [SAMPLE, "--input-shape", "16,5", "--backend", "torch"])
    assert result.exit_code == 2, result.output
    assert "PyTorch is not installed" in result.stderr and "pip install 'gradcheck[torch]'" in result.stderr
    assert result.stdout == ""


def test_each_backend_is_a_job_of_its_own_and_several_are_compared(tmp_path):
    options = make_options(input_shape="16,5", backends=["tensorflow", "jax"])
    jobs = per_backend([(SAMPLE, options)], str(tmp_path))
    assert [(target, o.backends) for target, o in jobs] == [(SAMPLE, ("tensorflow",)), (SAMPLE, ("jax",))]
    folders = {o.compare_folder for _, o in jobs}
    assert len(folders) == 1 and folders.pop().startswith(str(tmp_path))
    [(_, alone)] = per_backend([(SAMPLE, make_options(input_shape="16,5", backends="jax"))], str(tmp_path))
    assert alone.backends == ("jax",) and alone.compare_folder is None  # one backend: nothing to compare


def test_without_backend_keras_backend_decides(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    [(_, options)] = per_backend([(SAMPLE, make_options(input_shape="16,5"))])
    assert options.backends == ("torch",)
    monkeypatch.delenv("KERAS_BACKEND")
    [(_, options)] = per_backend([(SAMPLE, make_options(input_shape="16,5"))])
    assert options.backends == ("tensorflow",)


def test_an_unknown_keras_backend_is_refused(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "openvino")
    with pytest.raises(GradcheckError) as raised:
        per_backend([(SAMPLE, make_options(input_shape="16,5"))])
    assert str(raised.value).startswith("KERAS_BACKEND is 'openvino', a backend gradcheck does not check layers on.")
    # Before Keras is imported (this process may have imported it for another test: Keras's own
    # backend is then the process's, whatever the variable says).
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    with pytest.raises(GradcheckError):
        backend_name()


def test_check_takes_one_backend_at_a_time():
    from gradcheck import check

    with pytest.raises(GradcheckError) as raised:
        check(SAMPLE, input_shape="16,5", backend=["jax", "torch"])
    assert str(raised.value).startswith("check() checks one backend at a time, and got backend=['jax', 'torch'].")


def test_the_comparison_folder_is_not_an_option_of_check():
    with pytest.raises(GradcheckError) as raised:
        make_options(input_shape="16,5", compare_folder="/tmp/x")
    assert "unknown keyword 'compare_folder'" in str(raised.value)


def test_pyproject_backends_are_read_and_checked(tmp_path, monkeypatch):
    from gradcheck.options.pyproject import targets_from_pyproject

    (tmp_path / "pyproject.toml").write_text(
        "[[tool.gradcheck.targets]]\n"
        'target = "m.py:A"\ninput-shape = ["16,5"]\nbackends = ["jax", "all"]\n\n'
        "[[tool.gradcheck.targets]]\n"
        'target = "m.py:B"\ninput-shape = ["16,5"]\nbackends = ["theano"]\n'
    )
    monkeypatch.chdir(tmp_path)
    first, second = targets_from_pyproject({})
    assert first[1].backends == ("jax", "tensorflow", "torch")
    assert isinstance(second[1], GradcheckError)
    assert "--backend 'theano' is not a Keras backend" in str(second[1])


def test_a_compare_folder_is_made_only_when_a_target_is_compared(tmp_path, monkeypatch):
    """Nothing in the temporary folder for a run on one backend (a command killed outright would
    leave it); one folder, removed by compared(), for a target on several."""
    import tempfile

    from gradcheck.cli.jobs import backend_jobs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    jobs, folder = backend_jobs([(SAMPLE, make_options(input_shape="16,5", backends=["tensorflow"]))])
    assert (len(jobs), folder, list(tmp_path.iterdir())) == (1, None, [])
    jobs, folder = backend_jobs([(SAMPLE, make_options(input_shape="16,5", backends=["jax", "torch"]))])
    assert len(jobs) == 2 and [p.name for p in tmp_path.iterdir()] == [Path(folder.name).name]
    assert {options.compare_folder for _, options in jobs} == {str(Path(folder.name) / "0")}
    folder.cleanup()
