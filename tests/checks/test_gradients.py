"""Gradient facts the sample-file harness cannot express: table columns, modes, repeatability, options.

The sample layers in sample_layers/gradients.py carry their own expectations (test_samples.py);
here the issue's "Done when" items are asserted once more by name, with the line found from the
source so the tests point at the code they mean. They read the very runs tests/test_samples.py
makes of those layers (run_cli_shared, finite differences included), which it holds to exactly the
errors and warnings their comments state; a run of their own uses --no-numeric.
"""

import textwrap

import conftest
import numpy as np
import pytest
from conftest import line_in, run_cli, run_cli_shared

GRADIENTS = "sample_layers/gradients.py"


def line_of(text, file=GRADIENTS) -> int:
    """The line of `file` that contains `text` (exactly one)."""
    return conftest.line_of(text, file)


def sample_run(name):
    """The sample layer's run by tests/test_samples.py (finite differences included), shared with it."""
    return run_cli_shared([f"{GRADIENTS}:{name}", "--input-shape", "16,5", "--json"])


def errors_and_warnings(result):
    return {(f["code"], f["tensor"], f["location"]) for f in result.json()["findings"] if f["severity"] != "info"}


def test_stop_gradient_bias_is_none_gradient_at_the_stop_gradient_line():
    result = sample_run("StopGradientBias")
    assert result.exit_code == 1, result
    where = f"{GRADIENTS}:{line_of('tf.stop_gradient(self.b)')}"
    assert errors_and_warnings(result) == {("none-gradient", "b", where)}, result
    message = result.json()["findings"][0]["message"]
    assert "StopGradient (tf.stop_gradient)" in message, result
    rows = {v["name"]: v for v in result.json()["variables"]}
    assert rows["b"]["gradient_status"] == "none" and rows["b"]["trains_under_fit"] is False, result
    assert rows["kernel"]["gradient_status"] == "ok" and rows["kernel"]["trains_under_fit"] is True, result


def test_argmax_path_cuts_the_kernel_and_the_input_at_the_argmax_line():
    result = sample_run("ArgmaxRouting")
    assert result.exit_code == 1, result
    where = f"{GRADIENTS}:{line_of('tf.argmax(')}"
    assert errors_and_warnings(result) == {
        ("none-gradient", "kernel", where),
        ("input-gradient-none", "input", where),
    }, result
    assert all("ArgMax (tf.argmax)" in f["message"] for f in result.json()["findings"]), result
    assert result.json()["inputs"][0]["gradient_status"] == "none", result


def test_zero_initialised_weight_under_norm_is_nonfinite():
    result = sample_run("NormalisedZeroWeight")
    assert result.exit_code == 1, result
    where = f"{GRADIENTS}:{line_of('self.v / tf.norm(self.v)')}"
    assert errors_and_warnings(result) == {
        ("nonfinite-gradient", "v", where),
        ("nonfinite-gradient", "input", where),
    }, result
    assert result.json()["stochastic"] is False, result  # NaN == NaN here: not noise
    rows = {v["name"]: v for v in result.json()["variables"]}
    assert rows["v"]["gradient_status"] == "nonfinite" and rows["v"]["gradient_norm"] is None, result


def test_dead_relu_is_zero_gradient_and_does_not_train():
    result = sample_run("DeadRelu")
    assert result.exit_code == 0, result
    # Located at the op where the gradient dies (issue 10); the creation line stays in the inventory.
    where = f"{GRADIENTS}:{line_of('tf.nn.relu(tf.matmul(inputs, self.kernel) + self.bias)')}"
    assert errors_and_warnings(result) == {
        ("zero-gradient", tensor, where) for tensor in ("kernel", "bias", "input")
    }, result
    rows = {v["name"]: v for v in result.json()["variables"]}
    assert rows["bias"] == {**rows["bias"], "gradient_status": "zero", "gradient_norm": 0.0, "trains_under_fit": False}
    assert rows["bias"]["created_at"] == f"{GRADIENTS}:{line_of('Constant(-100.0)')}"


def test_layer_norm_like_gives_no_finding():
    # A plain-sum probe would see zero gradients here (NOTES.md 4): the projection must not.
    result = sample_run("LayerNormLike")
    assert result.exit_code == 0, result
    assert result.json()["findings"] == [], result
    assert {v["gradient_status"] for v in result.json()["variables"]} == {"ok"}, result


def test_raw_tf_variable_has_a_gradient_but_does_not_train_under_fit():
    result = run_cli_shared(["sample_layers/untracked.py:RawVariable", "--input-shape", "16,5", "--json"])
    rows = {v["name"]: v for v in result.json()["variables"]}
    assert rows["w"]["kind"] == "untracked", result
    assert rows["w"]["gradient_status"] == "ok" and rows["w"]["gradient_norm"] > 0, result
    assert rows["w"]["trains_under_fit"] is False, result
    assert rows["kernel"]["trains_under_fit"] is True, result


MODES = textwrap.dedent(
    """
    import tensorflow as tf
    import keras


    class CutWhenTraining(keras.layers.Layer):
        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")
            self.bias = self.add_weight(shape=(3,), initializer="zeros", name="bias")

        def call(self, inputs, training=False):
            bias = tf.stop_gradient(self.bias) if training else self.bias
            return tf.matmul(inputs, self.kernel) + bias
    """
)


@pytest.fixture
def modes(tmp_path):
    (tmp_path / "modes.py").write_text(MODES)
    return tmp_path


