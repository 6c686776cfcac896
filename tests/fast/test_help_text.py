"""--help: the example is one unbroken command block and the multi-input rule matches the README."""

from click.testing import CliRunner

from gradcheck.cli import main


def test_help_example_is_not_rewrapped_and_states_the_multi_input_rule():
    result = CliRunner().invoke(main, ["--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("    gradcheck sample_layers/classic.py:DenseWithActivation \\")
    assert lines[start + 1] == "        --init units=10 --input-shape 100,5"
    flat = " ".join(result.output.split())
    assert "several inputs go to call() as a list, or as separate arguments when call() takes that many" in flat
    assert all(len(line) <= 80 for line in lines), result.output
