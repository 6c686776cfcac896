"""A verdict to trust: a custom gradient is checked whatever stop_gradient lies around it, a
straight-through estimator is a surrogate gradient and not an error, and what cannot be compared
says so, with why."""

import json

import pytest
from conftest import ROOT, line_of, run_cli_shared

LAYERS = "tests/data/trust_layers.py"


def findings(name, *args):
    result = run_cli_shared([f"{LAYERS}:{name}", *args, "--no-reload", "--json"])
    document = result.json()
    return result, {(f["code"], f["tensor"], f["location"], f["severity"]) for f in document["findings"]}, document


def at(text):
    return f"{LAYERS}:{line_of(text, LAYERS)}"


@pytest.mark.parametrize(
    "name, line, tensors, function",
    [
        (
            "MishThenLayerNorm",
            "return self.norm(mish_missing_term(",
            {"dense.kernel", "dense.bias", "input"},
            ("mish_missing_term", "return upstream * t"),
        ),
        (
            "TemperedLogSumExp",
            "return logsumexp_tempered(tf.matmul(",
            {"kernel", "input"},
            ("logsumexp_tempered", "return upstream[..., None] * tf.nn.softmax("),
        ),
    ],
)
def test_a_wrong_custom_gradient_beside_a_library_stop_gradient_is_caught(name, line, tensors, function):
    result, found, document = findings(name, "--input-shape", "8,5")
    assert result.exit_code == 1, result
    assert found == {("gradient-mismatch", tensor, at(line), "error") for tensor in tensors}, result
    # The message names the gradient function to fix, at its def line (the line above its return).
    named, body = function
    where = f"{LAYERS}:{line_of(body, LAYERS) - 1}"
    suspect = f"Its path runs through the tf.custom_gradient applied at {at(line)}, whose gradient function is `{named}.<locals>.grad` at {where}: "
    assert all(suspect in f["message"] for f in document["findings"]), document["findings"]


def test_a_planted_error_in_a_post_norm_blocks_feed_forward_bias_is_caught():
    result, found, _ = findings("PostNormBlock", "--input-shape", "2,4,8")
    assert result.exit_code == 1, result
    errors = {item for item in found if item[3] == "error"}
    assert errors == {("gradient-mismatch", "up_bias", at("bias = bias_off_by_a_thousandth("), "error")}, result


def test_a_mismatch_names_each_gradient_function_on_its_path_nearest_first_as_one_cause():
    _, found, document = findings("TwoCustomGradients", "--input-shape", "8,5")
    applied = at("return softsign_exact(mish_missing_term(")
    assert found == {("gradient-mismatch", tensor, applied, "error") for tensor in ("kernel", "input")}
    wrong = f"{LAYERS}:{line_of('return upstream * t', LAYERS) - 1}"
    right = f"{LAYERS}:{line_of('return upstream / tf.square(1.0 + tf.abs(z))', LAYERS) - 1}"
    suspects = (
        f"Its path runs through 2 custom gradients (the tf.custom_gradient applied at {applied}, whose gradient "
        f"function is `mish_missing_term.<locals>.grad` at {wrong}; the tf.custom_gradient applied at {applied}, "
        f"whose gradient function is `softsign_exact.<locals>.grad` at {right}): check each against"
    )
    mismatches = [f for f in document["findings"] if f["code"] == "gradient-mismatch"]
    assert all(suspects in f["message"] for f in mismatches), mismatches
    assert {f["cause"] for f in mismatches} == {f"CustomGradient at {applied}"}


@pytest.mark.parametrize(
    "name, line",
    [
        ("RoundedByCustomGradient", "return round_straight_through(tf.matmul("),
        ("RoundedByStopGradient", "return hidden + tf.stop_gradient(tf.round(hidden) - hidden)"),
    ],
)
def test_a_straight_through_estimator_is_a_surrogate_gradient_in_either_spelling(name, line):
    result, found, document = findings(name, "--input-shape", "8,5")
    assert result.exit_code == 0, result
    assert found == {("surrogate-gradient", tensor, at(line), "info") for tensor in ("kernel", "input")}, result
    rows = [*document["variables"], *document["inputs"]]
    assert {row["name"]: row["numeric_verdict"] for row in rows} == {"kernel": "surrogate", "input": "surrogate"}


