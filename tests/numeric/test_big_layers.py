"""What the finite-difference check does for big layers, on small real ones: an embedding compared on
the rows its batch looks up (and no float64 copy of the others), a joint screen that looks again
past a kink, one leading sample when a sample alone is large, and a planted error in a decoder
block's feed-forward bias still named. The sizes that make these matter (bench/big_layers.py)
are scaled down: the rules are the same."""

import numpy as np
import pytest
from conftest import ROOT

from gradcheck import check
from gradcheck.backends.tensorflow.forward import Forward
from gradcheck.layer.sampling import sample_inputs
from gradcheck.numeric import first_order, places, subbatch
from gradcheck.options import make_options

LAYERS = "tests/data/embedding_layers.py"
TABLE = {"input_dim": 1000, "output_dim": 8}
IDS = {"input_shape": (4, 6), "input_dtype": ("int32",), "input_range": ((0, 1000),), "reload": False}


def line_of(text: str) -> int:
    lines = (ROOT / LAYERS).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def sampled_ids() -> np.ndarray:
    """The ids (4x6, in [0, 1000)) the check samples with the default seed."""
    options = make_options(input_shape=["4,6"], input_dtype=["int32"], input_range=["0,1000"])
    return sample_inputs(options.inputs, options.seed)[0]


def test_an_embedding_is_compared_on_the_rows_its_batch_looks_up():
    report = check("keras.layers:Embedding", init=TABLE, **IDS)
    (table,) = report.variables
    rows = np.unique(sampled_ids())
    assert 0 < rows.size < 1000
    assert (table.numeric_verdict, table.numeric_rows) == ("ok", rows.size), report
    assert report.findings == (), report


def test_a_planted_error_in_a_looked_up_row_is_a_mismatch_naming_the_row_and_the_rows_compared():
    report = check(f"{LAYERS}:PlantedRow", init=TABLE, **IDS)
    errors = [(f.code, f.tensor, f.location) for f in report.findings if f.severity == "error"]
    assert errors == [("gradient-mismatch", "embeddings", f"{LAYERS}:{line_of('# here: planted row')}")], report
    (table,) = report.variables
    rows = np.unique(sampled_ids())
    assert (table.numeric_verdict, table.numeric_rows) == ("mismatch", rows.size), report
    first_id = int(sampled_ids().reshape(-1)[0])  # the planted row
    message = report.findings[0].message
    assert f"on the {rows.size:,} of its 1,000 rows the batch looks up" in message, message
    assert f"along a random unit direction u of row {first_id} " in message, message


def test_the_rows_not_looked_up_are_neither_moved_nor_copied_in_float64(monkeypatch):
    """The structural promise behind an embedding's memory: the gradients, directions and originals
    the comparison holds are the looked-up rows' only (a spy on each, the real check running)."""
    shapes = {"gradients": [], "originals": [], "loss": []}
    real_gradients, real_place = Forward.gradients, places.Place.__init__

    def gradients(self, xs, *, tape=False):
        loss, grads = real_gradients(self, xs, tape=tape)
        shapes["gradients"] += [g.shape for g in grads if g is not None]
        return loss, grads

    def place(self, forward, twin, target, base):
        real_place(self, forward, twin, target, base)
        shapes["originals"].append(np.shape(self.original))

    monkeypatch.setattr(Forward, "gradients", gradients)
    monkeypatch.setattr(places.Place, "__init__", place)
    report = check(
        "keras.layers:Embedding", init={"input_dim": 20000, "output_dim": 64}, **{**IDS, "input_range": ((0, 20000),)}
    )
    rows = report.variables[0].numeric_rows
    assert report.variables[0].numeric_verdict == "ok" and 0 < rows <= 24, report
    assert set(shapes["gradients"]) == {(rows, 64)}, shapes
    assert set(shapes["originals"]) == {(rows, 64)}, shapes


