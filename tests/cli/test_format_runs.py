"""The real command's reports in each format: what the verdict says matches the exit status, and every format is written."""

import re
import xml.etree.ElementTree as ET

import pytest
from conftest import line_of


def _last_line(text: str) -> str:
    return text.rstrip("\n").split("\n\n")[-1].replace("\n", " ")


@pytest.mark.parametrize("fail_on, status", [("error", 0), ("warning", 1)])
def test_cli_verdict_matches_its_exit_status_on_a_layer_with_warnings_only(cli, fail_on, status):
    result = cli(
        ["sample_layers/gradients.py:SaturatedSigmoid", "--input-shape", "16,5", "--no-numeric", "--fail-on", fail_on]
    )
    assert result.exit_code == status, result
    last = _last_line(result.stdout)
    assert last.startswith("FAILED" if status else "OK"), result
    assert "vanishing-gradient" in result.stdout, result


_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _tables(markdown: str):
    """Each GFM table as a list of rows, each row a list of cells split on unescaped pipes."""
    tables, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in _UNESCAPED_PIPE.split(line.strip())[1:-1]])
        elif current:
            tables.append(current)
            current = []
    return tables


@pytest.mark.parametrize("output_format", ["markdown", "svg"])
def test_cli_formats_write_the_report(cli, tmp_path, output_format):
    out = tmp_path / f"report.{output_format}"
    result = cli(
        [
            "sample_layers/untracked.py:RawVariable",
            "--input-shape",
            "16,5",
            "--no-numeric",
            "--format",
            output_format,
            "--output",
            out,
        ]
    )
    assert result.exit_code == 1 and result.stdout == "", result
    written = out.read_text()
    if output_format == "markdown":
        assert written.startswith("## FAILED `sample_layers/untracked.py:RawVariable`")
        line = line_of("self.w = tf.Variable(", "sample_layers/untracked.py")
        assert f"- **ERROR** `untracked-variable` `w` at `sample_layers/untracked.py:{line}`: " in written
        assert all(len(row) == len(table[0]) for table in _tables(written) for row in table)
    else:
        assert "untracked-variable" in "".join(ET.fromstring(written).itertext()).replace("\xa0", " ")
