"""The save/reload round trip (on by default): from_config(get_config()), then a .keras save and load_model."""


from conftest import ROOT, run_cli

LAYERS = "tests/data/reload_layers.py"
RELOAD_CODES = {"reload-failed", "reload-failed-alone", "reload-mismatch", "untracked-variable"}


def line_of(marker: str) -> str:
    lines = (ROOT / "tests" / "data" / "reload_layers.py").read_text().splitlines()
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
    # An error whether the layer is saved alone or in a Functional model: from_config fails in both.
    result = run("ForgetsRequiredArgument", "--init", "units=3")
    assert result.exit_code == 1, result
    assert findings_of(result) == {("reload-failed", "units", line_of("# forgets units"))}, result
    (item,) = result.json()["findings"]
    assert item["severity"] == "error", result
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
    # One root cause, one finding: the reload that loses `scale` is told in its untracked-variable error.
    result = run("RawVariableScale")
    where = line_of("# raw variable")
    assert findings_of(result) == {("untracked-variable", "scale", where)}, result
    (item,) = result.json()["findings"]
    assert item["message"].endswith(
        "Make it with `self.add_weight(...)` in `build()`. The saved model loses its value: after "
        "from_config(get_config()) the layer's output differs by 4.3e-01 of its scale."
    ), result
    assert result.json()["reload"] == "mismatch", result


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

    shutil.copy(ROOT / "tests" / "data" / "reload_layers.py", tmp_path / "layers.py")
    result = run_cli(
        ["layers.py:RoundTrips", "--init", "units=3", "--input-shape", "16,5", "--no-numeric"], cwd=tmp_path
    )
    assert result.exit_code == 0, result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers.py"], result


def test_a_functional_model_with_a_custom_layer_round_trips():
    # from_config of a functional model looks its custom layers up by name, as load_model does.
    result = run("make_functional_model")
    assert findings_of(result) == set(), result
    assert result.json()["reload"] == "ok", result


def test_a_sublayer_only_the_first_call_builds_is_a_warning_named_with_its_fix(tmp_path):
    # Only the bare layer fails to load: a model holding it loads, so nothing trained is lost.
    result = run("SublayerBuiltOnlyByCall")
    assert result.exit_code == 0, result
    assert findings_of(result) == {("reload-failed-alone", None, line_of("class SublayerBuiltOnlyByCall"))}, result
    (item,) = result.json()["findings"]
    assert item["severity"] == "warning", result
    assert result.json()["reload"] == "failed alone", result
    assert item["message"].startswith("load_model of the .keras file raised (ValueError: "), result
    assert item["message"].endswith(
        "Only the layer saved on its own is lost: a Functional model that calls it on its Input saves, loads and "
        "computes the same (checked). The layer builds self.project only when it is first called, not in build(): "
        "loaded on its own, the layer is built from its saved input shape and the sublayer is left without the "
        "variables its saved weights are for. Build it in the layer's build(), e.g. `self.project.build(input_shape)`."
    ), result
    assert run("SublayerBuiltOnlyByCall", "--fail-on", "warning").exit_code == 1
    # What the message says of a Functional model holds (Keras 3.15): it calls the layer, so it loads.
    import importlib.util

    import keras
    import numpy as np

    spec = importlib.util.spec_from_file_location("reload_layers", ROOT / "tests" / "data" / "reload_layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, module.SublayerBuiltOnlyByCall()(inputs))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(
        tmp_path / "model.keras", custom_objects={"SublayerBuiltOnlyByCall": module.SublayerBuiltOnlyByCall}
    )
    x = np.ones((2, 5), "float32")
    np.testing.assert_array_equal(loaded(x), model(x))


def test_a_cell_inside_a_sublayer_names_the_sublayer_to_build_and_the_advice_works():
    result = run_cli([f"{LAYERS}:CellBuiltOnlyByCall", "--input-shape", "4,6,3", "--no-numeric", "--json"])
    assert findings_of(result) == {("reload-failed-alone", None, line_of("class CellBuiltOnlyByCall"))}, result
    (item,) = [f for f in result.json()["findings"] if f["code"] == "reload-failed-alone"]
    assert "The layer builds self.rnn (and the SimpleRNNCell in it) only when it is first called" in item["message"]
    assert item["message"].endswith("Build it in the layer's build(), e.g. `self.rnn.build(input_shape)`."), result
    fixed = run_cli([f"{LAYERS}:CellBuiltInBuild", "--input-shape", "4,6,3", "--no-numeric", "--json"])
    assert fixed.exit_code == 0 and fixed.json()["reload"] == "ok", fixed
