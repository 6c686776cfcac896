"""--order 2: second derivatives of the probe loss against finite differences of the tape gradient.

The layers are the tests' own (tests/data/second_order_layers.py); each finding is asserted by code,
tensor and line, with the line found from the source.
"""

import pytest
from conftest import ROOT, run_cli, run_cli_shared

from gradcheck import check
from gradcheck.errors import GradcheckError
from gradcheck.options.pyproject import targets_from_pyproject

LAYERS = "tests/data/second_order_layers.py"


def line_of(text, file=LAYERS) -> int:
    """The line of `file` that contains `text` (exactly one)."""
    lines = [n for n, line in enumerate((ROOT / file).read_text().splitlines(), 1) if text in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


def second_order(report) -> set:
    return {(f.code, f.tensor, f.location) for f in report.findings if f.code.startswith("second-order")}


def verdicts(report) -> dict:
    return {row.name: row.second_order_verdict for row in (*report.variables, *report.inputs)}


def test_smooth_correct_layer_has_no_second_order_finding():
    report = check(f"{LAYERS}:SmoothDense", input_shape=(16, 5), order=2)
    assert second_order(report) == set(), report
    assert verdicts(report) == {"kernel": "ok", "bias": "ok", "input": "ok"}, report
    assert all(row.second_order_error < 1e-5 for row in (*report.variables, *report.inputs)), report
    assert report.ok


def stopped_tanh_order_2():
    """StoppedTanhDense checked with --order 2 by the command, once per test run: this test reads
    the report, test_cli_order_2_json_fields_text_column_and_exit_status its JSON fields."""
    return run_cli_shared([f"{LAYERS}:StoppedTanhDense", "--input-shape", "16,5", "--order", "2", "--json"])


def test_stop_gradient_in_the_grad_function_breaks_the_gradient_penalty():
    document = stopped_tanh_order_2().json()
    findings = document["findings"]
    rows = [*document["variables"], *document["inputs"]]
    where = f"{LAYERS}:{line_of('return stopped_tanh(')}"
    assert {(f["code"], f["tensor"], f["location"]) for f in findings if f["code"].startswith("second-order")} == {
        ("second-order-none", "bias", where),
        ("second-order-mismatch", "kernel", where),
        ("second-order-mismatch", "input", where),
    }, document
    assert {row["name"]: row["second_order_verdict"] for row in rows} == {
        "kernel": "mismatch",
        "bias": "none",
        "input": "mismatch",
    }
    # The first-order check passes: only the second order sees it.
    assert {row["numeric_verdict"] for row in rows} == {"ok"}
    [none] = [f for f in findings if f["code"] == "second-order-none"]
    assert "a gradient penalty never trains `bias`" in none["message"]
    assert f"StopGradient (tf.stop_gradient) at {LAYERS}:{line_of('tf.stop_gradient(1.0')}" in none["message"]
    [kernel] = [f for f in findings if f["code"] == "second-order-mismatch" and f["tensor"] == "kernel"]
    assert "the penalty's gradient along u = ∂L/∂input" in kernel["message"]
    assert "worst entries [" in kernel["message"]


def test_numpy_round_trip_in_the_grad_function_is_found_too():
    report = check(f"{LAYERS}:NumpyTanhDense", input_shape=(16, 5), order=2)
    where = f"{LAYERS}:{line_of('return numpy_tanh(')}"
    assert second_order(report) == {
        ("second-order-none", "bias", where),
        ("second-order-mismatch", "kernel", where),
        ("second-order-mismatch", "input", where),
    }, report
    [none] = [f for f in report.findings if f.code == "second-order-none"]
    assert f"(tf.numpy_function) at {LAYERS}:{line_of('slope = tf.numpy_function(')}" in none.message


def test_wrong_second_derivative_with_a_right_first_one():
    first = check(f"{LAYERS}:WrongSecondDerivative", input_shape=(16, 5))
    assert first.ok and not second_order(first), first
    report = check(f"{LAYERS}:WrongSecondDerivative", input_shape=(16, 5), order=2)
    where = f"{LAYERS}:{line_of('return wrong_second_tanh(')}"
    assert second_order(report) == {
        ("second-order-mismatch", "kernel", where),
        ("second-order-mismatch", "bias", where),
        ("second-order-mismatch", "input", where),
    }, report
    # The planted error is 5% of the tanh'' term: the bias's block (tanh'' times constants) shows it exactly.
    [bias] = [row for row in report.variables if row.name == "bias"]
    assert bias.second_order_error == pytest.approx(0.05 / 1.05, rel=1e-3)


@pytest.mark.parametrize(
    "target, keywords",
    [
        (f"{LAYERS}:ReluDense", {"input_shape": (16, 5)}),
        ("keras.layers:Dense", {"input_shape": (16, 5), "init": {"units": 3}}),
        ("keras.layers:Dense", {"input_shape": (16, 5), "init": {"units": 3, "activation": "gelu"}}),
        ("keras.layers:MaxPooling1D", {"input_shape": (4, 6, 3)}),
    ],
)
def test_correct_layers_have_no_second_order_finding(target, keywords):
    report = check(target, order=2, **keywords)
    assert second_order(report) == set(), report
    assert set(verdicts(report).values()) == {"ok"}, report


def test_layer_normalization_input_hessian_is_wrong_in_tensorflow():
    # tf.nn.moments computes the variance around tf.stop_gradient(mean): the first derivative is
    # exact (the dropped term is a sum of deviations, zero), the second is not (it drops -2/n² 11ᵀ).
    # Checked by hand against a LayerNormalization written without stop_gradient: this is a real
    # wrong Hessian, not a false alarm.
    report = check("keras.layers:LayerNormalization", input_shape=(16, 5), order=2)
    # The tf.stop_gradient is TensorFlow's, not the user's: a warning, and the run still passes.
    assert {(f.code, f.tensor) for f in report.findings if f.code.startswith("second-order")} == {
        ("second-order-approximate", "input")
    }, report
    assert report.ok
    assert verdicts(report) == {"gamma": "ok", "beta": "ok", "input": "approximate"}
    [mismatch] = [f for f in report.findings if f.code == "second-order-approximate"]
    assert "tf.stop_gradient (inside `moments` (nn_impl.py:" in mismatch.message


def test_cli_order_2_json_fields_text_column_and_exit_status():
    result = stopped_tanh_order_2()
    assert result.exit_code == 1, result
    document = result.json()
    rows = {row["name"]: row for row in (*document["variables"], *document["inputs"])}
    assert rows["bias"]["second_order_verdict"] == "none"
    assert rows["kernel"]["second_order_verdict"] == "mismatch" and rows["kernel"]["second_order_error"] > 0.1
    text = run_cli([f"{LAYERS}:StoppedTanhDense", "--input-shape", "16,5", "--order", "2"])
    assert "2nd order" in text.stdout and "none 1.00e+00" in text.stdout, text
    plain = run_cli([f"{LAYERS}:StoppedTanhDense", "--input-shape", "16,5", "--json"])
    assert plain.exit_code == 0, plain
    assert all(row["second_order_verdict"] is None for row in plain.json()["variables"])


def test_order_must_be_1_or_2():
    result = run_cli([f"{LAYERS}:SmoothDense", "--input-shape", "16,5", "--order", "3"])
    assert result.exit_code == 2 and "--order" in result.stderr, result
    with pytest.raises(GradcheckError, match="--order 3"):
        check(f"{LAYERS}:SmoothDense", input_shape=(16, 5), order=3)


def test_pyproject_order_key(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.gradcheck.targets]]\ntarget = "m:L"\ninput-shape = ["4,2"]\norder = 2\n'
        '[[tool.gradcheck.targets]]\ntarget = "m:L"\ninput-shape = ["4,2"]\norder = 3\n'
    )
    [(_, good), (_, bad)] = targets_from_pyproject({}, str(tmp_path / "pyproject.toml"))
    assert good.order == 2
    assert isinstance(bad, GradcheckError) and "1 or 2" in str(bad)


def test_op_without_a_second_derivative_is_named_at_its_forward_line():
    # TensorFlow registers no gradient for ResizeNearestNeighborGrad: the double backward raises.
    report = check(f"{LAYERS}:NearestUpsample", input_shape=(2, 2, 2, 3), order=2)
    where = f"{LAYERS}:{line_of('tf.image.resize(x, (4, 4)')}"
    assert second_order(report) == {("second-order-none", "w", where), ("second-order-none", "input", where)}, report
    [w] = [f for f in report.findings if f.code == "second-order-none" and f.tensor == "w"]
    assert "ResizeNearestNeighborGrad (the gradient of ResizeNearestNeighbor)" in w.message
    assert "differentiating its gradient raises" in w.message
