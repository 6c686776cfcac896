"""Every sample layer produces exactly the findings its comments state, at the stated lines.

A broken layer's `# expect: CODE TENSOR` comment sits on the line the finding must point at; a
correct layer has none, so any error or warning on it fails the test. The samples checked on JAX
or PyTorch (`--backend` in their args) are test_backends.py's, so one xdist worker starts those
frameworks' fork servers for the whole run.
"""

import pytest
from conftest import check_sample, sample_cases

CASES = [case for case in sample_cases() if not case.other_backends]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sample_layer_findings(case):
    # Shared: tests/test_gradients.py and tests/test_numeric.py read other facts of the same runs.
    check_sample(case)


def test_every_sample_file_has_cases():
    files = {c.file for c in sample_cases()}
    assert {"sample_layers/classic.py", "sample_layers/untracked.py", "sample_layers/portable.py"} <= files
    assert {"sample_layers/jax_layers.py", "sample_layers/torch_layers.py"} <= files
