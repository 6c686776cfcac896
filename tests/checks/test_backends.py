"""The real command on JAX and PyTorch, and several backends compared: Keras's own layers clean on
all three, the gradient TensorFlow gets wrong named as TensorFlow's, a layer that runs on one
backend only, and a check a backend cannot run said once.

The sample layers of sample_layers/portable.py, jax_layers.py and torch_layers.py (their traps on
each backend, with the lines) are checked by test_samples.py. Every run here is shared
(run_cli_shared), so the JAX and torch fork servers start once for the suite.
"""

import json

import pytest
from conftest import check_sample, line_of, run_cli_shared, sample_cases

SAMPLES = [case for case in sample_cases() if case.other_backends]


@pytest.mark.parametrize("case", SAMPLES, ids=[c.id for c in SAMPLES])
def test_sample_layer_findings_on_other_backends(case):
    """The traps of sample_layers/jax_layers.py and torch_layers.py (a raw jnp array, a raw
    nn.Parameter, with their creation lines; a wrong jax.custom_vjp and torch.autograd.Function),
    and portable.py's keras.ops layers on all three backends (an argmax cut located on each)."""
    check_sample(case)


CLEAN = {
    "Dense": ["--init", "units=3", "--input-shape", "8,5"],
    "LayerNormalization": ["--input-shape", "8,5"],
    "MultiHeadAttention": [
        "--init",
        "num_heads=2",
        "--init",
        "key_dim=4",
        "--input-shape",
        "2,5,8",
        "--input-shape",
        "2,5,8",
    ],
}
# Infos a correct layer may get: MultiHeadAttention's key bias is rounding noise (on every backend),
# and on JAX its softmax runs in float32 even in a float64 copy (jax.nn.dot_product_attention), so
# those tensors are compared in float32 and one float32-fallback says why: not a false alarm.
ALLOWED_INFOS = {"rounding-noise-gradient", "float32-fallback", "non-trainable-variable"}


def _reports(result) -> dict:
    document = result.json()
    return {report["backend"]: report for report in document["targets"]}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_keras_layers_are_clean_on_every_backend_and_agree_between_them(name):
    result = run_cli_shared([f"keras.layers:{name}", *CLEAN[name], "--backend", "all", "--json"])
    assert result.exit_code == 0, result
    reports = _reports(result)
    assert sorted(reports) == ["jax", "tensorflow", "torch"], result
    for backend, report in reports.items():
        assert [f["code"] for f in report["findings"] if f["code"] not in ALLOWED_INFOS] == [], (backend, result)
        assert all(f["backend"] == backend for f in report["findings"]), result
        verdicts = {row["numeric_verdict"] for row in [*report["variables"], *report["inputs"]]} - {None}
        assert verdicts <= {"ok", "float32-fallback"}, (backend, result)
        assert report["cross_backend"]["status"] == "ok", (backend, result)
        assert set(report["cross_backend"]["backends"]) == {"tensorflow", "jax", "torch"} - {backend}


def test_only_jax_falls_back_to_float32_on_multi_head_attention():
    reports = _reports(
        run_cli_shared(["keras.layers:MultiHeadAttention", *CLEAN["MultiHeadAttention"], "--backend", "all", "--json"])
    )
    fallbacks = {b: [f["code"] for f in r["findings"] if f["code"] == "float32-fallback"] for b, r in reports.items()}
    assert fallbacks == {"tensorflow": [], "jax": ["float32-fallback"], "torch": []}


ROTATION = ["keras.layers:RandomRotation", "--init", "factor=0.2", "--input-shape", "2,8,8,3", "--backend", "all"]


def test_random_rotation_says_tensorflows_gradient_is_the_wrong_one():
    result = run_cli_shared([*ROTATION, "--json"])
    # RandomRotation is a preprocessing layer: its input's gradient harms no training, so what is
    # found about it is said as info (preprocessing-input-gradient), the comparison's finding too.
    assert result.exit_code == 0, result
    reports = _reports(result)
    said = [f for f in reports["tensorflow"]["findings"] if f["code"] == "preprocessing-input-gradient"]
    assert [(f["tensor"], f["severity"]) for f in said] == [("input", "info")] * 2, result
    [message] = [f["message"] for f in said if "differs from" in f["message"]]
    assert "The gradient of `input` on TensorFlow differs from JAX's and PyTorch's" in message, message
    assert "(backend-mismatch on any other layer)" in message, message
    assert "TensorFlow's gradient is the wrong one" in message, message
    assert "while JAX's and PyTorch's agree with theirs" in message, message
    assert "They part at the gradient of `image.affine_transform`" in message, message
    for backend in ("jax", "torch"):  # each agrees with its own finite differences
        assert [f for f in reports[backend]["findings"] if f["severity"] == "error"] == [], result
        assert {row["numeric_verdict"] for row in reports[backend]["inputs"]} == {"ok"}, result
    assert reports["tensorflow"]["cross_backend"]["status"] == "mismatch", result
    assert "true" in reports["tensorflow"]["cross_backend"]["modes"], result  # its random angle held fixed