def test_a_path_finite_differences_cannot_follow_is_said_with_its_reason_and_counted():
    result, found, document = findings("NumpyScale", "--input-shape", "8,5")
    numpy_line = at("scale = tf.numpy_function(")
    skipped = {item for item in found if item[0] == "numeric-skipped"}
    assert skipped == {("numeric-skipped", "kernel", numpy_line, "warning")}, result
    kernel = next(row for row in document["variables"] if row["name"] == "kernel")
    assert kernel["numeric_verdict"] == "skipped"
    assert kernel["numeric_skip_reason"] == f"its path runs through tf.numpy_function at {numpy_line}, which has no gradient"
    text = run_cli_shared([f"{LAYERS}:NumpyScale", "--input-shape", "8,5", "--no-reload"])
    assert "1 tensor not compared with finite differences: `kernel`." in text.stdout, text


def test_no_report_has_a_skipped_comparison_without_its_reason():
    """Over every stored report (each sample layer, Keras's and keras-hub's own layers)."""
    seen = 0
    for path in sorted((ROOT / "tests" / "data" / "snapshots").glob("*.json")):
        document = json.loads(path.read_text())["document"]
        if document is None:
            continue
        for report in document.get("targets", [document]):  # one report, or one per backend
            for row in [*report["variables"], *report["inputs"]]:
                if row["numeric_verdict"] == "skipped":
                    seen += 1
                    assert row["numeric_skip_reason"], (path.name, row["name"])
    assert seen > 0  # the stored reports hold skipped comparisons to look at (NumpyRoundTrip, ...)


def test_a_saturated_clip_is_named_with_its_bound_for_every_tensor_it_starves():
    result, found, document = findings("SaturatedClip", "--input-shape", "8,5", "--no-numeric")
    line = at("return tf.clip_by_value(")
    assert {item for item in found if item[0] == "zero-gradient"} == {
        ("zero-gradient", tensor, line, "warning") for tensor in ("kernel", "bias", "input")
    }, result
    message = next(f["message"] for f in document["findings"] if f["tensor"] == "bias")
    assert "Minimum (tf.minimum, a clip's upper bound)" in message and "above the upper bound 1 on every entry" in message
    assert "a bias initialised far below zero" not in message  # the advice follows the bound, not a ReLU's


def test_a_closed_gate_is_named_for_the_tensors_it_multiplies():
    result, found, document = findings("ClosedHighway", "--input-shape", "8,5", "--no-numeric")
    gate, product = at("gate = tf.sigmoid("), at("return transform * gate")
    assert {item for item in found if item[0] == "vanishing-gradient"} == {
        ("vanishing-gradient", "wt", gate, "warning"),
        ("vanishing-gradient", "bt", gate, "warning"),
        ("vanishing-gradient", "wh", product, "warning"),
        ("vanishing-gradient", "bh", product, "warning"),
    }, result
    message = next(f["message"] for f in document["findings"] if f["tensor"] == "wh")
    assert f"multiplied by the output of Sigmoid (tf.sigmoid) at {gate}" in message and "Start the gate open" in message


def test_top_one_routing_gets_the_routers_advice():
    result, found, document = findings("TopOneRouter", "--input-shape", "8,5", "--no-numeric")
    router = next(f for f in document["findings"] if f["tensor"] == "router")
    assert (router["code"], router["location"]) == ("none-gradient", at("choice = keras.ops.one_hot("))
    assert "reaches the output only through ArgMax (tf.argmax)" in router["message"]
    assert "scale the chosen output by the probability of the choice" in router["message"]
    assert "tf.sigmoid(k * (a - b))" not in router["message"]


@pytest.mark.parametrize("seed", ["0", "1", "2"])
def test_layer_normalization_of_nearly_constant_rows_has_no_false_mismatch(seed):
    result = run_cli_shared(
        ["keras.layers:LayerNormalization", "--input-shape", "8,5", "--input-range", "0.5,0.5000001",
         "--seed", seed, "--no-reload", "--json"]
    )
    document = result.json()
    assert not [f for f in document["findings"] if f["code"] == "gradient-mismatch"], result
    assert {row["numeric_verdict"] for row in [*document["variables"], *document["inputs"]]} == {"ok"}, result
