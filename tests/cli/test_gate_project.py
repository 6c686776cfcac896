"""A project adopts the gate: an intended stop_gradient, an intended straight-through estimator and a
frozen stem pass with inline ignores and with pyproject ignores, a new bug fails the run again, and
a suppression that matches nothing is a warning. The real command, on a copy of tests/data/gate_project."""

import re
import shutil

import pytest
from conftest import ROOT, line_in, run_cli

PROJECT = ROOT / "tests" / "data" / "gate_project"
_COMMENT = re.compile(r"  # gradcheck: ignore\[.*$", re.M)

# (target, code, tensor) of every finding the project's layers make, each meant.
INTENDED = {
    ("layers.py:TargetNetwork", "none-gradient", "target_kernel"),
    ("layers.py:QuantisedDense", "surrogate-gradient", "kernel"),  # an info: it needs no ignore
    ("layers.py:FrozenStem", "none-gradient", "stem.kernel"),
    ("layers.py:FrozenStem", "none-gradient", "stem.bias"),
    ("layers.py:FrozenStem", "input-gradient-none", "input"),
}


@pytest.fixture
def project(tmp_path):
    shutil.copytree(PROJECT, tmp_path / "project")
    return tmp_path / "project"


def _findings(result) -> dict:
    """{(target, code, tensor): finding} of a several-target JSON document."""
    return {
        (report["target"], item["code"], item["tensor"]): item
        for report in result.json()["targets"]
        for item in report["findings"]
    }


def test_the_project_fails_without_its_suppressions(project):
    layers = project / "layers.py"
    layers.write_text(_COMMENT.sub("", layers.read_text()))
    result = run_cli(["--json"], cwd=project)
    assert result.exit_code == 1, result
    found = _findings(result)
    assert set(found) == INTENDED
    assert not any(item["ignored"] for item in found.values())
    assert found[("layers.py:QuantisedDense", "surrogate-gradient", "kernel")]["severity"] == "info"


def test_inline_ignores_let_the_project_pass_and_keep_each_reason(project):
    result = run_cli(["--json"], cwd=project)
    assert result.exit_code == 0, result
    found = _findings(result)
    assert set(found) == INTENDED
    source = (project / "layers.py").read_text()
    # A formatter wrapped this statement: the finding names its first line, the comment is on its last.
    op_line = line_in(source, "target = tf.stop_gradient(")
    comment_line = line_in(source, "ignore[none-gradient] frozen target branch")
    assert comment_line == op_line + 2
    assert found[("layers.py:TargetNetwork", "none-gradient", "target_kernel")] | {"message": "...", "help": "..."} == {
        "code": "none-gradient",
        "severity": "error",
        "tensor": "target_kernel",
        "message": "...",
        "location": f"layers.py:{op_line}",
        "cause": f"StopGradient at layers.py:{op_line}",
        "ignored": True,
        "ignore_reason": "frozen target branch, copied from the online kernel",
        "ignored_by": f"comment at layers.py:{comment_line}",
        "backend": "tensorflow",
        "help": "...",
    }
    stem_line = line_in(source, "pretrained stem, frozen on purpose")
    assert (
        found[("layers.py:FrozenStem", "input-gradient-none", "input")]["ignored_by"]
        == f"comment at layers.py:{stem_line}"
    )
    assert not found[("layers.py:QuantisedDense", "surrogate-gradient", "kernel")]["ignored"]
    text = run_cli([], cwd=project)
    assert text.exit_code == 0, text
    assert "OK layers.py:FrozenStem: 0 errors, 0 warnings, 3 ignored; every weight" in text.stdout
    assert "3 ignored findings not listed (--show-ignored lists them)." in text.stdout


