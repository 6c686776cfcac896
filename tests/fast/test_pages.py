"""One page per finding code (gradcheck/findings/CODE.md, docs/findings links to it): every code has
one, every page is a code's, its title states the code's severity, it has the four parts, its
links name pages that exist; `--explain` prints it and `--version` the versions, without TensorFlow."""

import re
import sys
from importlib import metadata

import pytest
from click.testing import CliRunner
from conftest import ROOT

from gradcheck.cli import main
from gradcheck.codes import CODES

PAGES = ROOT / "gradcheck" / "findings"
SECTIONS = ("## What it means", "## Why it matters for training", "## Example", "## How to fix it")


def test_every_code_has_a_page_and_every_page_is_a_code():
    assert sorted(p.stem for p in PAGES.glob("*.md")) == sorted(CODES)


def test_docs_findings_is_the_same_folder():
    assert (ROOT / "docs" / "findings").resolve() == PAGES.resolve()


@pytest.mark.parametrize("code", sorted(CODES))
def test_a_page_states_its_code_and_severity_and_has_every_part(code):
    text = (PAGES / f"{code}.md").read_text()
    assert text.splitlines()[0] == f"# {code} ({CODES[code].severity})"
    positions = [text.find(section) for section in SECTIONS]
    assert -1 not in positions and positions == sorted(positions), positions
    example = text.split("## Example", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"```sh\n(gradcheck [^\n]+)\n```", example)
    assert command, "the example has no gradcheck command"


@pytest.mark.parametrize("code", sorted(CODES))
def test_a_page_names_only_codes_that_exist(code):
    text = (PAGES / f"{code}.md").read_text()
    for target in re.findall(r"\]\(([^)]+)\)", text):
        assert target.endswith(".md") and target[:-3] in CODES, target
    # A code written in prose (`none-gradient`) that looks like a code must be one.
    for word in re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", text):
        if word.endswith(("-gradient", "-variable", "-ignore", "-code", "-failed", "-mismatch", "-fixed")):
            assert word in CODES, word


@pytest.mark.parametrize("code", sorted(CODES))
def test_explain_prints_the_page(code):
    result = CliRunner().invoke(main, ["--explain", code])
    assert result.exit_code == 0, result.output
    assert result.stdout == (PAGES / f"{code}.md").read_text().rstrip("\n") + "\n"


def test_explain_of_an_unknown_code_lists_the_codes_and_exits_2():
    result = CliRunner().invoke(main, ["--explain", "none-gradients"])
    assert result.exit_code == 2
    assert result.stderr == (
        "gradcheck: --explain 'none-gradients': there is no such finding code. The codes are: "
        f"{', '.join(sorted(CODES))}.\n"
    )


def test_version_prints_gradcheck_tensorflow_and_keras_without_importing_them():
    from gradcheck import __version__

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    python = ".".join(map(str, sys.version_info[:3]))
    others = ""
    for shown, name in (("JAX", "jax"), ("PyTorch", "torch")):  # the extras, when installed
        try:
            others += f", {shown} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            pass
    assert result.stdout == (
        f"gradcheck {__version__} (TensorFlow {metadata.version('tensorflow')}, "
        f"Keras {metadata.version('keras')}{others}, Python {python})\n"
    )


def test_version_explain_and_the_daemons_status_import_neither_tensorflow_nor_keras(tmp_path):
    """In a fresh Python: other tests of this process may have imported TensorFlow already. (A run
    whose workers a daemon forks imports neither: tests/isolation/test_daemon.py.)"""
    import os
    import subprocess

    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from gradcheck.cli import main\n"
        "for args, status in ((['--version'], 0), (['--explain', 'none-gradient'], 0), (['--daemon', 'status'], 1)):\n"
        "    assert CliRunner().invoke(main, args).exit_code == status, args\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    environment = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}  # no daemon there
    os.chmod(tmp_path, 0o700)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=environment)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
