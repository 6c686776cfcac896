"""Layers gradcheck has never been tuned on: keras-hub's. They are correct, so no error and no
warning other than the honest one about attention's key bias (see test_keras_builtins.py)."""

import importlib.util

import pytest
from conftest import run_cli_shared

# Looked up, not imported: the layers are imported by gradcheck's worker, and importing keras_hub
# here would cost every xdist worker TensorFlow's and keras_hub's import while it collects.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("keras_hub") is None, reason="needs keras-hub (the test extra)"
)

PEERS = {
    "TransformerEncoder": ["--init", "intermediate_dim=8", "--init", "num_heads=2", "--input-shape", "2,5,8"],
    "TransformerDecoder": ["--init", "intermediate_dim=8", "--init", "num_heads=2", "--input-shape", "2,5,8"],
    "RotaryEmbedding": ["--input-shape", "2,5,8"],
    "PositionEmbedding": ["--init", "sequence_length=5", "--input-shape", "2,5,8"],
    "SinePositionEncoding": ["--input-shape", "2,5,8"],
    "ReversibleEmbedding": [
        "--init",
        "input_dim=20",
        "--init",
        "output_dim=8",
        "--input-shape",
        "2,5",
        "--input-dtype",
        "int32",
    ],
    "TokenAndPositionEmbedding": [
        "--init",
        "vocabulary_size=20",
        "--init",
        "sequence_length=5",
        "--init",
        "embedding_dim=8",
        "--input-shape",
        "2,5",
        "--input-dtype",
        "int32",
    ],
}


# Attention's key bias gets only float32 rounding noise: an info of its own, never a warning.
NOISE = {
    "TransformerEncoder": [("rounding-noise-gradient", "key.bias")],
    "TransformerDecoder": [("rounding-noise-gradient", "key.bias")],
}


def peer(name):
    return run_cli_shared([f"keras_hub.layers:{name}", *PEERS[name], "--json"])


@pytest.mark.parametrize("name", sorted(PEERS))
def test_keras_hub_layer_is_not_flagged(name):
    result = peer(name)
    assert result.exit_code == 0, result
    findings = result.json()["findings"]
    assert [(f["code"], f["tensor"]) for f in findings if f["severity"] != "info"] == [], result
    noise = [(f["code"], f["tensor"]) for f in findings if f["code"] == "rounding-noise-gradient"]
    assert noise == NOISE.get(name, []), result


@pytest.mark.parametrize("name", ["PositionEmbedding", "SinePositionEncoding"])
def test_position_layers_report_an_input_used_for_its_shape_only(name):
    result = peer(name)
    codes = {(f["code"], f["tensor"]) for f in result.json()["findings"]}
    assert ("input-unused", "input") in codes, result