def test_copies_of_a_large_weight_draw_no_random_values(tmp_path, monkeypatch):
    """The float64 twin and the reload check's two copies are given the layer's (or the saved)
    weights right after they are built: a weight of 2^20 numbers is drawn once, for the layer."""
    draws = tmp_path / "draws.txt"
    monkeypatch.setenv("GRADCHECK_TEST_DRAWS", str(draws))
    report = check(f"{LAYERS}:CountedTable", input_shape=(2, 3), input_dtype=("int32",), input_range=((0, 32768),))
    assert report.reload == "ok" and report.variables[0].numeric_verdict == "ok", report
    assert draws.read_text().splitlines() == ["(32768, 32)"]


def test_the_joint_screen_looks_again_past_a_kink_the_first_step_straddles(monkeypatch):
    """Every sample's first pre-activation sits 2e-6 from a ReLU's kink: the joint look fails at
    the first step and agrees at a step 10x smaller, clearing all three tensors at once."""
    cleared: list = []
    real = first_order.screen

    def screen(*arguments, **settings):  # a spy: the real screen runs
        found = real(*arguments, **settings)
        cleared.append(len(found))
        return found

    monkeypatch.setattr(first_order, "screen", screen)
    report = check(f"{LAYERS}:ByTheKink", input_shape=(16, 40), reload=False)
    verdicts = {r.name: r.numeric_verdict for r in [*report.variables, *report.inputs]}
    assert verdicts == {"kernel": "ok", "bias": "ok", "input": "ok"}, report
    assert report.findings == (), report
    assert cleared == [3]


def test_a_sample_that_alone_holds_a_pass_s_worth_is_compared_by_itself(monkeypatch):
    seen: list = []
    real = Forward.loss

    def loss(self, xs, tensors=None):  # a spy
        seen.append(int(xs[0].shape[0]))
        return real(self, xs, tensors)

    monkeypatch.setattr(Forward, "loss", loss)
    monkeypatch.setattr(subbatch, "SUB_BATCH_ELEMENTS", 16 * 64)  # one sample of 16x64
    report = check("tests/data/screening_layers.py:PlantedBlock", input_shape=(4, 16, 64), reload=False)
    errors = [(f.code, f.tensor) for f in report.findings if f.severity == "error"]
    assert errors == [("gradient-mismatch", "b1")], report
    assert set(seen) == {1}, seen


def test_a_planted_error_in_a_decoder_block_s_feed_forward_bias_is_a_mismatch_on_that_bias():
    pytest.importorskip("keras_hub")
    report = check(f"{LAYERS}:planted_decoder", input_shape=(2, 8, 16), reload=False)
    errors = [(f.code, f.tensor, f.location) for f in report.findings if f.severity == "error"]
    where = f"{LAYERS}:{line_of('# here: planted bias')}"
    assert errors == [("gradient-mismatch", "feedforward_intermediate_dense.bias", where)], report


