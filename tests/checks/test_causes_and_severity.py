"""A verdict to trust (issue 26): one root cause gives one finding, severity follows what a user
loses, each training mode is its own probe, and inputs are named as call() names them.

Each case runs the real command on a real layer: Keras's own classes by name, or a small layer of
tests/data/verdict_layers.py, with its correct twin producing nothing. The runs in RUNS are shared
(run_cli_shared) with tests/checks/test_report_snapshots.py, which stores their JSON, and with
tests/fast/test_root_causes.py's walk over the stored copies.
"""

import pytest
from conftest import line_of, run_cli, run_cli_shared

LAYERS = "tests/data/verdict_layers.py"
IMAGES = ["--input-shape", "2,8,8,3", "--input-range", "0,1"]
FLOAT8 = ["--init", "dtype=float8_from_mixed_bfloat16", "--input-shape", "8,5"]
# Keras's preprocessing layers of the issue, with arguments that work on 8x8 RGB images in [0, 1].
PREPROCESSING = {
    "RandomHue": ["--init", "factor=0.5", "--init", "value_range=0,1"],
    "RandomSaturation": ["--init", "factor=0.5", "--init", "value_range=0,1"],
    "RandomColorJitter": ["--init", "value_range=0,1", "--init", "brightness_factor=0.2", "--init", "hue_factor=0.2"],
    "RandomPosterization": ["--init", "factor=4", "--init", "value_range=0,1"],
    "ContrastLimitedAdaptiveHistogramEqualization": ["--init", "value_range=0,1"],  # CLAHE
}

RUNS = {
    "FrozenProjection": [f"{LAYERS}:FrozenProjection", "--input-shape", "8,5"],
    "TrainableProjection": [f"{LAYERS}:TrainableProjection", "--input-shape", "8,5"],
    "RandomMask": [f"{LAYERS}:RandomMask", "--input-shape", "8,5", "--no-numeric"],
    "Attend": [f"{LAYERS}:Attend", "--input-shape", "4,5", "--input-shape", "4,6"],
    "AttendSoftly": [f"{LAYERS}:AttendSoftly", "--input-shape", "4,5", "--input-shape", "4,6"],
    "PairOfInputs": [f"{LAYERS}:PairOfInputs", "--input-shape", "4,5", "--input-shape", "4,5", "--no-numeric"],
    "Buckets": [f"{LAYERS}:Buckets", "--input-shape", "4,5"],
    "Quantise": [f"{LAYERS}:Quantise", "--input-shape", "4,5", "--no-numeric", "--no-reload"],
    "Posterize": [f"{LAYERS}:Posterize", *PREPROCESSING["RandomPosterization"], *IMAGES, "--no-numeric", "--no-reload"],
    "keras-Discretization": ["keras.layers:Discretization", "--init", "bin_boundaries=0.,1.", "--input-shape", "4,3"],
    "keras-float8-Dense": ["keras.layers:Dense", "--init", "units=4", *FLOAT8],
    "keras-float8-EinsumDense": [
        "keras.layers:EinsumDense",
        "--init",
        "equation=ab,bc->ac",
        "--init",
        "output_shape=4",
        "--init",
        "bias_axes=c",
        *FLOAT8,
        "--no-numeric",
    ],
    "keras-RandomCrop": ["keras.layers:RandomCrop", "--init", "height=4", "--init", "width=4", *IMAGES],
    "keras-AugMix": ["keras.layers:AugMix", "--init", "value_range=0,1", *IMAGES, "--no-reload"],
    "keras-RandomRotation": ["keras.layers:RandomRotation", "--init", "factor=0.2", *IMAGES, "--no-reload"],
    **{
        f"keras-{name}": [f"keras.layers:{name}", *arguments, *IMAGES, "--no-numeric", "--no-reload"]
        for name, arguments in PREPROCESSING.items()
    },
}


def run(name):
    return run_cli_shared([*RUNS[name], "--json"])


def at(marker: str) -> str:
    """`tests/data/verdict_layers.py:N`, N the line marked `# here: MARKER`."""
    return f"{LAYERS}:{line_of(f'# here: {marker}', LAYERS)}"


def findings(result, *keys):
    return sorted(tuple(item[key] for key in keys) for item in result.json()["findings"])


# --- one root cause, one finding ----------------------------------------------------------------------


def test_tensors_cut_by_one_op_share_a_cause_in_the_json():
    result = run("FrozenProjection")
    assert result.exit_code == 1, result
    cut = at("the one cut")
    cause = f"StopGradient at {cut}"
    assert findings(result, "code", "tensor", "location", "cause", "severity") == [
        ("input-gradient-none", "input", cut, cause, "error"),
        ("none-gradient", "bias", cut, cause, "error"),
        ("none-gradient", "kernel", cut, cause, "error"),
    ], result


def test_the_correct_twin_has_no_finding():
    result = run("TrainableProjection")
    assert (result.exit_code, result.json()["findings"]) == (0, []), result


