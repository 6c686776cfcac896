"""Issue 10's classes of layer, each with a layer of the tests' own (tests/data/accuracy_layers.py).

Exit status, finding code, tensor and location are asserted exactly; the line is found from the
layer's source by its `# here:` comment, so the file may change.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, run_cli, run_cli_shared

LAYERS = "tests/data/accuracy_layers.py"


def line_of(text: str, file: str = LAYERS) -> int:
    """The line of `file` that contains `text` (exactly one)."""
    lines = [n for n, line in enumerate((ROOT / file).read_text().splitlines(), 1) if text in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


def at(text: str) -> str:
    return f"{LAYERS}:{line_of(text)}"


def run(name: str, *options: str):
    """The layer checked once per process for these options: tests reading one run share it."""
    return run_cli_shared([f"{LAYERS}:{name}", "--input-shape", "16,5", *options, "--json"])


def findings(result, *, infos: bool = False) -> set:
    return {
        (f["code"], f["tensor"], f["location"]) for f in result.json()["findings"] if infos or f["severity"] != "info"
    }


def rows(result) -> dict:
    return {row["name"]: row for row in [*result.json()["variables"], *result.json()["inputs"]]}


# --- outputs of any structure ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["NestedTuple", "NestedDict"])
def test_a_weight_feeding_only_a_deep_output_gets_its_gradient(name):
    result = run(name)
    assert result.exit_code == 0, result
    assert findings(result, infos=True) == set(), result
    assert rows(result)["deep"]["gradient_status"] == "ok", result
    assert rows(result)["deep"]["numeric_verdict"] == "ok", result


def test_output_leaves_are_named_by_their_index_path():
    from gradcheck.backends.tensorflow.leaves import float_leaves
    from gradcheck.backends.tensorflow.runtime import tensorflow

    tf, _ = tensorflow()
    y = tf.ones((2, 3))
    names = [n for n, _ in float_leaves(tf, (y, (y, [y, tf.ones((2,), tf.int32)])))]
    assert names == ["output[0]", "output[1][0]", "output[1][1][0]"]
    names = [n for n, _ in float_leaves(tf, {"b": {"c": y}, "a": y})]
    assert names == ['output["a"]', 'output["b"]["c"]']
    assert [n for n, _ in float_leaves(tf, [y])] == ["output"]


@pytest.mark.parametrize("name", ["SparseOutput", "RaggedOutput"])
def test_sparse_and_ragged_outputs_are_checked_through_their_values(name):
    result = run(name)
    assert result.exit_code == 0, result
    assert findings(result, infos=True) == set(), result
    assert {row["numeric_verdict"] for row in rows(result).values()} == {"ok"}, result


# --- --training / --no-training ---------------------------------------------------------------------


def test_no_training_is_honoured_by_every_call():
    result = run("TrainingBranchRaises", "--no-training")
    assert result.exit_code == 0, result
    assert findings(result, infos=True) == set(), result
    assert result.json()["training_modes"] == ["false"], result
    assert rows(result)["kernel"]["numeric_verdict"] == "ok", result


def test_a_training_branch_that_raises_still_stops_the_default_check():
    result = run("TrainingBranchRaises")
    assert result.exit_code == 2, result
    assert "training mode is not supported yet" in result.stderr, result


# --- state that is not a weight ---------------------------------------------------------------------


def test_stateful_lstm_passes_clean_with_its_states_listed_as_state():
    result = run_cli(
        ["keras.layers:LSTM", "--init", "units=4", "--init", "stateful=True", "--input-shape", "16,3,5", "--json"]
    )
    assert result.exit_code == 0, result
    assert findings(result, infos=True) == set(), result  # no untracked-variable, not stochastic
    assert result.json()["stochastic"] is False, result
    kinds = {name: row["kind"] for name, row in rows(result).items() if "kind" in row}
    assert kinds == {
        "cell.kernel": "trainable",
        "cell.recurrent_kernel": "trainable",
        "cell.bias": "trainable",
        "states[0]": "state",
        "states[1]": "state",
        "cell.seed_generator.state": "state",
    }, result
    verdicts = {name: row["numeric_verdict"] for name, row in rows(result).items() if row.get("kind") != "state"}
    assert set(verdicts.values()) == {"ok"}, result  # the finite-difference check ran


def test_stateful_lstm_report_repeats():
    from gradcheck import check

    # The gradient norms are compared, not the finite differences or the reload: those are off.
    keywords = {"init": {"units": 4, "stateful": True}, "input_shape": (16, 3, 5), "numeric": False, "reload": False}
    first = check("keras.layers:LSTM", **keywords)
    second = check("keras.layers:LSTM", **keywords)
    assert [t.gradient_norm for t in first.variables] == [t.gradient_norm for t in second.variables]


# --- a backward pass that raises ------------------------------------------------------------------


def test_backward_that_raises_is_a_finding_at_the_py_function_line():
    result = run("PyFunctionBackward")
    assert result.exit_code == 1, result
    assert findings(result, infos=True) == {("backward-failed", None, at("# here: backward"))}, result
    [made] = result.json()["findings"]
    assert "the gradient of EagerPyFunc (tf.py_function)" in made["message"], result
    assert "InvalidArgumentError: Inputs to operation AddN" in made["message"], result
    assert "\n" not in made["message"], result
    assert {row["numeric_verdict"] for row in rows(result).values()} == {"skipped"}, result


# --- dtype policies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float16"])
def test_keras_dense_under_a_dtype_policy_agrees_with_finite_differences(policy):
    result = run_cli(
        ["keras.layers:Dense", "--init", "units=3", "--init", f"dtype={policy}", "--input-shape", "16,5", "--json"]
    )
    assert result.exit_code == 0, result
    assert findings(result, infos=True) == set(), result
    # The float64 copy holds the layer's weights whatever its policy, so the check runs in float64.
    assert {row["numeric_verdict"] for row in rows(result).values()} == {"ok"}, result


# --- float32-fallback (issue 12) --------------------------------------------------------------------


def test_a_float32_constant_is_no_float32_computation():
    result = run_cli([f"{LAYERS}:ScaledAttention", "--input-shape", "4,6,8", "--json"])
    assert result.exit_code == 0, result
    assert findings(result, infos=True) == set(), result
    assert {row["numeric_verdict"] for row in rows(result).values()} == {"ok"}, result


def test_float32_computation_on_the_path_is_one_finding_naming_the_op_and_the_fix():
    result = run("HardCodedFloat32")
    assert result.exit_code == 0, result
    assert findings(result, infos=True) == {("float32-fallback", None, at("# here: cast"))}, result
    [made] = result.json()["findings"]
    assert f"Cast to float32 at {at('# here: cast')}" in made["message"], result
    assert "`ops.cast(..., x.dtype)`" in made["message"], result
    assert rows(result)["kernel"]["numeric_verdict"] == "float32-fallback", result


def test_variable_created_in_call_is_named_by_the_users_local_name():
    result = run("NewVariableEachCall", "--no-numeric")  # a finding of the probe, not of finite differences
    assert result.exit_code == 1, result
    # The layer's trace fails too (a variable made inside a tf.function): a warning of its own.
    assert findings(result) == {("variable-created-in-call", "w", at("# here: w")), ("trace-failed", None, None)}, (
        result
    )


# --- a step that follows the function's scale ---------------------------------------------------


def test_layer_norm_over_nearly_constant_rows_is_no_mismatch():
    result = run("LayerNormTinyEpsilon", "--input-range", "1,1.00001")
    assert result.exit_code == 0, result
    # The gradient really is huge there (a true warning); finite differences agree with it.
    assert {code for code, _, _ in findings(result, infos=True)} == {"exploding-gradient"}, result
    assert rows(result)["input"]["numeric_verdict"] == "ok", result
    assert rows(result)["gamma"]["numeric_verdict"] == "ok", result


# A true relative error of 1e-3 is still caught, and is the only finding: tests/test_numeric.py, in its run
# of SlightlyOffGradient.


# --- where a gradient dies or explodes ----------------------------------------------------------


@pytest.mark.parametrize(
    "name, code, line, tensors",
    [
        ("DeadReluAtOp", "zero-gradient", "# here: relu", {"kernel", "bias", "input"}),
        ("SaturatedSigmoidAtOp", "vanishing-gradient", "# here: sigmoid", {"kernel", "input"}),
        ("ExplodingExpAtOp", "exploding-gradient", "# here: exp", {"kernel", "input"}),
    ],
)
def test_warning_points_at_the_op_where_the_gradient_dies_or_explodes(name, code, line, tensors):
    result = run(name)
    assert result.exit_code == 0, result
    assert findings(result) == {(code, tensor, at(line)) for tensor in tensors}, result
    op = {
        "zero-gradient": "Relu (tf.nn.relu)",
        "vanishing-gradient": "Sigmoid (tf.sigmoid)",
        "exploding-gradient": "Exp (tf.exp)",
    }[code]
    assert all(f"at {op} at {at(line)}" in f["message"] for f in result.json()["findings"]), result


def test_the_creation_line_stays_in_the_inventory():
    result = run("DeadReluAtOp")
    assert rows(result)["kernel"]["created_at"] == at("# here: kernel made"), result


def test_a_bias_before_a_normalisation_is_rounding_noise_info():
    result = run("BiasBeforeNormalisation")
    assert result.exit_code == 0, result
    assert findings(result, infos=True) == {("rounding-noise-gradient", "bias", at("# here: bias made"))}, result
    assert rows(result)["bias"]["gradient_status"] == "noise", result
    assert rows(result)["kernel"]["gradient_status"] == "ok", result


# Rounding noise decided the same way for every seed: tests/test_keras_builtins.py, beside the run of seed 0.


def test_a_metric_the_layer_holds_is_state_not_an_untracked_variable():
    result = run("DenseWithMetric")
    assert result.exit_code == 0, result
    assert findings(result, infos=True) == set(), result
    assert {name: row["kind"] for name, row in rows(result).items() if "kind" in row} == {
        "kernel": "trainable",
        "activity.total": "state",
        "activity.count": "state",
    }, result
