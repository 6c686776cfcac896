"""The README covers every command-line option, every finding code (linking its page) and every exit status."""

import re

import pytest
from conftest import ROOT

from gradcheck.cli import main
from gradcheck.codes import CODES

README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The README's section under `title`, up to the next heading of any level."""
    start = README.index(f"\n{title}\n")
    end = re.search(r"^#+ ", README[start + len(title) + 2 :], re.M)
    return README[start : start + len(title) + 2 + end.start()] if end else README[start:]


def _options():
    for param in main.params:
        for name in (*param.opts, *param.secondary_opts):
            if name.startswith("--") and name != "--help":
                yield name


@pytest.mark.parametrize("option", sorted(set(_options())))
def test_every_option_is_documented(option):
    assert re.search(rf"`[^`]*{re.escape(option)}\b[^`]*`", README), f"{option} is not in README.md"


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_finding_code_is_documented(code):
    assert f"| [`{code}`](docs/findings/{code}.md) | {CODES[code].severity} |" in section("## What it finds"), (
        f"{code} ({CODES[code].severity}) is not in README.md's table, linked to its page"
    )
    assert (ROOT / "docs" / "findings" / f"{code}.md").is_file()


def test_the_readme_starts_with_the_two_commands():
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    assert blocks[0].startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && gradcheck ")
    assert blocks[1] == ".venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -n auto"
    assert README.index(blocks[1]) < README.index("\n## Usage\n")


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[test]'" in ci and '"$VENV/bin/python" -m pytest -n auto' in ci


def test_the_readme_holds_no_timing_history():
    assert len(README.splitlines()) <= 300
    assert not re.search(r"\d+(\.\d+)? s\b", README), re.search(r".{40}\d+(\.\d+)? s\b.{20}", README)


@pytest.mark.parametrize("status", [0, 1, 2, 130, 143])
def test_every_exit_status_is_documented(status):
    assert re.search(rf"^\| {status} \| ", section("### Exit status"), re.M), (
        f"exit status {status} is not in README.md"
    )


def test_pyproject_keys_are_documented():
    from gradcheck.options.pyproject import _KEYS

    # A key is documented when the section's example sets it (`seed = 3`) or its comment names it
    # among the optional keys (`# optional: seed, training, ...`), not when the word occurs anywhere.
    text = section("### Many layers: pyproject.toml")
    documented = set(re.findall(r"^([a-z-]+) = ", text, re.M))
    for listed in re.findall(r"# optional: ([a-z, -]+)", text):
        documented |= {name.strip() for name in listed.split(",")}
    assert set(_KEYS) <= documented, f"pyproject keys {sorted(set(_KEYS) - documented)} are not in README.md's section"


def test_every_relative_link_of_the_readme_and_docs_names_a_file_that_exists():
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for document in documents:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", document.read_text()):
            if not target.startswith(("http://", "https://")) and not (document.parent / target).exists():
                broken.append((document.name, target))
    assert broken == []