def test_the_text_report_names_the_backend_in_every_verdict_and_the_comparison():
    from gradcheck.render import render
    from gradcheck.report import Report

    # The JSON run's reports, drawn as text: the same reports the text run would draw.
    document = json.loads(run_cli_shared([*ROTATION, "--json"]).stdout)
    lines = render("text", [Report.from_dict(report) for report in document["targets"]]).splitlines()
    assert (
        "OK keras.layers:RandomRotation [tensorflow]: 0 errors, 0 warnings; every weight call() uses is tracked."
        in lines
    )
    assert "OK keras.layers:RandomRotation [jax]: 0 errors, 0 warnings; every weight call() uses is tracked." in lines
    assert any(line.startswith("gradcheck keras.layers:RandomRotation [torch]   PyTorch 2.") for line in lines), lines
    assert any(
        line.startswith("backends: compared with JAX, PyTorch (training=True with the same random draws")
        for line in lines
    )


def test_a_layer_with_a_tensorflow_op_is_unsupported_on_jax_and_torch_at_that_line():
    result = run_cli_shared(
        ["tests/data/backend_layers.py:TensorFlowInside", "--input-shape", "16,5", "--backend", "all", "--json"]
    )
    assert result.exit_code == 1, result
    reports = _reports(result)
    line = f"tests/data/backend_layers.py:{line_of('tf.sin(', 'tests/data/backend_layers.py')}"
    assert [f["code"] for f in reports["tensorflow"]["findings"] if f["severity"] != "info"] == [], result
    for backend, framework in (("jax", "JAX"), ("torch", "PyTorch")):
        found = [(f["code"], f["location"]) for f in reports[backend]["findings"]]
        assert found == [("backend-unsupported", line)], (backend, result)
        assert f"runs on TensorFlow but not on {framework}" in reports[backend]["findings"][0]["message"]


def test_second_order_is_said_to_be_unavailable_on_jax():
    result = run_cli_shared(
        [
            "sample_layers/classic.py:SimpleDense",
            "--init",
            "units=4",
            "--input-shape",
            "16,5",
            "--order",
            "2",
            "--backend",
            "jax",
            "--json",
        ]
    )
    assert result.exit_code == 0, result
    document = result.json()
    found = [f for f in document["findings"] if f["code"] == "unavailable-on-backend"]
    assert len(found) == 1 and found[0]["severity"] == "info", result
    assert found[0]["message"].startswith("Checking second derivatives does not run on the JAX backend"), result
    assert document["backend"] == "jax" and {r["second_order_verdict"] for r in document["variables"]} == {None}


def test_check_on_another_backend_runs_in_a_worker_of_that_backend():
    from gradcheck import check

    # This process's Keras runs on TensorFlow: a torch check goes to a torch worker by itself.
    report = check("sample_layers/portable.py:ArgmaxGate", input_shape="16,5", backend="torch")
    line = f"sample_layers/portable.py:{line_of('ops.argmax(', 'sample_layers/portable.py')}"
    assert report.backend == "torch" and report.versions["torch"].startswith("2.")
    assert [(f.code, f.tensor, f.location, f.backend) for f in report.findings if f.severity == "error"] == [
        ("none-gradient", "gate", line, "torch")
    ]


SETS_BACKEND = "tests/data/sets_keras_backend.py"


def test_a_module_that_sets_keras_backend_is_checked_on_its_workers_backend():
    """Each worker keeps the backend it was started for, whatever KERAS_BACKEND the module sets
    ("jax"): TensorFlow's and torch's reports are theirs, with an info finding at the line; on JAX
    the module asks for the backend it runs on, and nothing is said. The exit status stays 0."""
    result = run_cli_shared([f"{SETS_BACKEND}:Scale", "--input-shape", "4,3", "--backend", "all", "--json"])
    assert result.exit_code == 0, result
    reports = _reports(result)
    line = line_of('os.environ["KERAS_BACKEND"] = "jax"', SETS_BACKEND)
    for backend, framework in (("tensorflow", "tensorflow"), ("jax", "jax"), ("torch", "torch")):
        assert framework in reports[backend]["versions"], (backend, result)
        assert [v["gradient_status"] for v in reports[backend]["variables"]] == ["ok"], (backend, result)
    assert reports["jax"]["findings"] == [], result
    for backend in ("tensorflow", "torch"):
        assert [(f["code"], f["severity"], f["location"], f["message"]) for f in reports[backend]["findings"]] == [
            (
                "backend-set-after-import",
                "info",
                f"{SETS_BACKEND}:{line}",
                f"The layer's module sets KERAS_BACKEND to 'jax' after Keras was imported on {backend}, so it takes "
                f"no effect (Keras reads it once, at import): this report is {backend}'s. Run gradcheck with "
                "--backend jax to check the layer on jax; a backend is chosen before anything imports Keras (the "
                "environment, or the training script's first lines).",
            )
        ], (backend, result)
