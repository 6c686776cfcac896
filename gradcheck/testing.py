"""A pytest helper: fail a test when a layer has a part that never learns.

    from gradcheck.testing import assert_trainable

    def test_my_layer_trains():
        assert_trainable("mypackage/layers.py:MyLayer", input_shape=(16, 5), init={"units": 4})

The failure message lists the findings as the `gradcheck` command prints them (`--quiet`), so a
red test reads like the CLI.
"""

from __future__ import annotations

import io

from .api import check
from .report import ERROR, SEVERITY_ORDER, Report


def assert_trainable(target_or_layer, *, input_shape, fail_on: str = ERROR, isolate: bool = False, **kwargs) -> Report:
    """Check a layer and raise AssertionError if it has a finding at or above `fail_on`.

    Args:
        target_or_layer: as for `gradcheck.check`: "module:Name", "path/to/file.py:Name", a
            layer instance, a Layer class, or a function that returns a layer.
        input_shape: the full input shape with batch dimension, e.g. (16, 5); a list of them for
            several inputs.
        fail_on: "error" (default) or "warning": the lowest severity that fails the assertion.
        isolate: True checks the layer in a worker process, as the `gradcheck` command does
            (see gradcheck.check): a layer that exits, hangs or crashes fails the test instead of
            ending or stalling the test run. Needs a TARGET string.
        **kwargs: any other keyword of `gradcheck.check` (input_dtype, init, seed, training, ...).

    Returns:
        The Report, for further assertions of your own.

    Raises:
        AssertionError: a finding at or above `fail_on`; the message lists the findings.
        GradcheckError: the check could not run (bad target or options, the layer raised).
    """
    report = check(target_or_layer, input_shape=input_shape, isolate=isolate, **kwargs)
    limit = SEVERITY_ORDER[fail_on]
    failing = [f for f in report.findings if SEVERITY_ORDER[f.severity] <= limit]
    if failing:
        raise AssertionError(f"gradcheck found {len(failing)} problem(s) in {report.target}:\n{_findings_text(report)}")
    return report


def _findings_text(report: Report) -> str:
    from . import render_text

    stream = io.StringIO()
    render_text.render([report], stream, quiet=True)
    return stream.getvalue().rstrip()
