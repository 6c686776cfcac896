"""The comparison of backends on sides written by hand (compare/verdict.py reads numpy files only):
which backend is at fault, the op where they part, what noise is let through, a backend where the
layer does not run, and what each report says it was compared with."""

import json

import numpy as np
import pytest

from gradcheck.compare.verdict import compare_group
from gradcheck.report import InputInfo, Report, TargetFailure, TensorInfo, comparison_line

BACKENDS = ["tensorflow", "jax", "torch"]
RNG = np.random.default_rng(0)
KERNEL = RNG.standard_normal((5, 3))
INPUT = RNG.standard_normal((4, 5))
OUTPUT = RNG.standard_normal((4, 3))


def write_side(folder, backend, arrays, *, stream=(), status="ok", dtype="float64", **meta):
    folder.mkdir(exist_ok=True)
    np.savez(folder / f"{backend}.npz", **arrays)
    document = {"backend": backend, "status": status, "modes": ["n/a"], "skipped": {}, "dtype": dtype}
    document["stream"] = {"n/a": [list(call) for call in stream]}
    document.update(meta)
    (folder / f"{backend}.json").write_text(json.dumps(document))


def sides(folder, kernels, *, streams=None, outputs=None):
    for backend, kernel in zip(BACKENDS, kernels):
        arrays = {
            "n/a|output|output": OUTPUT if outputs is None else outputs[backend],
            "n/a|grad|kernel": kernel,
            "n/a|grad|input": INPUT,
        }
        if streams:
            arrays.update(streams[backend][1])
        write_side(folder, backend, arrays, stream=streams[backend][0] if streams else ())


def report(backend, kernel_verdict="ok"):
    return Report(
        target="m.py:L",
        backend=backend,
        variables=(
            TensorInfo("kernel", "trainable", (5, 3), "float32", created_at="m.py:4", numeric_verdict=kernel_verdict),
        ),
        inputs=(InputInfo("input", (4, 5), "float32", (-1.0, 1.0), True, numeric_verdict="ok"),),
    )


def codes_of(result):
    return [(f.code, f.tensor, f.backend) for f in result.findings]


def test_the_backend_apart_from_the_others_is_at_fault_and_named_wrong_by_its_finite_differences(tmp_path):
    sides(tmp_path, [KERNEL * 1.5, KERNEL, KERNEL])
    results = [report("tensorflow", "mismatch"), report("jax"), report("torch")]
    tensorflow, jax, torch = compare_group(results, BACKENDS, str(tmp_path))
    assert codes_of(tensorflow) == [("backend-mismatch", "kernel", "tensorflow")]
    assert codes_of(jax) == codes_of(torch) == []
    message = tensorflow.findings[0].message
    assert message.startswith(
        "The gradient of `kernel` on TensorFlow differs from JAX's and PyTorch's by 3.3e-01 of its size"
    )
    assert "TensorFlow's gradient is the wrong one" in message
    assert tensorflow.findings[0].location == "m.py:4"  # no stream to name an op: where the tensor is made
    assert tensorflow.cross_backend == {
        "backends": ["jax", "torch"],
        "modes": ["n/a"],
        "status": "mismatch",
        "left_out": {},
    }
    assert jax.cross_backend["status"] == "ok"


def test_between_two_backends_their_finite_differences_decide(tmp_path):
    sides(tmp_path, [KERNEL, KERNEL * 2.0, KERNEL])
    results = [report("tensorflow"), report("jax", "mismatch")]
    tensorflow, jax = compare_group(results, ["tensorflow", "jax"], str(tmp_path))
    assert codes_of(tensorflow) == [] and codes_of(jax) == [("backend-mismatch", "kernel", "jax")]


def test_between_two_backends_that_each_agree_with_their_own_estimates_none_is_called_wrong(tmp_path):
    sides(tmp_path, [KERNEL, KERNEL * 2.0, KERNEL])
    tensorflow, jax = compare_group([report("tensorflow"), report("jax")], ["tensorflow", "jax"], str(tmp_path))
    assert codes_of(tensorflow) == [] and codes_of(jax) == [("backend-mismatch", "kernel", "jax")]
    assert "so which one is right is not known" in jax.findings[0].message


