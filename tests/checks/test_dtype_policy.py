"""--dtype-policy: the layer run again under a low-precision Keras policy, compared with float32."""


import pytest
from conftest import ROOT, run_cli

LAYERS = "tests/data/precision_layers.py"
POLICIES = ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16")
EVERY_POLICY = [arg for policy in POLICIES for arg in ("--dtype-policy", policy)]


def line_of(marker: str) -> str:
    """`file:line` of the line in the test layers holding `marker` (so edits above do not break tests)."""
    lines = (ROOT / "tests" / "data" / "precision_layers.py").read_text().splitlines()
    (number,) = [i for i, line in enumerate(lines, start=1) if marker in line]
    return f"{LAYERS}:{number}"


def findings_of(result, codes=None):
    return {
        (f["code"], f["tensor"], f["location"])
        for f in result.json()["findings"]
        if codes is None or f["code"] in codes
    }


POLICY_CODES = {"dtype-policy-ignored", "low-precision-loss", "low-precision-weight"}


def test_a_layer_that_follows_the_policy_has_no_finding_under_any_policy():
    result = run_cli([f"{LAYERS}:PolicyRespecting", "--input-shape", "16,5", "--no-numeric", *EVERY_POLICY, "--json"])
    assert result.exit_code == 0, result
    assert findings_of(result) == set(), result
    rows = result.json()["dtype_policies"]
    assert [(r["policy"], r["status"], r["output_dtypes"]) for r in rows] == [
        ("mixed_float16", "ok", ["float16"]),
        ("mixed_bfloat16", "ok", ["bfloat16"]),
        ("float16", "ok", ["float16"]),
        ("bfloat16", "ok", ["bfloat16"]),
    ], result
    assert set(rows[0]["gradient_errors"]) == {"kernel", "bias", "input"}, result


def test_a_hard_cast_to_float32_is_named_at_its_line():
    result = run_cli(
        [f"{LAYERS}:HardCast", "--input-shape", "16,5", "--no-numeric", "--dtype-policy", "mixed_float16", "--json"]
    )
    assert result.exit_code == 0, result  # a warning: the layer still computes the right values
    assert findings_of(result, POLICY_CODES) == {("dtype-policy-ignored", "output", line_of("# cast: leaves"))}, result
    (item,) = result.json()["findings"]
    assert "output is float32, not float16" in item["message"], result
    assert result.json()["dtype_policies"][0]["status"] == "ignored", result


def test_an_underflow_in_float16_is_named_with_the_op_and_line():
    result = run_cli(
        [
            f"{LAYERS}:Underflowing",
            "--input-shape",
            "16,5",
            "--no-numeric",
            "--dtype-policy",
            "mixed_float16",
            "--dtype-policy",
            "mixed_bfloat16",
            "--json",
        ]
    )
    assert result.exit_code == 1, result
    where = line_of("# underflow")
    assert findings_of(result, POLICY_CODES) == {
        ("low-precision-loss", "output", where),
        ("low-precision-loss", "kernel", where),
        ("low-precision-loss", "input", where),
    }, result
    output = next(f for f in result.json()["findings"] if f["tensor"] == "output")
    assert "mixed_float16" in output["message"] and "flushes to zero" in output["message"], result
    assert "Mul op" in output["message"] and "float32" in output["message"], result
    # bfloat16 has float32's range: the same layer is fine there.
    assert [r["status"] for r in result.json()["dtype_policies"]] == ["loss", "ok"], result


def test_a_float16_weight_under_a_mixed_policy_is_reported():
    result = run_cli(
        [
            f"{LAYERS}:HalfPrecisionWeight",
            "--input-shape",
            "16,5",
            "--no-numeric",
            "--dtype-policy",
            "mixed_float16",
            "--dtype-policy",
            "float16",
            "--json",
        ]
    )
    # Under the pure float16 policy every weight is float16 by design: reported under mixed only.
    assert findings_of(result, POLICY_CODES) == {("low-precision-weight", "kernel", line_of("# weight"))}, result


# Keras's own layers under every policy: tests/test_keras_builtins.py, in the run that checks them.


def test_an_unknown_policy_is_a_usage_error():
    result = run_cli(["keras.layers:Dense", "--init", "units=3", "--input-shape", "8,5", "--dtype-policy", "float8"])
    assert result.exit_code == 2, result
    assert "float8" in result.stderr and "mixed_float16" in result.stderr, result


def test_check_takes_dtype_policy():
    from gradcheck import check

    report = check(f"{LAYERS}:HardCast", input_shape=(16, 5), numeric=False, reload=False, dtype_policy="bfloat16")
    assert [(p.policy, p.status) for p in report.dtype_policies] == [("bfloat16", "ignored")]
    assert report.reload is None


def test_check_refuses_an_unknown_policy_with_a_message():
    from gradcheck import GradcheckError, check

    with pytest.raises(GradcheckError, match="'float8' is not a policy"):
        check("keras.layers:Dense", input_shape=(8, 5), init={"units": 3}, dtype_policy=["float8"])


def test_pyproject_keys_set_the_policies_and_turn_reload_off(tmp_path):
    import shutil

    shutil.copy(ROOT / "tests" / "data" / "precision_layers.py", tmp_path / "layers.py")
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.gradcheck.targets]]\ntarget = "layers.py:HardCast"\ninput-shape = ["16,5"]\n'
        'numeric = false\ndtype-policy = ["mixed_bfloat16"]\nreload = false\n'
    )
    result = run_cli(["--json"], cwd=tmp_path)
    assert result.exit_code == 0, result
    document = result.json()
    assert [(r["policy"], r["status"]) for r in document["dtype_policies"]] == [("mixed_bfloat16", "ignored")], result
    assert document["reload"] is None, result
    assert {(f["code"], f["location"]) for f in document["findings"] if f["severity"] != "info"} == {
        ("dtype-policy-ignored", "layers.py:" + line_of("# cast: leaves").rsplit(":", 1)[1])
    }, result


def test_a_bad_pyproject_policy_is_reported_for_its_entry(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.gradcheck.targets]]\ntarget = "keras.layers:Dense"\ninput-shape = ["16,5"]\ndtype-policy = "float16"\n'
    )
    result = run_cli([], cwd=tmp_path)
    assert result.exit_code == 2, result
    assert "dtype-policy = 'float16' is not a list of policy names" in result.stderr, result