def test_text_markdown_and_github_show_one_entry_per_cause():
    cut = at("the one cut")
    arguments = [*RUNS["FrozenProjection"], "--no-numeric", "--no-reload"]
    text = run_cli([*arguments, "--format", "text"])
    assert text.exit_code == 1, text
    heads = [line for line in text.stdout.splitlines() if line.startswith("ERROR")]
    assert heads == [f"ERROR   none-gradient  bias, kernel  {cut}", f"ERROR   input-gradient-none  input  {cut}"], text
    assert f"        The same for `kernel`: one cause, StopGradient at {cut}." in text.stdout.splitlines(), text
    assert "FAILED tests/data/verdict_layers.py:FrozenProjection: 3 errors, 0 warnings." in text.stdout, text

    markdown = run_cli([*arguments, "--format", "markdown"])
    bullets = [line for line in markdown.stdout.splitlines() if line.startswith("- **ERROR**")]
    assert [line.split(":", 1)[0] for line in bullets] == [
        "- **ERROR** `none-gradient` `bias, kernel` at `tests/data/verdict_layers.py",
        "- **ERROR** `input-gradient-none` `input` at `tests/data/verdict_layers.py",
    ], markdown
    shown = cut.replace("_", "\\_")  # Markdown's active characters escaped in prose
    assert bullets[0].endswith(f"<br>The same for `kernel`: one cause, StopGradient at {shown}."), markdown

    github = run_cli([*arguments, "--format", "github"])
    annotations = [line.split("::")[1] for line in github.stdout.splitlines() if line.startswith("::")]
    line = cut.rsplit(":", 1)[1]
    assert annotations == [
        f"error file=tests/data/verdict_layers.py,line={line},title=none-gradient",
        f"error file=tests/data/verdict_layers.py,line={line},title=input-gradient-none",
    ], github


def test_a_dead_relu_kills_three_tensors_with_one_cause():
    # The run tests/checks/test_samples.py makes of the sample layer.
    result = run_cli_shared(["sample_layers/gradients.py:DeadRelu", "--input-shape", "16,5", "--json"])
    relu = f"sample_layers/gradients.py:{line_of('return tf.nn.relu(', 'sample_layers/gradients.py')}"
    assert findings(result, "code", "tensor", "cause") == [
        ("zero-gradient", "bias", f"Relu at {relu}"),
        ("zero-gradient", "input", f"Relu at {relu}"),
        ("zero-gradient", "kernel", f"Relu at {relu}"),
    ], result


def test_a_constant_lost_on_reload_is_told_in_its_constant_tensor_finding():
    result = run_cli_shared(["sample_layers/untracked.py:RandomTensorWeight", "--input-shape", "16,5", "--json"])
    where = f"sample_layers/untracked.py:{line_of('self.w = tf.random.normal(', 'sample_layers/untracked.py')}"
    assert findings(result, "code", "tensor", "location") == [("constant-tensor", "w", where)], result
    (item,) = result.json()["findings"]
    assert item["message"].endswith(
        "so it is saved with the layer. The saved model loses its value: after from_config(get_config()) the "
        "layer's output differs by 2.0e+00 of its scale."
    ), result
    assert result.json()["reload"] == "mismatch", result


def test_a_reload_mismatch_no_other_finding_explains_stays():
    # A 0/1 mask is no constant posing as a weight, so only the reload can say it is lost.
    result = run("RandomMask")
    assert result.exit_code == 1, result
    assert findings(result, "code", "tensor", "location") == [("reload-mismatch", "mask", at("the mask"))], result


# --- severity by what a user loses --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["keras-float8-Dense", "keras-float8-EinsumDense"])
def test_variables_keras_overwrites_in_fit_are_not_none_gradient(name):
    result = run(name)
    assert result.exit_code == 0, result
    assert [f for f in result.json()["findings"] if f["severity"] != "info"] == [], result
    kinds = {row["name"]: row["kind"] for row in result.json()["variables"]}
    written = {f"{what}_{part}" for what in ("inputs", "kernel", "outputs_grad") for part in ("scale", "amax_history")}
    assert kinds == {**dict.fromkeys(written, "overwritten"), "kernel": "trainable", "bias": "trainable"}, result
    statuses = {row["name"]: row["gradient_status"] for row in result.json()["variables"]}
    assert {statuses[name] for name in written} == {None}, result
    assert statuses["kernel"] == statuses["bias"] == "ok", result


def test_the_table_says_keras_writes_an_overwritten_variable():
    result = run_cli([*RUNS["keras-float8-Dense"], "--no-numeric", "--no-reload"])
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:12] if line.strip()}
    assert rows["kernel_scale"][1:] == ["overwritten", "scalar", "written"], result
    assert rows["kernel"][-1] == "yes", result


@pytest.mark.parametrize("name", sorted(PREPROCESSING))
def test_input_gradient_findings_on_keras_preprocessing_layers_are_info(name):
    result = run(f"keras-{name}")
    assert result.exit_code == 0, result
    assert ("preprocessing-input-gradient", "input", "info") in findings(result, "code", "tensor", "severity"), result
    assert [f for f in result.json()["findings"] if f["severity"] != "info"] == [], result
    (item,) = [f for f in result.json()["findings"] if f["code"] == "preprocessing-input-gradient"]
    assert item["message"].startswith("`input` reaches the output only through "), result
    assert item["message"].endswith(
        f"{name} is a Keras preprocessing layer: it sits between the data and the first layer that trains, so no "
        "layer before it needs this gradient (input-gradient-none on any other layer)."
    ), result