def test_rounding_differences_and_noise_on_a_zero_gradient_are_not_mismatches(tmp_path):
    # 1e-9 of the value's size (float64 kernels), and 1e-7 absolute on a gradient that is zero in
    # exact arithmetic (attention's key bias under a float32 softmax): below 1e-6 of the largest value.
    bias = {"tensorflow": np.full(3, 1e-17), "jax": np.full(3, 1.4e-7), "torch": np.full(3, -2e-16)}
    for backend in BACKENDS:
        arrays = {
            "n/a|output|output": OUTPUT * (1 + 1e-9 * BACKENDS.index(backend)),
            "n/a|grad|kernel": KERNEL * (1 + 1e-9 * BACKENDS.index(backend)),
            "n/a|grad|key.bias": bias[backend],
        }
        write_side(tmp_path, backend, arrays)
    compared = compare_group([report(b) for b in BACKENDS], BACKENDS, str(tmp_path))
    assert [codes_of(r) for r in compared] == [[], [], []]
    assert {r.cross_backend["status"] for r in compared} == {"ok"}


def test_the_op_where_outputs_part_is_named_from_the_call_streams(tmp_path):
    matmul = RNG.standard_normal((4, 3))
    streams = {
        backend: (
            [["numpy.matmul", "m.py:7"], ["nn.gelu", "m.py:8"]],
            {"n/a|call|0|output": matmul, "n/a|call|1|output": matmul * (2.0 if backend == "torch" else 1.0)},
        )
        for backend in BACKENDS
    }
    outputs = {b: OUTPUT * (2.0 if b == "torch" else 1.0) for b in BACKENDS}
    sides(tmp_path, [KERNEL, KERNEL, KERNEL], streams=streams, outputs=outputs)
    *_, torch = compare_group([report(b) for b in BACKENDS], BACKENDS, str(tmp_path))
    [found] = torch.findings
    assert (found.code, found.tensor, found.location) == ("backend-mismatch", "output", "m.py:8")
    assert "The outputs part at `nn.gelu` at m.py:8." in found.message


def test_a_backend_where_the_layer_raises_is_unsupported_at_its_line(tmp_path):
    sides(tmp_path, [KERNEL, KERNEL, KERNEL])
    failure = TargetFailure(
        "m.py:L", "RuntimeError raised at m.py:9 while building and calling the layer: no.", "torch", "m.py:9"
    )
    tensorflow, jax, torch = compare_group([report("tensorflow"), report("jax"), failure], BACKENDS, str(tmp_path))
    assert isinstance(torch, Report) and torch.backend == "torch"
    [found] = torch.findings
    assert (found.code, found.location, found.backend) == ("backend-unsupported", "m.py:9", "torch")
    assert found.message.startswith(
        "The layer runs on TensorFlow and JAX but not on PyTorch: RuntimeError raised at m.py:9"
    )
    assert tensorflow.cross_backend["status"] == "ok"


def test_a_check_that_could_not_run_for_another_reason_stays_a_failure(tmp_path):
    sides(tmp_path, [KERNEL, KERNEL, KERNEL])
    timeout = TargetFailure("m.py:L", "The check did not finish within 300 s.", "torch")
    compared = compare_group([report("tensorflow"), report("jax"), timeout], BACKENDS, str(tmp_path))
    assert compared[2] is timeout


def test_a_side_whose_pass_raised_is_unsupported_with_the_error(tmp_path):
    sides(tmp_path, [KERNEL, KERNEL, KERNEL])
    write_side(
        tmp_path,
        "jax",
        {},
        status="raised",
        error="TracerArrayConversionError: no.",
        where="m.py:12",
        doing="differentiating the probe loss",
    )
    _, jax, _ = compare_group([report(b) for b in BACKENDS], BACKENDS, str(tmp_path))
    [found] = jax.findings
    assert (found.code, found.location) == ("backend-unsupported", "m.py:12")
    assert (
        "raises on JAX at m.py:12 while differentiating the probe loss (TracerArrayConversionError: no.)"
        in found.message
    )
    assert jax.cross_backend["status"] == "unsupported"


@pytest.mark.parametrize(
    ("modes", "left_out", "line"),
    [
        (
            ["true", "false"],
            {},
            "backends: compared with JAX, PyTorch (training=True with the same random draws; training=False): ok",
        ),
        (
            ["false"],
            {"true": "it draws with shuffle, which cannot be held fixed"},
            "backends: compared with JAX, PyTorch (training=False; training=True left out: it draws with shuffle, which cannot be held fixed): ok",
        ),
        (["n/a"], {}, "backends: compared with JAX, PyTorch: ok"),
    ],
)
def test_the_report_says_what_it_was_compared_with_and_in_which_modes(modes, left_out, line):
    summary = {"backends": ["jax", "torch"], "modes": modes, "status": "ok", "left_out": left_out}
    assert comparison_line(Report(target="m.py:L", cross_backend=summary)) == line
    assert comparison_line(Report(target="m.py:L")) is None
