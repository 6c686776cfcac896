"""Reports of several backends in every format: the backend is named wherever the target is, the
framework and its version head each report, and a TensorFlow-only run reads as it always has."""

import json

from gradcheck.render import render
from gradcheck.report import Report, TargetFailure, finding

VERSIONS = {
    "tensorflow": {"tensorflow": "2.21.0", "keras": "3.15.1"},
    "jax": {"jax": "0.10.2", "keras": "3.15.1"},
    "torch": {"torch": "2.13.0+cpu", "keras": "3.15.1"},
}


def report(backend, *findings):
    return Report(
        target="m.py:L",
        backend=backend,
        versions=VERSIONS[backend],
        training_modes=("n/a",),
        findings=tuple(f.__class__(**{**f.__dict__, "backend": backend}) for f in findings),
    )


UNTRACKED = finding("untracked-variable", "w", "`w` is a raw jax.Array made at m.py:9.", "m.py:9")


def test_the_text_report_names_each_backend_and_its_framework():
    text = render("text", [report("tensorflow"), report("jax", UNTRACKED), report("torch")])
    lines = text.splitlines()
    assert "gradcheck m.py:L [jax]   JAX 0.10.2 · Keras 3.15.1 · seed 0 · training=n/a" in lines
    assert "gradcheck m.py:L [torch]   PyTorch 2.13.0+cpu · Keras 3.15.1 · seed 0 · training=n/a" in lines
    assert "FAILED m.py:L [jax]: 1 error, 0 warnings." in lines
    assert any(line.startswith("OK m.py:L [tensorflow]: 0 errors") for line in lines)


def test_a_tensorflow_run_reads_as_before():
    text = render("text", [report("tensorflow")])
    assert text.splitlines()[0] == "gradcheck m.py:L   TensorFlow 2.21.0 · Keras 3.15.1 · seed 0 · training=n/a"
    assert "[tensorflow]" not in text


def test_one_backend_that_is_not_tensorflow_is_named_too():
    assert "FAILED m.py:L [jax]: 1 error" in render("text", [report("jax", UNTRACKED)])


def test_the_json_document_carries_the_backend_of_each_report_and_finding():
    document = json.loads(render("json", [report("tensorflow"), report("jax", UNTRACKED)]))
    assert [t["backend"] for t in document["targets"]] == ["tensorflow", "jax"]
    assert document["targets"][1]["findings"][0]["backend"] == "jax"
    assert [t["target"] for t in document["targets"]] == ["m.py:L", "m.py:L"]  # the target as given


def test_a_failure_says_its_backend_in_json_and_text():
    failure = TargetFailure("m.py:L", "The check did not finish within 300 s.", "torch")
    assert failure.to_dict() == {"target": "m.py:L", "ok": False, "error": failure.message, "backend": "torch"}
    assert "COULD NOT RUN m.py:L [torch]: The check did not finish" in render("text", [report("jax"), failure])


def test_annotations_and_testcases_name_the_backend():
    github = render("github", [report("tensorflow"), report("jax", UNTRACKED)])
    assert "::error file=m.py,line=9,title=untracked-variable::m.py:L [jax]: `w` is a raw jax.Array" in github
    junit = render("junit", [report("tensorflow"), report("jax", UNTRACKED)])
    assert 'testsuite name="m.py:L [jax]"' in junit
