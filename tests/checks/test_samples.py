"""Every sample layer produces exactly the findings its comments state, at the stated lines.

A broken layer's `# expect: CODE TENSOR` comment sits on the line the finding must point at; a
correct layer has none, so any error or warning on it fails the test.
"""

import pytest
from conftest import observed, run_cli_shared, sample_cases

CASES = sample_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sample_layer_findings(case):
    # Shared: tests/test_gradients.py and tests/test_numeric.py read other facts of the same runs.
    result = run_cli_shared([f"{case.file}:{case.name}", *case.args, "--json"])
    assert result.exit_code in (0, 1), result
    document = result.json()
    # One report, or one per backend (a sample checked with --backend all).
    reports = document["targets"] if "targets" in document else [document]
    for report in reports:
        assert observed(case, report) == case.expected_on(report["backend"]), (report["backend"], result)
    has_error = any(severity_of(code) == "error" for code, *_ in case.expected)
    assert result.exit_code == (1 if has_error else 0), result
    assert document["ok"] is (not has_error)


def severity_of(code):
    from gradcheck.codes import CODES

    return CODES[code].severity


def test_every_sample_file_has_cases():
    files = {c.file for c in CASES}
    assert {"sample_layers/classic.py", "sample_layers/untracked.py", "sample_layers/portable.py"} <= files
    assert {"sample_layers/jax_layers.py", "sample_layers/torch_layers.py"} <= files
