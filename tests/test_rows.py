"""Checks give facts to rows by identity (rows.py), never by the name a row is shown with."""

import pytest
from conftest import line_of

from gradcheck import check
from gradcheck.report import InputInfo
from gradcheck.layer.rows import RowKey, Rows, input_key


def test_two_tensors_shown_with_one_name_keep_their_own_facts():
    report = check("tests/data/identity_layers.py:TwoKernels", input_shape=(6, 4), numeric=False, reload=False)
    rows = {(row.name, row.kind): row for row in report.variables}
    assert set(rows) == {("kernel", "trainable"), ("kernel", "untracked")}
    tracked, hidden = rows["kernel", "trainable"], rows["kernel", "untracked"]
    # The weight's gradient is zero (it is multiplied by 0); the closure's variable is not a source
    # of the layer's gradients at all. Keyed by name, one row's facts would land on both.
    assert (tracked.gradient_status, tracked.trains_under_fit) == ("zero", False)
    assert (hidden.gradient_status, hidden.gradient_norm) == (None, None)
    where = "tests/data/identity_layers.py"
    assert [(f.code, f.tensor, f.location) for f in report.findings] == [
        ("untracked-variable", "kernel", f"{where}:{line_of('hidden = tf.Variable', where)}"),
        ("zero-gradient", "kernel", f"{where}:{line_of('self.kernel = self.add_weight', where)}"),
    ]


def _inputs():
    info = InputInfo(name="input", shape=(2, 3), dtype="float32", value_range=(-1.0, 1.0), differentiable=True)
    return Rows([(input_key(0), info)])


def test_facts_for_a_row_that_does_not_exist_are_an_error_not_skipped():
    with pytest.raises(KeyError, match="do not exist"):
        _inputs().updated({RowKey("variable", 1): {"gradient_status": "ok"}})


def test_updates_make_new_rows_and_leave_the_old_ones():
    rows = _inputs()
    updated = rows.updated({input_key(0): {"gradient_status": "zero"}})
    assert [r.gradient_status for r in updated] == ["zero"]
    assert [r.gradient_status for r in rows] == [None]


def test_one_key_twice_is_refused():
    info = _inputs()[0]
    with pytest.raises(ValueError, match="listed twice"):
        Rows([(input_key(0), info), (input_key(0), info)])
