"""The finite-difference check: verdicts on correct layers, the float32 fallback, and its messages.

Wrong custom gradients, the stable softplus and the ReLU kink are sample layers
(sample_layers/custom_gradients.py); tests/test_samples.py checks their exact findings.
"""

from conftest import run_cli, run_cli_shared

from gradcheck import check

# Keras's own layers (Dense, Conv2D, LSTM, normalisations, MultiHeadAttention ...) are compared with
# finite differences in float64 by tests/test_keras_builtins.py, in the same run that checks them
# for false alarms.


def verdicts(report) -> dict:
    rows = [*report.variables, *report.inputs]
    return {row.name: row.numeric_verdict for row in rows if row.numeric_verdict is not None}


def test_float32_inside_falls_back_only_on_that_path():
    report = check("sample_layers/custom_gradients.py:Float32Inside", input_shape=(16, 5))
    assert verdicts(report) == {"kernel": "float32-fallback", "bias": "ok", "input": "float32-fallback"}
    assert report.ok


def test_layer_that_cannot_run_in_float64_is_checked_in_float32_and_says_why():
    # A raw float32 tf.Variable stays float32 in the twin, so the float64 call fails on mixed dtypes.
    report = check("sample_layers/untracked.py:RawVariable", input_shape=(16, 5), reload=False)
    # The untracked-variable error already says why (issue 12): no float32-fallback beside it.
    assert [f.code for f in report.findings] == ["untracked-variable"], report
    assert set(verdicts(report).values()) == {"float32-fallback"}
    assert not [f for f in report.findings if f.code == "gradient-mismatch"]


def test_relative_error_of_1e3_is_caught_with_tape_and_numeric_values():
    # The run tests/test_samples.py makes of the sample layer, shared.
    result = run_cli_shared(
        ["sample_layers/custom_gradients.py:SlightlyOffGradient", "--input-shape", "16,5", "--json"]
    )
    assert result.exit_code == 1, result
    assert {f["code"] for f in result.json()["findings"]} == {"gradient-mismatch"}, result  # and nothing else
    [mismatch] = [f for f in result.json()["findings"] if f["code"] == "gradient-mismatch"]
    assert mismatch["tensor"] == "bias"
    assert "relative error 1.0e-03" in mismatch["message"], mismatch
    assert "4 entries disagree" in mismatch["message"], mismatch
    bias = next(v for v in result.json()["variables"] if v["name"] == "bias")
    assert bias["numeric_verdict"] == "mismatch" and 9e-4 < bias["numeric_error"] < 1.1e-3


def test_exhaustive_checks_every_entry_and_names_the_worst():
    args = ["sample_layers/custom_gradients.py:FlippedGradient", "--input-shape", "16,5", "--json"]
    default = run_cli_shared(args).json()  # tests/test_samples.py's run of the sample layer
    exhaustive = run_cli([*args, "--exhaustive"]).json()
    message = lambda doc: next(f["message"] for f in doc["findings"] if f["code"] == "gradient-mismatch")  # noqa: E731
    assert "entries disagree" not in message(default)  # 80 entries: above the per-entry size
    assert "80 entries disagree, worst: [" in message(exhaustive)


def test_tolerance_options_are_applied():
    # An rtol of 1e-2 lets the planted 1e-3 error through: the tolerance is the user's to set.
    report = check("sample_layers/custom_gradients.py:SlightlyOffGradient", input_shape=(16, 5), rtol=1e-2)
    assert verdicts(report)["bias"] == "ok"
    assert report.ok


def test_no_numeric_skips_the_check():
    report = check("sample_layers/custom_gradients.py:DoubledGradient", input_shape=(16, 5), numeric=False)
    assert verdicts(report) == {}
    assert report.ok


def test_dropout_in_training_sees_the_same_mask_on_both_sides():
    report = check("keras.layers:Dropout", init={"rate": 0.5}, input_shape=(8, 5), training=True)
    assert report.stochastic
    assert verdicts(report) == {"input": "ok"}, report


def test_a_layer_instance_checked_in_float32_is_left_exactly_as_it_was():
    # The fallback perturbs the user's own layer; every value must be restored bit for bit.
    import numpy as np
    import tensorflow as tf

    from gradcheck.layer.loading import load

    layer = load("sample_layers/untracked.py:RawVariable", {}).layer
    layer(tf.zeros((16, 5)))
    before = [v.numpy().copy() for v in [*layer.weights, layer.w]]
    report = check(layer, input_shape=(16, 5))
    assert "float32-fallback" in verdicts(report).values()
    after = [v.numpy() for v in [*layer.weights, layer.w]]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_sublayers_made_in_init_without_a_dtype_become_float64_in_the_twin():
    # A parent given dtype='float64' would leave them float32 (NOTES.md 8); the dtype policy does not.
    import keras

    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.proj = keras.layers.Dense(3)
            self.norm = keras.layers.LayerNormalization()

        def call(self, inputs):
            return self.norm(self.proj(inputs))

    report = check(Block, input_shape=(8, 5))
    assert set(verdicts(report).values()) == {"ok"}, report
    assert {"proj.kernel", "norm.gamma", "input"} <= set(verdicts(report)), report


def test_a_model_from_a_factory_is_checked_in_float64():
    import keras

    def model():
        return keras.Sequential([keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)])

    report = check(model, input_shape=(8, 5))
    assert set(verdicts(report).values()) == {"ok"}, report
    assert len(verdicts(report)) == 5, report


def test_randomness_outside_keras_seeds_is_compared_with_training_false_only():
    import keras
    import tensorflow as tf

    class Noisy(keras.layers.Layer):
        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

        def call(self, inputs, training=None):
            outputs = tf.matmul(inputs, self.kernel)
            if training:  # unseeded: no two passes see the same noise, so no difference can be taken
                outputs = outputs + tf.random.normal(tf.shape(outputs), dtype=outputs.dtype)
            return outputs

    assert verdicts(check(Noisy, input_shape=(8, 5))) == {"kernel": "ok", "input": "ok"}
    assert verdicts(check(Noisy, input_shape=(8, 5), training=True)) == {"kernel": "skipped", "input": "skipped"}


def test_functional_model_is_compared_in_float64_from_its_input(tmp_path):
    # keras.Input takes its dtype from floatx, not the dtype policy: the copy must not round its
    # float64 input to float32 at the door (that would be a needless float32-fallback).
    (tmp_path / "functional_models.py").write_text(
        "import keras\n\n"
        "def conv_model():\n"
        "    i = keras.Input((6, 6, 2))\n"
        "    x = keras.layers.Conv2D(3, 3, use_bias=False)(i)\n"
        "    x = keras.layers.BatchNormalization()(x)\n"
        "    return keras.Model(i, keras.layers.Dense(2)(keras.layers.Flatten()(x)))\n"
    )
    from conftest import run_cli

    result = run_cli(["functional_models.py:conv_model", "--input-shape", "4,6,6,2", "--json"], cwd=tmp_path)
    document = result.json()
    assert [f["code"] for f in document["findings"] if f["code"] == "float32-fallback"] == [], result
    assert {i["numeric_verdict"] for i in document["inputs"]} == {"ok"}, result
