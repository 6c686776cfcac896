"""docs/output.md's JSON example has the keys of a real document, in the same order."""

import json
import re

from conftest import ROOT


def _readme_example() -> dict:
    doc = (ROOT / "docs" / "output.md").read_text()
    section = doc[doc.index("## JSON document") :]
    block = re.search(r"```json\n(.*?)```", section, re.S).group(1)
    return json.loads(re.sub(r",\s*\.\.\.", "", block))  # `...` marks entries the example leaves out


def _keys(document: dict) -> dict:
    """Key order at the top and in the first entry of every list of objects."""
    keys = {"": list(document)}
    for key, value in document.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            keys[key] = list(value[0])
        elif isinstance(value, dict):
            keys[key] = list(value)
    return keys


def test_readme_json_example_keys_match_a_real_report_in_order():
    from gradcheck import check
    from gradcheck.render.json import render

    report = check("sample_layers/untracked.py:RawVariable", input_shape=(16, 5), numeric=False)
    real = json.loads(render([report]))
    assert _keys(_readme_example()) == _keys(real)
