"""assert_trainable: the exit-status rule, a file target found beside the test, pytest's own frame hidden."""

import os

import pytest
from conftest import ROOT, line_of

from gradcheck.testing import assert_trainable

HERE = os.path.dirname(os.path.abspath(__file__))


def test_a_file_target_is_found_beside_the_calling_test_and_gradchecks_frame_is_hidden(monkeypatch):
    monkeypatch.chdir(ROOT)  # "../data/report_layers.py" does not exist from here, only from tests/cli/
    assert not os.path.exists("../data/report_layers.py")
    with pytest.raises(AssertionError) as raised:
        assert_trainable("../data/report_layers.py:LongNames", input_shape=(4, 5), numeric=False, reload=False)
    message = str(raised.value)
    assert message.startswith("gradcheck found 1 problem in tests/data/report_layers.py:LongNames:\n"), message
    line = line_of("raw_scale_variable_kept_outside_keras = tf.Variable(", "tests/data/report_layers.py")
    assert f"untracked-variable  raw_scale_variable_kept_outside_keras  tests/data/report_layers.py:{line}" in message
    every_frame = [entry.path for entry in raised.traceback]
    shown = [entry.path for entry in raised.traceback.filter(raised)]
    assert any(str(p).endswith(os.path.join("gradcheck", "testing.py")) for p in every_frame)  # the control
    assert not any(str(p).endswith(os.path.join("gradcheck", "testing.py")) for p in shown), shown


def test_two_problems_are_counted_in_words_and_only_the_layers_own_warnings_reach_pytest(monkeypatch, tmp_path):
    import warnings

    (tmp_path / "layers.py").write_text(
        "import warnings\n"
        "import keras\n"
        "import tensorflow as tf\n\n\n"
        "class TwoProblems(keras.layers.Layer):\n"
        "    def build(self, input_shape):\n"
        "        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name='kernel')\n"
        "        self.unused = self.add_weight(shape=(3,), name='unused')\n"
        "        self.other = self.add_weight(shape=(3,), name='other')\n\n"
        "    def call(self, inputs):\n"
        "        warnings.warn('from the layer itself', UserWarning)\n"
        "        return tf.matmul(inputs, self.kernel)\n"
    )
    monkeypatch.chdir(tmp_path)
    from gradcheck import check

    with warnings.catch_warnings(record=True) as unfiltered:
        warnings.simplefilter("always")
        check("layers.py:TwoProblems", input_shape=(4, 5), numeric=False)  # reloading raises them
    # The control: a check does raise warnings from installed packages (Keras's, under numpy 2).
    assert any("site-packages" in w.filename for w in unfiltered), [(w.filename, str(w.message)) for w in unfiltered]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(AssertionError) as raised:
            assert_trainable("layers.py:TwoProblems", input_shape=(4, 5), numeric=False)
    assert str(raised.value).startswith("gradcheck found 2 problems in layers.py:TwoProblems:\n"), raised.value
    origins = {(os.path.basename(w.filename), str(w.message)) for w in seen}
    assert ("layers.py", "from the layer itself") in origins
    assert all(name == "layers.py" for name, _ in origins), origins  # nothing from TensorFlow, Keras, numpy


def test_a_target_found_from_the_current_folder_is_left_as_it_is(monkeypatch):
    from gradcheck.testing import _beside_caller

    monkeypatch.chdir(ROOT)
    caller = os.path.join(HERE, "test_x.py")
    assert _beside_caller("sample_layers/classic.py:SimpleDense", caller) == "sample_layers/classic.py:SimpleDense"
    assert _beside_caller("../data/report_layers.py:LongNames", caller) == "tests/data/report_layers.py:LongNames"
    assert _beside_caller("nowhere.py:X", caller) == "nowhere.py:X"  # the loader says it is missing
    assert _beside_caller("keras.layers:Dense", caller) == "keras.layers:Dense"
