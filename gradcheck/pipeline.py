"""The pipeline: load the target, probe it, run every check, and assemble the Report.

`build_report` is what a worker process runs for each target (isolation/worker.py) and what the
in-process `check()` runs (api.py). TensorFlow is imported by the stages it runs, never at module
import, so importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from .options.settings import Options
from .progress import Notify, silent
from .report import Report, sort_findings


def import_checks() -> None:
    """Import every module build_report() runs. build_report() imports them on first use, so that
    `gradcheck --help` never pays for TensorFlow; the fork server calls this once before it forks,
    so each forked worker starts with them imported (about 20 ms a fresh worker, measured side by
    side). A module left out here is only imported later, by the worker that needs it."""
    import numpy.random  # noqa: F401  (numpy loads it on first use; sampling.py draws from it)

    from .checks import dtype_policy, gradients, inventory, preprocessing, reload  # noqa: F401
    from .layer import loading, probe, twin  # noqa: F401
    from .numeric import first_order as numeric, second_order  # noqa: F401


def build_report(
    target,
    options: Options,
    *,
    fresh_session: bool = False,
    stage: Callable[[str], None] | None = None,
    progress: Notify | None = None,
) -> Report:
    """Load, probe and check `target` under `options` (no time limit of its own).

    `fresh_session=True` clears Keras's global state first, so a target checked after others in
    one process gets the layer names it would get alone (`dense`, not `dense_4`). The worker sets
    it; check() does not, since clearing would renumber names in the caller's own session.
    `stage` is told, as a phrase ("computing gradients"), each step as it starts: the worker sends
    it to the supervisor, so a timeout can say what was running.
    `progress(done, total)` is told how far a long stage with counted steps (the finite-difference
    and second-order comparisons) has got, a few times a second: the command draws it (progress.py).
    """
    from .runtime import backend

    with backend().compiling():  # about 15 % of a small layer's check goes to Grappler otherwise
        return _build_report(target, options, fresh_session, stage or (lambda name: None), progress or silent)


def checks_for(options: Options) -> list:
    """The checks this run asks for, in the order they run (each reads the rows the ones before it
    filled: the second order, for one, compares only what the first order found right)."""
    from .checks.dtype_policy import DtypePolicies
    from .checks.gradients import Gradients
    from .checks.inventory import Inventory
    from .checks.preprocessing import PreprocessingInputs
    from .checks.reload import Reload
    from .compare.side import BackendSide
    from .numeric.first_order import FiniteDifferences
    from .numeric.second_order import SecondOrder

    # PreprocessingInputs restates what the checks before it found about the input; the comparison's
    # side runs last of all: it gives a float64 copy (or, failing one, the layer) shared weights.
    kinds = (
        Inventory,
        Gradients,
        FiniteDifferences,
        SecondOrder,
        DtypePolicies,
        Reload,
        PreprocessingInputs,
        BackendSide,
    )
    made = (kind.from_options(options) for kind in kinds)
    return [check for check in made if check is not None]


def unavailable(check):
    """The unavailable-on-backend finding for a check this process's backend cannot run, else None."""
    from . import codes
    from .report import finding
    from .runtime import backend

    framework = backend()
    reason = getattr(framework, "unavailable", {}).get(type(check).__name__)
    if reason is None:
        return None
    return finding(
        codes.UNAVAILABLE_ON_BACKEND,
        None,
        f"{check.stage[0].upper()}{check.stage[1:]} does not run on the {framework.words.framework} backend: "
        f"{reason}. The other checks ran; run this one with --backend tensorflow.",
    )


def _build_report(
    target, options: Options, fresh_session: bool, stage: Callable[[str], None], progress: Notify
) -> Report:
    # The framework is imported here, not at module import, so the CLI's --help stays instant.
    from .checks.interface import Context
    from .layer.backend_variable import backend_set_after_import, watching_backend_variable
    from .layer.loading import load
    from .layer.probe import make_probe
    from .runtime import backend

    _, keras = backend().modules()
    if fresh_session:
        keras.backend.clear_session()
        # A module that set mixed precision at import set it for its own target only: the next
        # target in the same worker starts from Keras's default policy.
        keras.config.set_dtype_policy("float32")
    # Keras initialisers draw from the global seed: without this, two runs of the same command
    # would build different weights and report different gradient norms.
    backend().seed(options.seed)
    log = backend().variable_log()
    stage("loading the target")
    asked_before = os.environ.get("KERAS_BACKEND")
    with log.recording(), watching_backend_variable() as asked:
        loaded = load(target, options.init)
    late = backend_set_after_import(asked_before, asked)  # the check stays on this process's backend
    stage("building and calling the layer")
    probe = make_probe(loaded, options, log)

    context = Context(probe, progress=progress)
    findings = context.findings
    findings += [late] if late is not None else []
    fields: dict = {}
    for check in checks_for(options):  # each is handed the settings it needs; the probe carries none
        if not probe.outputs and getattr(check, "needs_float_output", True):
            continue  # no float output, nothing to differentiate (probe.py says so in a finding)
        missing = unavailable(check)
        if missing is not None:
            findings.append(missing)
            continue
        if check.stage:
            stage(check.stage)
        result = check.run(context)
        if result.tensor_rows is not None:
            context.tensors = result.tensor_rows
        if result.input_rows is not None:
            context.inputs = result.input_rows
        context.tensors = context.tensors.updated(result.tensors)
        context.inputs = context.inputs.updated(result.inputs)
        findings[:] = [result.amended.get(item, item) for item in findings] + list(result.findings)
        fields.update(result.report)

    name = backend().name
    return Report(
        target=loaded.target,
        variables=tuple(replace(row, backend=name) for row in context.tensors.infos()),
        inputs=tuple(replace(row, backend=name) for row in context.inputs.infos()),
        findings=sort_findings(replace(item, backend=name) for item in findings),
        training_modes=tuple(t.mode for t in probe.traces) or ("n/a",),
        stochastic=probe.stochastic,
        seed=options.seed,
        vanishing_threshold=options.vanishing_threshold,
        exploding_threshold=options.exploding_threshold,
        versions=backend().versions(),
        backend=name,
        **fields,
    )