def test_a_wrong_input_gradient_of_a_preprocessing_layer_is_info_too():
    # TensorFlow's gradient of ImageProjectiveTransformV3 is wrong (docs/design-notes.md 17).
    result = run("keras-RandomRotation")
    assert result.exit_code == 0, result
    codes = findings(result, "code", "tensor", "severity")
    assert ("preprocessing-input-gradient", "input", "info") in codes, result
    (item,) = [f for f in result.json()["findings"] if f["code"] == "preprocessing-input-gradient"]
    assert item["message"].endswith("(gradient-mismatch on any other layer)."), result


def test_a_subclass_of_a_preprocessing_layer_is_one_and_any_other_layer_keeps_the_error():
    posterize = run("Posterize")
    assert posterize.exit_code == 0, posterize
    assert ("preprocessing-input-gradient", "input", "info") in findings(posterize, "code", "tensor", "severity")
    (item,) = [f for f in posterize.json()["findings"] if f["code"] == "preprocessing-input-gradient"]
    assert "Posterize is a Keras preprocessing layer (a RandomPosterization): it sits between" in item["message"]
    quantise = run("Quantise")
    assert quantise.exit_code == 1, quantise
    assert findings(quantise, "code", "tensor", "location") == [("input-gradient-none", "input", at("uint8"))]


def test_a_layer_with_integer_outputs_is_checked_for_what_applies_and_exits_0():
    result = run("keras-Discretization")
    assert result.exit_code == 0, result
    document = result.json()
    assert findings(result, "code", "tensor", "severity") == [("no-float-output", None, "info")], result
    assert document["reload"] == "ok", result
    assert [(row["name"], row["gradient_status"]) for row in document["inputs"]] == [("input", None)], result


def test_an_integer_output_layer_still_gets_its_inventory_and_reload_findings():
    result = run("Buckets")
    assert result.exit_code == 1, result
    assert findings(result, "code", "tensor", "location") == [
        ("no-float-output", None, None),
        ("untracked-variable", "edges", at("raw edges")),
    ], result
    (untracked,) = [f for f in result.json()["findings"] if f["code"] == "untracked-variable"]
    assert untracked["message"].endswith(
        "The saved model loses its value: after from_config(get_config()) the "
        "layer's output differs by 1.0e+00 of its scale."
    ), result
    (info,) = [f for f in result.json()["findings"] if f["code"] == "no-float-output"]
    assert "Its trainable variables (`edges`) cannot learn through it" in info["message"], result


# --- each training mode its own probe, and a twin that raises -----------------------------------------


def test_random_crop_is_checked_in_both_modes_without_trace_failed():
    result = run("keras-RandomCrop")
    assert result.exit_code == 0, result
    document = result.json()
    assert document["training_modes"] == ["true", "false"], result
    assert "trace-failed" not in {f["code"] for f in document["findings"]}, result
    (row,) = document["inputs"]
    assert (row["gradient_status"], row["numeric_verdict"]) == ("ok", "float32-fallback"), result


def test_augmix_whose_float64_copy_raises_falls_back_to_float32():
    result = run("keras-AugMix")
    assert result.exit_code == 0, result
    (item,) = [f for f in result.json()["findings"] if f["code"] == "float32-fallback"]
    assert (
        "no float64 copy of the layer could be used (the float64 copy could not be compared with the layer "
        "(calling the float64 copy raised InvalidArgumentError" in item["message"]
    ), result


# --- inputs named by call()'s parameters --------------------------------------------------------------


def test_inputs_are_named_by_call_parameters_in_rows_and_messages():
    result = run("Attend")
    assert result.exit_code == 1, result
    assert [row["name"] for row in result.json()["inputs"]] == ["x", "context"], result
    assert findings(result, "code", "tensor", "location") == [("input-gradient-none", "context", at("context cut"))]
    (item,) = result.json()["findings"]
    assert item["message"].startswith("`context` reaches the output only through ArgMax (tf.argmax)"), result
    twin = run("AttendSoftly")
    assert (twin.exit_code, twin.json()["findings"]) == (0, []), twin
    assert [row["name"] for row in twin.json()["inputs"]] == ["x", "context"], twin


def test_inputs_given_as_one_list_are_its_items():
    result = run("PairOfInputs")
    assert [row["name"] for row in result.json()["inputs"]] == ["inputs[0]", "inputs[1]"], result
    assert findings(result, "code", "tensor", "location") == [("input-gradient-none", "inputs[1]", at("second cut"))]


def test_multi_head_attention_names_its_inputs_query_and_value():
    from test_keras_builtins import builtin

    result = builtin("MultiHeadAttention")
    assert [row["name"] for row in result.json()["inputs"]] == ["query", "value"], result
