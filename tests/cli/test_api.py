"""The Python API and pytest helper, determinism, and the comforts of the command (help, logs, colour)."""

import io
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, line_of, run_cli, run_cli_shared

# Where RawVariable makes its untracked `w`: the location its finding must give.
RAW_W = f"sample_layers/untracked.py:{line_of('self.w = tf.Variable(tf.ones((3,)))', 'sample_layers/untracked.py')}"


def test_check_in_a_plain_python_session():
    """check() imports TensorFlow itself, with the garbage collector paused for the import
    (backends/tensorflow/runtime.py): the caller's session gets its collector back on."""
    code = (
        "import gc\n"
        "from gradcheck import check\n"
        "report = check('sample_layers/untracked.py:RawVariable', input_shape=(16, 5), numeric=False)\n"
        "print(report.ok, [(f.code, f.tensor, f.location) for f in report.findings if f.severity == 'error'])\n"
        "print(gc.isenabled())\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed
    assert completed.stdout == (
        f"False [('untracked-variable', 'w', '{RAW_W}')]\nTrue\n"
    ), completed


def test_check_in_a_pytest_test():
    from gradcheck import check

    report = check("sample_layers/classic.py:SimpleDense", input_shape="16,5", init={"units": 4}, numeric=False)
    assert report.ok
    assert [(v.name, v.kind, v.gradient_status) for v in report.variables] == [("kernel", "trainable", "ok")]


def test_check_in_process_stays_on_the_backend_keras_was_imported_with(monkeypatch):
    """A module that sets KERAS_BACKEND after this process imported Keras (on TensorFlow) changes
    neither Keras nor the backend check() reads the layer with; the report says so at the line."""
    from gradcheck import check

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # put back after the module sets it
    report = check("tests/data/sets_keras_backend.py:Scale", input_shape=(4, 3), numeric=False, reload=False)
    assert (report.backend, report.ok, "tensorflow" in report.versions) == ("tensorflow", True, True)
    line = line_of('os.environ["KERAS_BACKEND"] = "jax"', "tests/data/sets_keras_backend.py")
    assert [(f.code, f.location) for f in report.findings] == [
        ("backend-set-after-import", f"tests/data/sets_keras_backend.py:{line}")
    ]


def test_check_takes_a_layer_instance():
    import keras

    from gradcheck import check

    report = check(keras.layers.Dense(3), input_shape=(8, 5), numeric=False)
    assert report.ok and {v.name for v in report.variables} == {"kernel", "bias"}


def test_the_checks_compile_without_grappler_and_the_callers_setting_is_put_back():
    """backend().compiling() (runtime.unoptimized_graphs in backends/tensorflow): the check's functions are compiled without the graph
    optimizer (call() sees the setting while it is traced), and the caller's own setting is back
    afterwards, whichever it was, also when the layer raises."""
    import keras
    import tensorflow as tf

    from gradcheck import GradcheckError, check

    seen = []

    class Records(keras.layers.Dense):
        def call(self, inputs):
            seen.append(tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"])
            return super().call(inputs)

    class Raises(keras.layers.Layer):
        def call(self, inputs):
            raise ValueError("a layer that fails")

    try:
        for callers in (False, True):
            tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": callers})
            seen.clear()
            check(Records(3), input_shape=(8, 5), numeric=False, reload=False)
            assert seen and set(seen) == {True}, seen
            assert tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"] is callers
            with pytest.raises(GradcheckError, match="a layer that fails"):
                check(Raises(), input_shape=(8, 5))
            assert tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"] is callers
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})


def test_assert_trainable_passes_a_clean_layer_and_returns_the_report():
    from gradcheck.testing import assert_trainable

    report = assert_trainable(
        "sample_layers/classic.py:DenseWithBias", input_shape=(16, 5), init={"units": 4}, numeric=False
    )
    assert report.ok


def test_assert_trainable_lists_the_findings_as_the_cli_does():
    from gradcheck.testing import assert_trainable

    with pytest.raises(AssertionError) as raised:
        assert_trainable("sample_layers/untracked.py:RawVariable", input_shape=(16, 5), numeric=False)
    message = str(raised.value)
    assert message.startswith("gradcheck found 1 problem in sample_layers/untracked.py:RawVariable:\n")
    quiet = run_cli_shared(
        ["sample_layers/untracked.py:RawVariable", "--input-shape", "16,5", "--no-numeric", "--quiet"]
    )
    assert message.split("\n", 1)[1] == quiet.stdout.rstrip(), quiet


