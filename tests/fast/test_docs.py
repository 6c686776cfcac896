"""The README covers every command-line option, every finding code and every exit status."""

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
    assert f"| `{code}` | {CODES[code].severity} |" in README, (
        f"{code} ({CODES[code].severity}) is not in README.md's table"
    )


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
