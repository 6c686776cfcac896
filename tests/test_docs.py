"""The README covers every command-line option, every finding code and every exit status."""

import re

import pytest

from conftest import ROOT
from gradcheck.cli import main
from gradcheck.report import CODES

README = (ROOT / "README.md").read_text()


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
    assert f"| `{code}` | {CODES[code][0]} |" in README, f"{code} ({CODES[code][0]}) is not in README.md's table"


@pytest.mark.parametrize("status", [0, 1, 2, 130, 143])
def test_every_exit_status_is_documented(status):
    section = README[README.index("### Exit status"):]
    assert re.search(rf"^\| {status} \| ", section, re.M), f"exit status {status} is not in README.md"


def test_pyproject_keys_are_documented():
    from gradcheck.config import _KEYS

    section = README[README.index("### Many layers: pyproject.toml"):]
    for key in _KEYS:
        assert key in section, f"pyproject key {key!r} is not in README.md"