def test_a_gradient_the_tape_gives_a_row_not_looked_up_is_a_mismatch_said_as_such():
    """The loss does not read the rows the batch does not look up (the graph says so), so a gradient
    there is wrong whatever the layer meant: the tape's slices of other rows are summed apart, and
    their norm is compared with the zero the loss gives them."""
    from gradcheck.backends.tensorflow.forward import _split_rows
    from gradcheck.backends.tensorflow.runtime import tensorflow
    from gradcheck.numeric.results import UNREAD_ROWS, Target, record
    from gradcheck.numeric.steps import Comparison

    tf, _ = tensorflow()
    values = tf.constant([[1.0, 2.0], [3.0, 4.0], [0.5, 0.5], [1.0, -1.0]], tf.float64)
    slices = tf.IndexedSlices(values, tf.constant([5, 2, 7, 5]), tf.constant([10, 2]))
    part, rest = _split_rows(tf, slices, np.array([2, 5]))
    assert part.numpy().tolist() == [[3.0, 4.0], [2.0, 1.0]]  # row 2, then row 5's two slices summed
    assert float(rest) == pytest.approx(np.hypot(0.5, 0.5))  # row 7, which the rows leave out
    dense_part, dense_rest = _split_rows(tf, tf.convert_to_tensor(slices), np.array([2, 5]))
    assert dense_part.numpy().tolist() == [[3.0, 4.0], [2.0, 1.0]] and float(dense_rest) == float(rest)

    target = Target(key=None, name="embeddings", variable=object(), rows=(2, 10))
    comparisons = [Comparison("a random direction per looked-up row", 1.0, 1.0, 0.0, 1e-5)]
    comparisons.append(Comparison(UNREAD_ROWS, float(rest), 0.0, 1.0, 1e-5, "mismatch"))
    record(target, comparisons, "n/a", "float64", 1e-5, None)
    ((verdict, message),) = target.messages
    assert verdict == "mismatch" and target.verdict == "mismatch"
    assert "(float64 twin, on the 2 of its 10 rows the batch looks up)" in message, message
    assert "the tape gives the other 8 rows, which call() never reads, a gradient of norm 0.707107" in message, message


def test_a_big_table_is_stepped_on_its_looked_up_rows_and_left_exactly_as_it_was(monkeypatch):
    """The fit-step ground truth of a table of 2^20 numbers and more is a sparse step (as fit() gets
    an embedding's gradient) on the looked-up rows, saved and put back on those rows only; scaled
    down here by lowering the size that asks for it."""
    from gradcheck.backends.tensorflow import TensorFlowBackend
    from gradcheck.checks import fitstep

    monkeypatch.setattr(fitstep, "_SPARSE_FROM", 1000)
    sparse = []
    real = TensorFlowBackend.sparse_gradient

    def spy(self, values, rows, variable):
        sparse.append(len(rows))
        return real(self, values, rows, variable)

    monkeypatch.setattr(TensorFlowBackend, "sparse_gradient", spy)
    import keras

    layer = keras.layers.Embedding(**TABLE)
    layer.build((4, 6))
    before = np.array(layer.embeddings.numpy())
    report = check(layer, **IDS)
    assert sparse == [np.unique(sampled_ids()).size], sparse
    (table,) = report.variables
    assert table.trains_under_fit is True and report.findings == (), report
    assert np.array_equal(layer.embeddings.numpy(), before)


def test_large_weights_are_saved_unzipped_with_the_same_verdicts(monkeypatch):
    """Weights of 64 MB and more are saved as the unzipped .keras folder (the archive would hold a
    second copy in memory); the reload verdicts are those of the .keras file, a lost raw variable
    included. Scaled down by lowering the size that asks for it."""
    from gradcheck.checks import reload

    saved = []
    import keras

    save_model = keras.saving.save_model

    def spy(model, path, **kwargs):
        saved.append(kwargs.get("zipped"))
        return save_model(model, path, **kwargs)

    monkeypatch.setattr(keras.saving, "save_model", spy)
    targets = [
        ("sample_layers/classic.py:DenseWithActivation", {"units": 3}),
        ("sample_layers/untracked.py:RawVariable", {}),
    ]
    zipped = [check(t, input_shape=(4, 5), init=init, numeric=False) for t, init in targets]
    monkeypatch.setattr(reload, "_UNZIPPED_FROM", 0)
    unzipped = [check(t, input_shape=(4, 5), init=init, numeric=False) for t, init in targets]
    assert saved == [True, False], saved  # RawVariable is lost at from_config, before a save
    for a, b in zip(zipped, unzipped):
        assert (a.reload, [(f.code, f.tensor, f.message) for f in a.findings]) == (
            b.reload,
            [(f.code, f.tensor, f.message) for f in b.findings],
        )
    assert (zipped[0].reload, zipped[1].reload) == ("ok", "mismatch"), zipped
