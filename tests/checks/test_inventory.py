"""Inventory cases the sample-file harness cannot express: factories, Models, instances, the API."""

import textwrap

import pytest
from conftest import line_in, line_of, run_cli, run_cli_shared

from gradcheck import check

FACTORIES = textwrap.dedent(
    """
    import tensorflow as tf
    import keras


    def closure_layer():
        scale = tf.Variable(tf.ones((3,)))

        class ClosureLayer(keras.layers.Layer):
            def call(self, inputs):
                return inputs[:, :3] * scale

        return ClosureLayer()


    def functional_model():
        inputs = keras.Input((5,))
        hidden = keras.layers.Dense(4, activation="tanh", name="hidden")(inputs)
        return keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))


    INSTANCE = keras.layers.Dense(3, name="ready_made")


    def not_a_layer():
        return 42
    """
)


UNTRACKED = "sample_layers/untracked.py"


@pytest.fixture
def factories(tmp_path):
    path = tmp_path / "factories.py"
    path.write_text(FACTORIES)
    return tmp_path


def test_closure_variable_of_a_factory_is_untracked(factories):
    result = run_cli(["factories.py:closure_layer", "--input-shape", "4,5", "--no-numeric", "--json"], cwd=factories)
    assert result.exit_code == 1, result
    findings = [(f["code"], f["tensor"], f["location"]) for f in result.json()["findings"]]
    assert findings == [
        ("untracked-variable", "scale", f"factories.py:{line_in(FACTORIES, 'scale = tf.Variable(')}")
    ], result


def test_functional_model_names_weights_by_inner_layer(factories):
    result = run_cli(["factories.py:functional_model", "--input-shape", "4,5", "--no-numeric", "--json"], cwd=factories)
    assert result.exit_code == 0, result
    rows = {(v["name"], v["layer"], v["kind"]) for v in result.json()["variables"]}
    assert rows == {
        ("hidden.kernel", "hidden", "trainable"),
        ("hidden.bias", "hidden", "trainable"),
        ("head.kernel", "head", "trainable"),
        ("head.bias", "head", "trainable"),
    }, result


def test_layer_instance_target(factories):
    result = run_cli(["factories.py:INSTANCE", "--input-shape", "4,5", "--no-numeric", "--json"], cwd=factories)
    assert result.exit_code == 0, result
    assert {v["name"] for v in result.json()["variables"]} == {"kernel", "bias"}, result


def test_factory_returning_something_else_is_refused(factories):
    result = run_cli(["factories.py:not_a_layer", "--input-shape", "4,5"], cwd=factories)
    assert result.exit_code == 2, result
    assert "returned int, not a Keras Layer or Model" in result.stderr, result
    assert "Traceback" not in result.stderr + result.stdout


def test_nested_model_weights_are_named_by_attribute_path():
    # The run tests/test_samples.py makes of the sample layer, shared.
    result = run_cli_shared(["sample_layers/untracked.py:NestedBlocksModel", "--input-shape", "16,5", "--json"])
    names = {v["name"]: v["kind"] for v in result.json()["variables"]}
    assert names["blocks[0].proj.kernel"] == "trainable", result
    assert names["blocks[1].scale"] == "untracked", result
    assert names["head.kernel"] == "trainable", result


def test_api_returns_the_same_findings_as_the_cli():
    from gradcheck import check

    # numeric=False: test_samples.py holds the same run, finite differences included, to its errors.
    report = check("sample_layers/untracked.py:RawVariable", input_shape=(16, 5), numeric=False)
    assert not report.ok
    assert [(f.code, f.tensor, f.location) for f in report.findings if f.severity == "error"] == [
        ("untracked-variable", "w", f"{UNTRACKED}:{line_of('self.w = tf.Variable(', UNTRACKED)}"),
    ]


@pytest.mark.parametrize("target", ["quiet_module:INSTANCE", "quiet_file.py:INSTANCE"])
def test_loading_writes_nothing_into_the_users_folder(tmp_path, target, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as for a user without PYTHONDONTWRITEBYTECODE
    (tmp_path / f"{target.split(':')[0].removesuffix('.py')}.py").write_text(FACTORIES)
    # The reload stays on: it writes a .keras file (into a folder of its own). Finite differences write nothing.
    result = run_cli([target, "--input-shape", "4,5", "--no-numeric", "--json"], cwd=tmp_path)
    assert result.exit_code == 0, result
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.split(":")[0].removesuffix(".py") + ".py"]


def test_weights_left_by_an_abandoned_build_are_named_as_copies():
    result = run_cli(
        [
            "tests/data/rebuilt_layers.py:LeakyRecurrent",
            "--input-shape",
            "4,5,2",
            "--no-numeric",
            "--no-reload",
            "--json",
        ]
    )
    document = result.json()
    decay = line_of("# raw variable from a tensor", "tests/data/rebuilt_layers.py")
    assert {(f["code"], f["tensor"], f["location"]) for f in document["findings"] if f["severity"] == "error"} == {
        ("untracked-variable", "rnn.cell.decay", f"tests/data/rebuilt_layers.py:{decay}"),
        ("unused-variable", "rnn.cell.w", None),
        ("unused-variable", "rnn.cell.u", None),
    }, result
    # Each name twice: the copy from the abandoned build, unread, and the one call() reads.
    rows = [(v["name"], v["read_by_call"]) for v in document["variables"] if v["kind"] == "trainable"]
    assert sorted(rows) == [("rnn.cell.u", False), ("rnn.cell.u", True), ("rnn.cell.w", False), ("rnn.cell.w", True)]
    unused = [f["message"] for f in document["findings"] if f["code"] == "unused-variable"]
    assert all(
        m.startswith("`rnn.cell.") and "that call() never reads, beside another `rnn.cell." in m for m in unused
    ), unused
    assert all("a copy left by an earlier build, never trained and saved for nothing" in m for m in unused), unused


def test_two_tensors_shown_with_one_name_keep_their_own_facts():
    report = check("tests/data/identity_layers.py:TwoKernels", input_shape=(6, 4), numeric=False, reload=False)
    rows = {(row.name, row.kind): row for row in report.variables}
    assert set(rows) == {("kernel", "trainable"), ("kernel", "untracked")}
    tracked, hidden = rows["kernel", "trainable"], rows["kernel", "untracked"]
    # The weight's gradient is zero (it is multiplied by 0); the closure's variable is not a source
    # of the layer's gradients at all. Keyed by name, one row's facts would land on both.
    assert (tracked.gradient_status, tracked.trains_under_fit) == ("zero", False)
    assert (hidden.gradient_status, hidden.gradient_norm) == (None, None)
    where = "tests/data/identity_layers.py"
    assert [(f.code, f.tensor, f.location) for f in report.findings] == [
        ("untracked-variable", "kernel", f"{where}:{line_of('hidden = tf.Variable', where)}"),
        # located at the product that zeroes it, which the message names
        ("zero-gradient", "kernel", f"{where}:{line_of('* 0.0 + PROJECT(inputs)', where)}"),
    ]
    zero = next(f for f in report.findings if f.code == "zero-gradient")
    assert "It dies at Mul (a product)" in zero.message and "which is zero on every entry" in zero.message
