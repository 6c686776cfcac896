"""--write-baseline, then --baseline: a layer with three findings passes, a fourth fails naming only it,
and the baseline stays valid when the code moves down ten lines or another seed is used."""

import json
import shutil

import pytest
from conftest import ROOT, line_in, run_cli

LAYERS = ROOT / "tests" / "data" / "baseline_layers.py"
TARGET = "baseline_layers.py:ThreeFindings"
ARGS = [TARGET, "--input-shape", "8,5"]
THREE = {("none-gradient", "bias"), ("none-gradient", "scale"), ("unused-variable", "unused")}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A copy of the layer and the baseline written from it (exit 0: every finding is recorded)."""
    folder = tmp_path_factory.mktemp("baseline")
    shutil.copy(LAYERS, folder / "baseline_layers.py")
    written = run_cli([*ARGS, "--write-baseline", "gradcheck-baseline.json", "--json"], cwd=folder)
    return folder, written


def _counting(result) -> list:
    """The errors and warnings that count (an info, here float32-fallback for the int cast, never fails a run)."""
    return [(f["code"], f["tensor"]) for f in result.json()["findings"] if not f["ignored"] and f["severity"] != "info"]


def test_write_baseline_records_the_three_findings_and_exits_0(recorded):
    folder, written = recorded
    assert written.exit_code == 0, written
    assert written.stderr == "gradcheck: wrote 3 findings to the baseline gradcheck-baseline.json.\n"
    document = json.loads((folder / "gradcheck-baseline.json").read_text())
    entries = document["findings"]
    assert {(e["code"], e["tensor"]) for e in entries} == THREE
    assert {e["scope"] for e in entries} == {"ThreeFindings.call", "ThreeFindings.build"}
    assert not any(char.isdigit() for e in entries for char in e["message"].replace("int32", ""))  # no line, no number
    recorded_now = [f for f in written.json()["findings"] if f["severity"] != "info"]  # infos never fail a run
    assert {(f["code"], f["tensor"], f["ignored_by"]) for f in recorded_now} == {
        (code, tensor, "baseline gradcheck-baseline.json") for code, tensor in THREE
    }


def test_baseline_passes_the_same_code(recorded):
    folder, _ = recorded
    result = run_cli([*ARGS, "--baseline", "gradcheck-baseline.json", "--json"], cwd=folder)
    assert result.exit_code == 0, result
    assert _counting(result) == []
    assert all(f["ignore_reason"] == "recorded in the baseline" for f in result.json()["findings"] if f["ignored"])


def test_a_fourth_finding_fails_and_is_the_only_one_named(recorded, tmp_path):
    folder, _ = recorded
    shutil.copy(folder / "gradcheck-baseline.json", tmp_path)
    source = LAYERS.read_text().replace(
        '        self.unused = self.add_weight(shape=(3,), name="unused")\n',
        '        self.unused = self.add_weight(shape=(3,), name="unused")\n'
        '        self.also_unused = self.add_weight(shape=(3,), name="also_unused")\n',
    )
    (tmp_path / "baseline_layers.py").write_text(source)
    result = run_cli([*ARGS, "--baseline", "gradcheck-baseline.json", "-q"], cwd=tmp_path)
    assert result.exit_code == 1, result
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ERROR",
        "unused-variable",
        "also_unused",
        f"baseline_layers.py:{line_in(source, 'also_unused')}",
    ]
    assert [line for line in lines if line.startswith(("ERROR", "WARNING"))] == [lines[0]]
    as_json = run_cli([*ARGS, "--baseline", "gradcheck-baseline.json", "--json"], cwd=tmp_path)
    assert _counting(as_json) == [("unused-variable", "also_unused")]


def test_moving_the_code_down_ten_lines_keeps_the_baseline_valid(recorded, tmp_path):
    folder, _ = recorded
    shutil.copy(folder / "gradcheck-baseline.json", tmp_path)
    moved = "\n".join(f"# line {n} added above the layer" for n in range(10)) + "\n" + LAYERS.read_text()
    (tmp_path / "baseline_layers.py").write_text(moved)
    result = run_cli([*ARGS, "--baseline", "gradcheck-baseline.json", "--json"], cwd=tmp_path)
    assert result.exit_code == 0, result
    assert _counting(result) == []
    located = {f["tensor"]: f["location"] for f in result.json()["findings"]}
    assert located["bias"] == f"baseline_layers.py:{line_in(moved, 'tf.stop_gradient(self.bias)')}"  # the moved line


def test_another_seed_keeps_the_baseline_valid(recorded):
    folder, _ = recorded
    result = run_cli([*ARGS, "--seed", "7", "--baseline", "gradcheck-baseline.json", "--json"], cwd=folder)
    assert result.exit_code == 0, result
    assert _counting(result) == []


def test_a_fixed_finding_is_listed_as_a_baseline_entry_to_drop(recorded, tmp_path):
    folder, _ = recorded
    shutil.copy(folder / "gradcheck-baseline.json", tmp_path)
    source = LAYERS.read_text().replace("tf.stop_gradient(self.bias)", "self.bias")
    (tmp_path / "baseline_layers.py").write_text(source)
    result = run_cli([*ARGS, "--baseline", "gradcheck-baseline.json", "--json"], cwd=tmp_path)
    assert result.exit_code == 0, result
    fixed = [f for f in result.json()["findings"] if f["code"] == "baseline-fixed"]
    assert [(f["severity"], f["tensor"], f["message"]) for f in fixed] == [
        (
            "info",
            "bias",
            "The baseline gradcheck-baseline.json lists none-gradient `bias` in ThreeFindings.call, and this run no "
            "longer finds it: it was fixed (or its function was renamed). Run gradcheck --write-baseline "
            "gradcheck-baseline.json to drop the entry, so the finding cannot come back unnoticed.",
        )
    ]


def test_baseline_files_are_refused_before_any_check(recorded, tmp_path):
    shutil.copy(LAYERS, tmp_path / "baseline_layers.py")
    before = (tmp_path / "baseline_layers.py").read_bytes()
    onto_source = run_cli([*ARGS, "--write-baseline", "baseline_layers.py"], cwd=tmp_path)
    assert onto_source.exit_code == 2
    assert onto_source.stderr == (
        f"gradcheck: --write-baseline baseline_layers.py is the source of {TARGET}: this run reads it, and the "
        "baseline would overwrite it. Give another file, e.g. --write-baseline gradcheck-baseline.json.\n"
    )
    assert (tmp_path / "baseline_layers.py").read_bytes() == before
    (tmp_path / "notes.json").write_text('{"mine": true}\n')
    not_a_baseline = run_cli([*ARGS, "--write-baseline", "notes.json"], cwd=tmp_path)
    assert not_a_baseline.exit_code == 2
    assert "--write-baseline notes.json exists and is not a gradcheck baseline" in not_a_baseline.stderr
    assert (tmp_path / "notes.json").read_text() == '{"mine": true}\n'
    missing = run_cli([*ARGS, "--baseline", "nowhere.json"], cwd=tmp_path)
    assert missing.exit_code == 2
    assert missing.stderr == (
        "gradcheck: --baseline nowhere.json: there is no such file. Record today's findings first with gradcheck "
        "--write-baseline nowhere.json, commit it, then use --baseline nowhere.json in CI.\n"
    )
    same = run_cli([*ARGS, "--baseline", "b.json", "--write-baseline", "b.json"], cwd=recorded[0])
    assert same.exit_code == 2 and "b.json" in same.stderr
