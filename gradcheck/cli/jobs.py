"""The jobs of a run: the TARGET on the command line or each entry of pyproject.toml, one job per
--backend, each result naming its backend, and the backends of a target compared
(compare/verdict.py) before the gate sees the reports."""

from __future__ import annotations

import tempfile

from ..errors import GradcheckError
from ..options.backends import on_backend, per_backend
from ..options.settings import check_target


def jobs_of(target, input_shape, input_dtype, input_range, init, settings):
    """(target, Options) pairs: the one on the command line, or each one in pyproject.toml."""
    from ..options.settings import make_options

    if target is not None:
        check_target(target)  # before TensorFlow loads: syntax, and that a file target exists
        options = make_options(
            input_shape=list(input_shape),
            input_dtype=list(input_dtype),
            input_range=list(input_range),
            init=list(init),
            **settings,
        )
        return [(target, options)]
    if input_shape or input_dtype or input_range or init:
        raise GradcheckError(
            "--input-shape, --input-dtype, --input-range and --init describe a TARGET named on the command "
            "line, and none was given. Name the TARGET, or set input-shape, input-dtype, input-range and "
            "init in each [[tool.gradcheck.targets]] entry of ./pyproject.toml."
        )
    from ..options.pyproject import targets_from_pyproject

    return targets_from_pyproject(settings)


def backend_jobs(jobs: list) -> tuple[list, tempfile.TemporaryDirectory | None]:
    """One job per backend of each job, and the folder where the backends of a target compared
    write their sides (removed by `compared`): made only when a target is checked on several
    backends, so a run on one makes nothing that a command killed outright would leave behind."""
    spread = per_backend(jobs)
    if len(spread) == len(jobs):  # one backend each: nothing is compared
        return spread, None
    folder = tempfile.TemporaryDirectory(prefix="gradcheck-compare-")
    return per_backend(jobs, folder.name), folder


def compared(outcomes: list, jobs: list, folder: tempfile.TemporaryDirectory | None) -> list:
    """Each job's result with its backend, the backends of each target compared."""
    from ..compare.verdict import compare_backends  # numpy: not for --help

    results = compare_backends(named([outcome.result for outcome in outcomes], jobs), jobs)
    if folder is not None:
        folder.cleanup()
    return results


def named(results: list, jobs: list) -> list:
    """Every finding and failure naming its job's backend (the gate's own findings too)."""
    return [on_backend(result, options) for result, (_, options) in zip(results, jobs)]
