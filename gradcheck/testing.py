"""A pytest helper: fail a test when a layer has a part that never learns.

    from gradcheck.testing import assert_trainable

    def test_my_layer_trains():
        assert_trainable("mypackage/layers.py:MyLayer", input_shape=(16, 5), init={"units": 4})

The failure message lists the findings as the `gradcheck` command prints them (`--quiet`), so a
red test reads like the CLI, and pytest shows the caller's line, not gradcheck's frame. Warnings
that TensorFlow, Keras, numpy or gradcheck raise while the layer is checked are not the test's
business and are dropped; a warning raised by the layer's own code still reaches pytest.
"""

from __future__ import annotations

import inspect
import os
import sysconfig
import warnings

from .api import check
from .options.settings import check_fail_on
from .report import ERROR, Report, failing_findings, fails


def assert_trainable(target_or_layer, *, input_shape, fail_on: str = ERROR, isolate: bool = False, **kwargs) -> Report:
    """Check a layer and raise AssertionError if it fails as `gradcheck --fail-on FAIL_ON` would.

    Args:
        target_or_layer: as for `gradcheck.check`: "module:Name", "path/to/file.py:Name", a
            layer instance, a Layer class, or a function that returns a layer. A file path not
            found from the current folder is looked up from the folder of the calling test file,
            so `pytest myproject/tests` works from anywhere.
        input_shape: the full input shape with batch dimension, e.g. (16, 5); a list of them for
            several inputs.
        fail_on: "error" (default) or "warning": the lowest severity that fails the assertion,
            decided by the same rule as the command's exit status (`gradcheck.report.fails`).
        isolate: True checks the layer in a worker process, as the `gradcheck` command does
            (see gradcheck.check): a layer that exits, hangs or crashes fails the test instead of
            ending or stalling the test run. Needs a TARGET string.
        **kwargs: any other keyword of `gradcheck.check` (input_dtype, init, seed, training, ...).

    Returns:
        The Report, for further assertions of your own.

    Raises:
        AssertionError: the layer fails under `fail_on`; the message lists the findings.
        GradcheckError: the check could not run (bad target or options, the layer raised).
    """
    __tracebackhide__ = True  # pytest: the failure points at the test's line, not at this helper
    check_fail_on(fail_on)  # a misspelt severity is a GradcheckError before the check, not a KeyError after it
    caller = inspect.currentframe().f_back  # type: ignore[union-attr]
    target = _beside_caller(target_or_layer, caller.f_code.co_filename if caller else "")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # each one is seen here, then re-raised or dropped below
        report = check(target, input_shape=input_shape, isolate=isolate, **kwargs)
    for warning in caught:
        if not _third_party(warning.filename):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if fails(report, fail_on):
        count = len(failing_findings(report, fail_on))
        problems = f"{count} problem{'s' * (count != 1)}"
        raise AssertionError(f"gradcheck found {problems} in {report.target}:\n{_findings_text(report)}")
    return report


def _third_party(filename: str) -> bool:
    """A warning raised from an installed package, Python's own library or gradcheck, not the user's code."""
    real = os.path.realpath(filename or "")
    paths = sysconfig.get_paths()
    roots = {paths.get(key) for key in ("purelib", "platlib", "stdlib", "platstdlib")}
    roots.add(os.path.dirname(os.path.abspath(__file__)))
    inside = any(root and real.startswith(os.path.realpath(root) + os.sep) for root in roots)
    return inside or "site-packages" in real.split(os.sep) or "dist-packages" in real.split(os.sep)


def _beside_caller(target, caller_file: str):
    """A `path/file.py:Name` target missing from the current folder, taken from the caller's folder.

    The path is given relative to the current folder when it can be, so the report names the file
    as the user would type it.
    """
    if not isinstance(target, str):
        return target
    path, sep, name = target.rpartition(":")
    if not sep or not path.endswith(".py") or os.path.isabs(path) or os.path.exists(path):
        return target
    candidate = os.path.join(os.path.dirname(os.path.abspath(caller_file)), path)
    if not os.path.exists(candidate):
        return target  # the loader's own message says the file is missing
    try:
        candidate = os.path.relpath(candidate)
    except ValueError:  # another drive on Windows
        pass
    return f"{candidate}:{name}"


def _findings_text(report: Report) -> str:
    from .render import render

    return render("text", [report], quiet=True).rstrip()