def test_both_training_modes_are_checked_and_the_failing_one_is_named(modes):
    result = run_cli(["modes.py:CutWhenTraining", "--input-shape", "4,5", "--json"], cwd=modes)
    assert result.exit_code == 1, result
    assert result.json()["training_modes"] == ["true", "false"], result
    assert errors_and_warnings(result) == {
        ("none-gradient", "bias", f"modes.py:{line_in(MODES, 'tf.stop_gradient(self.bias)')}")
    }, result
    assert "with training=True (with training=False it is ok)" in result.json()["findings"][0]["message"]


@pytest.mark.parametrize("flag, exit_code", [("--training", 1), ("--no-training", 0)])
def test_one_training_mode_when_asked(modes, flag, exit_code):
    # The mode and the exit status come from the probe and the gradient check: finite differences
    # and the reload are off (the run above has both, in both modes).
    quick = ["--no-numeric", "--no-reload"]
    result = run_cli(["modes.py:CutWhenTraining", "--input-shape", "4,5", flag, *quick, "--json"], cwd=modes)
    assert result.exit_code == exit_code, result
    assert result.json()["training_modes"] == [
        flag.strip("-").replace("no-training", "false").replace("training", "true")
    ]


def test_stochastic_layer_gives_repeatable_gradients():
    from gradcheck import check
    from gradcheck.layer.loading import load

    layer = load(f"{GRADIENTS}:DropoutDense", {}).layer
    first = check(layer, input_shape=(16, 5), numeric=False)
    second = check(layer, input_shape=(16, 5), numeric=False)  # its dropout state moved in between
    assert first.stochastic and first.training_modes == ("true", "false")
    norms = [(t.name, t.gradient_norm) for t in first.variables] + [(i.name, i.gradient_norm) for i in first.inputs]
    assert norms == [(t.name, t.gradient_norm) for t in second.variables] + [
        (i.name, i.gradient_norm) for i in second.inputs
    ]


def test_the_optimizer_step_is_undone_exactly():
    import keras

    from gradcheck import check

    layer = keras.layers.Dense(3)
    layer.build((8, 5))
    before = [np.array(w.numpy()) for w in layer.weights]
    report = check(layer, input_shape=(8, 5), numeric=False)
    assert {t.name: t.trains_under_fit for t in report.variables} == {"kernel": True, "bias": True}
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, layer.weights))


def test_vanishing_threshold_option_moves_the_line():
    assert {c for c, _, _ in errors_and_warnings(sample_run("SaturatedSigmoid"))} == {"vanishing-gradient"}
    args = [f"{GRADIENTS}:SaturatedSigmoid", "--input-shape", "16,5", "--no-numeric", "--json"]
    result = run_cli([*args, "--vanishing-threshold", "1e-20"])
    assert errors_and_warnings(result) == set(), result


def test_numpy_round_trip_is_located_without_a_graph():
    result = sample_run("NumpyRoundTrip")
    where = f"{GRADIENTS}:{line_of('hidden.numpy()')}"
    assert errors_and_warnings(result) == {
        ("none-gradient", "kernel", where),
        ("input-gradient-none", "input", where),
        ("trace-failed", None, None),
    }, result


def test_modes_that_trace_to_the_same_graph_are_checked_once():
    # Dense ignores `training`: both modes are reported, the second is not recomputed.
    from gradcheck.backends.tensorflow.tracing import VariableLog
    from gradcheck.layer.loading import load
    from gradcheck.layer.probe import make_probe
    from gradcheck.options import make_options

    options = make_options(input_shape=[(8, 5)], init={"units": 3})
    dense = make_probe(load("keras.layers:Dense", options.init), options, VariableLog())
    assert [t.mode for t in dense.traces] == ["true", "false"]
    assert [t.mode for t in dense.distinct_traces()] == ["true"]
    options = make_options(input_shape=[(8, 5)], init={"rate": 0.5})
    dropout = make_probe(load("keras.layers:Dropout", options.init), options, VariableLog())
    assert [t.mode for t in dropout.distinct_traces()] == ["true", "false"]


@pytest.mark.parametrize(
    "init, modes", [({"units": 3}, ["true"]), ({"units": 3, "recurrent_dropout": 0.3}, ["true", "false"])]
)
def test_loops_whose_modes_differ_only_in_their_functions_names_are_checked_once(init, modes):
    """An RNN's loop body and cond are functions renamed in every trace: without dropout its two
    modes are the same graph up to those names, and are checked once. A recurrent dropout mask
    lives only inside the body, and keeps both modes checked."""
    from gradcheck.backends.tensorflow.tracing import VariableLog
    from gradcheck.layer.loading import load
    from gradcheck.layer.probe import make_probe
    from gradcheck.options import make_options

    options = make_options(input_shape=[(4, 5, 3)], init=init)
    rnn = make_probe(load("keras.layers:SimpleRNN", options.init), options, VariableLog())
    assert [t.mode for t in rnn.traces] == ["true", "false"]
    assert [t.mode for t in rnn.distinct_traces()] == modes


def test_modes_whose_loop_bodies_differ_in_one_constant_are_both_checked():
    from gradcheck.backends.tensorflow.tracing import VariableLog
    from gradcheck.layer.loading import load
    from gradcheck.layer.probe import make_probe
    from gradcheck.options import make_options

    options = make_options(input_shape=[(4, 3)])
    probe = make_probe(load("tests/data/loop_layers.py:LoopScaledInTraining", options.init), options, VariableLog())
    assert [t.mode for t in probe.distinct_traces()] == ["true", "false"]