def test_quiet_prints_only_findings(cli):
    clean = cli(
        [
            "sample_layers/classic.py:SimpleDense",
            "--init",
            "units=4",
            "--input-shape",
            "16,5",
            "--no-numeric",
            "--quiet",
        ]
    )
    assert (clean.exit_code, clean.stdout) == (0, ""), clean
    broken = run_cli_shared(
        ["sample_layers/untracked.py:RawVariable", "--input-shape", "16,5", "--no-numeric", "--quiet"]
    )
    assert broken.exit_code == 1
    headers = [line.split() for line in broken.stdout.splitlines() if line.startswith("ERROR")]
    assert headers == [["ERROR", "untracked-variable", "w", RAW_W]], broken
    assert "FAILED" not in broken.stdout and "gradient norm" not in broken.stdout


def test_help_and_usage_errors_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from gradcheck.cli import main\n"
        "codes = [CliRunner().invoke(main, args).exit_code for args in "
        "(['--help'], ['x.py:Y', '--input-shape', '4,0'], ['--format', 'xml'], ['x.py:Y'])]\n"
        "print(codes, 'tensorflow' in sys.modules, 'keras' in sys.modules, 'rich' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert completed.stdout == "[0, 2, 2, 2] False False False\n", completed


def test_a_stdout_that_cannot_encode_the_report_gets_replacements(monkeypatch):
    """A real text report (it draws ▶ and ·) written to a stdout whose encoding is ASCII, as under
    PYTHONIOENCODING=ascii: `?` for what it lacks, not a UnicodeEncodeError that loses the report.
    (The real command's own clean run is tests/test_config.py's.)"""
    from gradcheck.cli.destination import write_output

    report = run_cli_shared(["sample_layers/classic.py:SimpleDense", "--init", "units=4", "--input-shape", "16,5"])
    assert report.exit_code == 0 and "\u25b6" in report.stdout, report  # the control: it has a character ASCII lacks
    written = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(written, encoding="ascii"))
    write_output(None, report.stdout)
    text = written.getvalue().decode("ascii")
    assert "OK sample_layers/classic.py:SimpleDense" in text
    assert re.search(r"TensorFlow \S+ \? Keras", text), text
    assert text == report.stdout.encode("ascii", errors="replace").decode("ascii")


def test_a_stdout_closed_while_the_checks_ran_is_an_error_and_its_fd_is_pointed_at_devnull(monkeypatch):
    """The reader went during the checks: the write fails (EPIPE), which is one paragraph, and the
    descriptor is pointed at /dev/null so that the interpreter's last flush cannot fail again."""
    from gradcheck import GradcheckError
    from gradcheck.cli.destination import write_output

    reading, writing = os.pipe()
    stream = open(writing, "w", encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        write_output(None, "before\n")  # the reader is still there
        assert os.read(reading, 100) == b"before\n"
        os.close(reading)
        with pytest.raises(GradcheckError) as raised:
            write_output(None, "the report\n")
        assert str(raised.value).startswith("stdout was closed before the report was written")
        os.write(writing, b"no EPIPE any more")  # /dev/null takes it
        assert os.path.samestat(os.fstat(writing), os.stat(os.devnull))
    finally:
        stream.close()


def test_no_color_gives_plain_text_even_when_colour_is_forced(monkeypatch):
    # In-process: colour is decided by the environment when the report is drawn, not at import.
    args = ["sample_layers/untracked.py:RawVariable", "--input-shape", "16,5", "--no-numeric", "--quiet"]
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    forced = run_cli(args)
    assert "\x1b[" in forced.stdout, forced  # the control: this path can colour
    monkeypatch.setenv("NO_COLOR", "1")
    plain = run_cli(args)
    assert plain.exit_code == 1 and "untracked-variable" in plain.stdout
    assert "\x1b[" not in plain.stdout, plain


def test_pre_commit_hook_definition():
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    for line in ("- id: gradcheck", "entry: gradcheck", "language: python", "pass_filenames: false"):
        assert line in text


def test_check_applies_inline_comments_and_ignore_rules_as_the_command_does():
    from gradcheck import check

    target = "tests/data/gate_project/layers.py:FrozenStem"
    report = check(target, input_shape=(8, 5), reload=False)
    assert report.ok and report.count("error") == 0 and report.ignored_count == 3
    assert {f.ignored_by.rsplit(":", 1)[0] for f in report.findings if f.ignored} == {
        "comment at tests/data/gate_project/layers.py"
    }
    ruled = check(
        "sample_layers/gradients.py:StopGradientBias",
        input_shape=(8, 5),
        reload=False,
        ignore=[{"code": "none-gradient", "tensor": "b", "reason": "held on purpose"}],
    )
    [item] = [f for f in ruled.findings if f.code == "none-gradient"]
    assert (item.ignored, item.ignore_reason, item.ignored_by) == (
        True,
        "held on purpose",
        "check(ignore=...) ignore none-gradient:b",
    )
    assert ruled.ok