def test_pyproject_ignores_let_the_project_pass(project):
    layers = project / "layers.py"
    layers.write_text(_COMMENT.sub("", layers.read_text()))
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    text = text.replace(
        'target = "layers.py:TargetNetwork"\ninput-shape = "8,5"\nreload = false\n',
        'target = "layers.py:TargetNetwork"\ninput-shape = "8,5"\nreload = false\n'
        'ignore = [{code = "none-gradient", tensor = "target_kernel", reason = "frozen target branch"}]\n',
    )
    text = text.replace(
        'target = "layers.py:FrozenStem"\ninput-shape = "8,5"\n',
        'target = "layers.py:FrozenStem"\ninput-shape = "8,5"\nignore = ["none-gradient", "input-gradient-none"]\n',
    )
    pyproject.write_text(text)
    result = run_cli(["--json"], cwd=project)
    assert result.exit_code == 0, result
    found = _findings(result)
    assert set(found) == INTENDED
    assert all(item["ignored"] for item in found.values() if item["severity"] != "info")
    target = found[("layers.py:TargetNetwork", "none-gradient", "target_kernel")]
    assert (target["ignored_by"], target["ignore_reason"]) == (
        "pyproject.toml ignore none-gradient:target_kernel",
        "frozen target branch",
    )
    stem = found[("layers.py:FrozenStem", "none-gradient", "stem.bias")]
    assert (stem["ignored_by"], stem["ignore_reason"]) == ("pyproject.toml ignore none-gradient", None)


def test_a_new_bug_fails_the_run_again_and_is_the_only_finding_that_counts(project):
    layers = project / "layers.py"
    source = layers.read_text()
    source = source.replace(
        '        self.target_kernel = self.add_weight(shape=(input_shape[-1], 4), name="target_kernel")\n',
        '        self.target_kernel = self.add_weight(shape=(input_shape[-1], 4), name="target_kernel")\n'
        '        self.forgotten = self.add_weight(shape=(4,), name="forgotten")\n',
    )
    layers.write_text(source)
    result = run_cli(["--json"], cwd=project)
    assert result.exit_code == 1, result
    counting = [(key, item["location"]) for key, item in _findings(result).items() if not item["ignored"] and item["severity"] != "info"]
    assert counting == [
        (("layers.py:TargetNetwork", "unused-variable", "forgotten"), f"layers.py:{line_in(source, 'forgotten')}")
    ]
    text = run_cli(["-q"], cwd=project)
    assert text.exit_code == 1
    assert text.stdout.startswith(
        "FAILED layers.py:TargetNetwork: 1 error, 0 warnings, 1 ignored.\nERROR   unused-variable"
    )


def test_an_ignore_that_matches_nothing_warns_at_its_line(project):
    layers = project / "layers.py"
    source = layers.read_text().replace(
        "        online = tf.matmul(inputs, self.online_kernel)\n",
        "        online = tf.matmul(inputs, self.online_kernel)  # gradcheck: ignore[zero-gradient] was dead once\n",
    )
    layers.write_text(source)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'target = "layers.py:QuantisedDense"\n',
            'target = "layers.py:QuantisedDense"\nignore = ["nonfinite-gradient"]\n',
        )
    )
    result = run_cli(["--json"], cwd=project)
    assert result.exit_code == 0, result  # a warning: it fails the run only under --fail-on warning
    unused = [
        (key[0], item["location"], item["message"])
        for key, item in _findings(result).items()
        if key[1] == "unused-ignore"
    ]
    line = line_in(source, "was dead once")
    assert unused == [
        (
            "layers.py:TargetNetwork",
            f"layers.py:{line}",
            f"`# gradcheck: ignore[zero-gradient]` at layers.py:{line} matched no finding: no `zero-gradient` finding "
            "of this run points at this line or at the line that made its tensor. Remove the code from the comment "
            "(or the comment) if the finding is gone; if it moved, put the comment on the line the report names.",
        ),
        (
            "layers.py:QuantisedDense",
            None,
            'The pyproject.toml ignore rule "nonfinite-gradient" matched no finding of layers.py:QuantisedDense. '
            "Remove it from the entry if the finding is gone (or check the code and the tensor's name against the report).",
        ),
    ]
    assert run_cli(["-q", "--fail-on", "warning"], cwd=project).exit_code == 1
    assert run_cli(["-q", "--fail-on", "warning", "--ignore", "unused-ignore"], cwd=project).exit_code == 0
