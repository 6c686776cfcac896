"""The example on a code's page really produces that code: a few pages' examples, run as written."""

import re
import shlex

import pytest
from conftest import ROOT, run_cli

PAGES = ROOT / "gradcheck" / "findings"
# One page per kind of check: what call() uses, gradients, finite differences, reloading, the gate.
CHECKED = [
    "untracked-variable",
    "none-gradient",
    "zero-gradient",
    "gradient-mismatch",
    "reload-mismatch",
    "unused-ignore",
]


def _example(code: str):
    """(the files the example writes, the command's arguments) of `code`'s page."""
    section = (PAGES / f"{code}.md").read_text().split("## Example", 1)[1].split("\n## ", 1)[0]
    files = {}
    for language, name in (("python", "example.py"), ("toml", "pyproject.toml"), ("json", "gradcheck-baseline.json")):
        block = re.search(rf"```{language}\n(.*?)```", section, re.S)
        if block:
            files[name] = block.group(1)
    [command] = re.findall(r"```sh\n(gradcheck [^\n]+)\n```", section)
    return files, shlex.split(command)[1:]


@pytest.mark.parametrize("code", CHECKED)
def test_the_pages_example_produces_its_code(code, tmp_path):
    files, args = _example(code)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = run_cli([*args, "--json"], cwd=tmp_path)
    codes = [item["code"] for item in result.json()["findings"]]
    assert code in codes, result
