"""Keras's own layers are correct: gradcheck must not raise an error (or a warning) on them, and their
gradients must agree with finite differences in float64. One run of each layer answers both."""

import pytest
from conftest import run_cli_shared

MHA_INPUTS = ["--input-shape", "2,5,8", "--input-shape", "2,5,8"]  # call(query, value): two arguments (NOTES.md 9)

BUILTINS = {
    "Dense": ["--init", "units=3", "--input-shape", "8,5"],
    "Conv2D": ["--init", "filters=2", "--init", "kernel_size=3", "--input-shape", "2,6,6,3"],
    "LSTM": ["--init", "units=3", "--input-shape", "4,5,3"],
    "LayerNormalization": ["--input-shape", "8,5"],
    "BatchNormalization": ["--input-shape", "8,5"],
    "Embedding": ["--init", "input_dim=10", "--init", "output_dim=4", "--input-shape", "8,5", "--input-dtype", "int32"],
    "GRU": ["--init", "units=3", "--input-shape", "4,5,3"],
    "Conv1D": ["--init", "filters=2", "--init", "kernel_size=3", "--input-shape", "2,7,3"],
    "GroupNormalization": ["--init", "groups=2", "--input-shape", "4,6"],
    "Dropout": ["--init", "rate=0.5", "--input-shape", "8,5"],
    "MultiHeadAttention": ["--init", "num_heads=2", "--init", "key_dim=4", *MHA_INPUTS],
}

# MultiHeadAttention's key bias truly gets no gradient (softmax ignores a shift shared by every key);
# float32 leaves rounding noise, decided once and reported as its own info, never as a warning.
NOISE = {"MultiHeadAttention": [("rounding-noise-gradient", "key.bias")]}


# The layers also run under every low-precision policy (--dtype-policy): the same run answers
# tests/test_dtype_policy.py's question for Keras's own layers, so each layer is checked once.
POLICIES = ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16")
UNDER_POLICIES = ("Dense", "LayerNormalization", "MultiHeadAttention", "Conv1D", "Conv2D", "Embedding")
POLICY_CODES = {"dtype-policy-ignored", "low-precision-loss", "low-precision-weight"}


def builtin(name):
    policies = [arg for policy in POLICIES for arg in ("--dtype-policy", policy)] if name in UNDER_POLICIES else []
    return run_cli_shared([f"keras.layers:{name}", *BUILTINS[name], *policies, "--json"])


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_layer_has_no_error_or_warning(name):
    result = builtin(name)
    assert result.exit_code == 0, result
    document = result.json()
    flagged = [(f["code"], f["tensor"]) for f in document["findings"] if f["severity"] != "info"]
    assert flagged == [], result
    noise = [(f["code"], f["tensor"]) for f in document["findings"] if f["code"] == "rounding-noise-gradient"]
    assert noise == NOISE.get(name, []), result
    assert all(t["kind"] != "untracked" for t in document["variables"]), result


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_layer_agrees_with_finite_differences_in_float64(name):
    document = builtin(name).json()
    assert [f for f in document["findings"] if f["code"] in ("gradient-mismatch", "float32-fallback")] == []
    rows = [*document["variables"], *document["inputs"]]
    verdicts = {row["name"]: row["numeric_verdict"] for row in rows if row["numeric_verdict"] is not None}
    trainable = {t["name"] for t in document["variables"] if t["kind"] == "trainable"}
    differentiable = {i["name"] for i in document["inputs"] if i["differentiable"]}
    assert set(verdicts) == trainable | differentiable, document
    assert set(verdicts.values()) == {"ok"}, document
    # MultiHeadAttention's key bias: its rounding noise must sit under the floor.
    assert all(t["numeric_error"] < 1e-5 for t in document["variables"] if t["numeric_error"] is not None), document


def test_batch_normalization_statistics_are_reported_as_non_trainable():
    result = builtin("BatchNormalization")
    infos = {(f["code"], f["tensor"]) for f in result.json()["findings"]}
    assert infos == {("non-trainable-variable", "moving_mean"), ("non-trainable-variable", "moving_variance")}, result
    kinds = {t["name"]: t["kind"] for t in result.json()["variables"]}
    assert kinds == {
        "gamma": "trainable",
        "beta": "trainable",
        "moving_mean": "non-trainable",
        "moving_variance": "non-trainable",
    }, result


@pytest.mark.parametrize("name", sorted(UNDER_POLICIES))
def test_keras_builtins_pass_under_every_policy(name):
    result = builtin(name)
    assert result.exit_code == 0, result
    assert {f["code"] for f in result.json()["findings"]} & POLICY_CODES == set(), result
    assert [r["status"] for r in result.json()["dtype_policies"]] == ["ok"] * 4, result


@pytest.mark.parametrize("seed", ["0", "1", "2", "3"])
def test_rounding_noise_is_decided_the_same_way_for_every_seed(seed):
    # Seed 0 is the default: the table's own run of the layer.
    result = (
        builtin("MultiHeadAttention")
        if seed == "0"
        else run_cli_shared(
            ["keras.layers:MultiHeadAttention", *BUILTINS["MultiHeadAttention"], "--seed", seed, "--json"]
        )
    )
    assert {(f["code"], f["tensor"]) for f in result.json()["findings"]} == {("rounding-noise-gradient", "key.bias")}, (
        result
    )
