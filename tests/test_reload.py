"""The save/reload round trip (on by default): from_config(get_config()), then a .keras save and load_model."""

from pathlib import Path

from conftest import run_cli

LAYERS = "tests/data/reload_layers.py"
RELOAD_CODES = {"reload-failed", "reload-mismatch", "untracked-variable"}


def line_of(marker: str) -> str:
    lines = (Path(__file__).parent / "data" / "reload_layers.py").read_text().splitlines()
    (number,) = [i for i, line in enumerate(lines, start=1) if marker in line]
    return f"{LAYERS}:{number}"


def findings_of(result):
    return {(f["code"], f["tensor"], f["location"]) for f in result.json()["findings"] if f["code"] in RELOAD_CODES}


def run(name, *args):
    return run_cli([f"{LAYERS}:{name}", "--input-shape", "16,5", "--no-numeric", *args, "--json"])


def test_a_layer_that_round_trips_has_no_finding():
    result = run("RoundTrips", "--init", "units=3", "--init", "activation=relu")
    assert result.exit_code == 0, result
    assert findings_of(result) == set(), result
    assert result.json()["reload"] == "ok", result


def test_a_required_argument_missing_from_get_config_is_named():
    result = run("ForgetsRequiredArgument", "--init", "units=3")
    assert result.exit_code == 1, result
    assert findings_of(result) == {("reload-failed", "units", line_of("# forgets units"))}, result
    (item,) = result.json()["findings"]
    assert item["message"].startswith("from_config(get_config()) raised (TypeError"), result
    assert "does not return the constructor argument `units`" in item["message"], result
    assert result.json()["reload"] == "failed", result


def test_an_argument_with_a_default_left_out_of_get_config_is_named():
    result = run("ForgetsDefaultArgument", "--init", "units=3", "--init", "activation=relu")
    assert result.exit_code == 1, result
    assert findings_of(result) == {("reload-mismatch", "activation", line_of("# forgets activation"))}, result
    assert result.json()["reload"] == "mismatch", result


def test_the_default_value_itself_reloads_the_same_layer():
    # With the default activation the reloaded layer computes the same: no false alarm.
    result = run("ForgetsDefaultArgument", "--init", "units=3")
    assert findings_of(result) == set(), result
    assert result.json()["reload"] == "ok", result


def test_a_raw_variable_is_untracked_and_does_not_survive_a_reload():
    result = run("RawVariableScale")
    where = line_of("# raw variable")
    assert findings_of(result) == {("untracked-variable", "scale", where), ("reload-mismatch", "scale", where)}, result


def test_a_layer_instance_is_reloaded_from_its_class():
    # An instance has no --init to compare with; the attribute that comes back different is named.
    result = run("INSTANCE")
    assert findings_of(result) == {("reload-mismatch", "activation", line_of("# forgets activation"))}, result


def test_a_factory_target_round_trips_the_layer_it_returns():
    result = run("make_round_trips")
    assert findings_of(result) == set(), result
    assert result.json()["reload"] == "ok", result


def test_no_reload_skips_the_check():
    result = run("ForgetsRequiredArgument", "--init", "units=3", "--no-reload")
    assert result.exit_code == 0, result
    assert findings_of(result) == set(), result
    assert result.json()["reload"] is None, result


def test_reload_writes_nothing_into_the_working_folder(tmp_path):
    import shutil

    shutil.copy(Path(__file__).parent / "data" / "reload_layers.py", tmp_path / "layers.py")
    result = run_cli(["layers.py:RoundTrips", "--init", "units=3", "--input-shape", "16,5", "--no-numeric"], cwd=tmp_path)
    assert result.exit_code == 0, result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers.py"], result


def test_a_functional_model_with_a_custom_layer_round_trips():
    # from_config of a functional model looks its custom layers up by name, as load_model does.
    result = run("make_functional_model")
    assert findings_of(result) == set(), result
    assert result.json()["reload"] == "ok", result
