"""Checks give facts to rows by identity (rows.py), never by the name a row is shown with."""

import pytest

from gradcheck.layer.rows import RowKey, Rows, input_key
from gradcheck.report import InputInfo


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
