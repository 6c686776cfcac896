"""The README's Layout section names every module of the package, and each stays a size one can read;
the order conftest.py hands test files to xdist names files that exist."""

import re

from conftest import ROOT

LIMIT = 420  # "none much over 400 lines"


def _layout() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Layout\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_module_is_named_in_the_layout_section():
    named = set(re.findall(r"`(\w+)\.py`", _layout()))
    modules = {path.stem for path in (ROOT / "gradcheck").glob("*.py")} - {"__init__", "__main__"}
    assert modules - named == set(), "modules the README's Layout section does not describe"
    assert named - modules - {"finite_differences", "realistic", "reload", "second_order", "worker_cost", "worker_start", "screening"} == set()


def test_no_module_is_much_over_400_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in (ROOT / "gradcheck").glob("*.py")}
    assert {name: size for name, size in sizes.items() if size > LIMIT} == {}


def test_the_costliest_first_order_names_test_files_that_exist():
    """conftest.py hands these files to the xdist workers first; a renamed file would silently
    fall back to the end of the queue and leave one worker idle while the other runs it."""
    from conftest import _COSTLIEST_FIRST

    missing = [name for name in _COSTLIEST_FIRST if not (ROOT / "tests" / name).is_file()]
    assert missing == []
    assert len(set(_COSTLIEST_FIRST)) == len(_COSTLIEST_FIRST)
