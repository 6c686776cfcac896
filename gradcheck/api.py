"""The pipeline without the CLI: `check(...)` loads, probes, runs every check and returns a Report."""

from __future__ import annotations

from collections.abc import Callable

from .errors import GradcheckError
from .options import Options, make_options
from .progress import Notify, silent
from .report import Report, sort_findings


def check(
    target,
    *,
    input_shape=None,
    input_dtype=(),
    input_range=(),
    init=None,
    seed: int = 0,
    training=None,
    isolate: bool = False,
    **settings,
) -> Report:
    """Check one layer and return its Report; nothing is printed.

    Use it in a test or a notebook; the `gradcheck` command is a thin client of it.

    Args:
        target: "module:Name" or "path/to/file.py:Name" (as on the command line), or a Keras
            layer instance, Layer class, or a callable that returns a layer.
        input_shape: the full input shape with batch dimension, e.g. (100, 5) or "100,5"; a list
            of them for a layer with several inputs (passed to call() as a list).
        input_dtype: one dtype name per input (default float32).
        input_range: one (low, high) per input (default -1,1 for floats, 0,10 for integers).
        init: constructor keywords (a dict, or "KEY=VALUE" strings as on the command line).
        seed: seeds every sample; the same seed gives the same report.
        training: True or False to check one mode; None (default) checks both when call()
            accepts `training`.
        isolate: False (default) runs the check in this process. True runs it in a worker
            process, as the `gradcheck` command does: `timeout` is enforced whatever the layer
            does, an exit, crash or signal in the layer's code becomes a GradcheckError, and what
            the layer prints is captured (shown in the error). `target` must then be a TARGET
            string, since a layer object cannot be handed to another process.
        **settings: any other field of `gradcheck.options.Options` (vanishing_threshold,
            exploding_threshold, numeric, exhaustive, rtol, atol, eps, max_elements, timeout,
            reload=True, dtype_policies), and dtype_policy: a policy name or a list of them
            ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16"), as --dtype-policy.

    It seeds Keras's global random state with `seed` (keras.utils.set_random_seed) so a layer's
    initial weights, and so the report, repeat from run to run.

    Returns:
        A Report: `report.ok`, `report.findings`, `report.variables`, `report.inputs`.

    Raises:
        GradcheckError: the check could not run (bad target or options, the layer raised, called
            sys.exit, or raised KeyboardInterrupt; with isolate=True also: it hung, crashed or
            ended its process).
    """
    options = make_options(
        input_shape=input_shape,
        input_dtype=input_dtype,
        input_range=input_range,
        init=init,
        seed=seed,
        training=training,
        **settings,
    )
    if isolate:
        from .supervisor import check_isolated

        return check_isolated(target, options)
    stages = ["loading the target"]
    try:
        from .supervisor import time_limit

        with time_limit(options.timeout):
            return build_report(target, options, stage=stages.append)
    except (SystemExit, KeyboardInterrupt) as error:
        # Both are BaseExceptions that a caller's `except Exception` would let end a test run or a
        # notebook cell as if the check had been stopped on purpose; the layer's code raised them.
        from .source import exit_message

        raise GradcheckError(exit_message(error, stages[-1])) from None


def import_checks() -> None:
    """Import every module build_report() runs. build_report() imports them on first use, so that
    `gradcheck --help` never pays for TensorFlow; the fork server calls this once before it forks,
    so each forked worker starts with them imported (about 20 ms a fresh worker, measured side by
    side). A module left out here is only imported later, by the worker that needs it."""
    import numpy.random  # noqa: F401  (numpy loads it on first use; sampling.py draws from it)

    from . import dtype_policy, gradients, inventory, loading, numeric, probe, reload, second_order, twin  # noqa: F401


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
    from .runtime import unoptimized_graphs

    with unoptimized_graphs():  # about 15 % of a small layer's check goes to Grappler otherwise
        return _build_report(target, options, fresh_session, stage or (lambda name: None), progress or silent)


def _build_report(
    target, options: Options, fresh_session: bool, stage: Callable[[str], None], progress: Notify
) -> Report:
    # TensorFlow is imported here, not at module import, so the CLI's --help stays instant.
    from .gradients import check_gradients
    from .inventory import check_inventory, input_inventory
    from .loading import load
    from .numeric import check_numeric
    from .probe import VariableLog, make_probe, probe_findings
    from .runtime import tensorflow, versions

    tf, keras = tensorflow()
    if fresh_session:
        keras.backend.clear_session()
        # A module that set mixed precision at import set it for its own target only: the next
        # target in the same worker starts from Keras's default policy.
        keras.config.set_dtype_policy("float32")
    # Keras initialisers draw from the global seed: without this, two runs of the same command
    # would build different weights and report different gradient norms.
    keras.utils.set_random_seed(options.seed)
    log = VariableLog()
    stage("loading the target")
    with log.recording():
        loaded = load(target, options.init)
    stage("building and calling the layer")
    probe = make_probe(loaded, options, log)

    stage("listing the tensors call() uses")
    tensors, findings = check_inventory(probe)
    inputs = input_inventory(options)
    findings += probe_findings(probe)
    # Each check is handed the settings it needs; the probe carries none of them.
    stage("computing gradients")
    tensor_updates, input_updates, new_findings = check_gradients(probe, tensors, inputs, options)
    tensors, inputs = tensors.updated(tensor_updates), inputs.updated(input_updates)
    findings += new_findings
    if options.numeric:
        stage("comparing gradients with finite differences")
        tensor_updates, input_updates, new_findings = check_numeric(probe, tensors, inputs, options, progress=progress)
        tensors, inputs = tensors.updated(tensor_updates), inputs.updated(input_updates)
        findings += new_findings
    if options.order == 2:
        from .second_order import check_second_order

        stage("checking second derivatives")
        tensor_updates, input_updates, new_findings = check_second_order(
            probe, tensors, inputs, options, progress=progress
        )
        tensors, inputs = tensors.updated(tensor_updates), inputs.updated(input_updates)
        findings += new_findings
    policies: list = []
    if options.dtype_policies:
        from .dtype_policy import check_dtype_policies

        stage("running the layer under the dtype policies")
        policies, policy_findings = check_dtype_policies(probe, tensors, inputs, options.dtype_policies)
        findings += policy_findings
    reload_status = None
    if options.reload:
        from .reload import check_reload

        stage("saving and reloading the layer")
        reload_status, reload_findings = check_reload(probe, tensors)
        findings += reload_findings

    return Report(
        target=loaded.target,
        variables=tensors.infos(),
        inputs=inputs.infos(),
        findings=sort_findings(findings),
        training_modes=tuple(t.mode for t in probe.traces) or ("n/a",),
        stochastic=probe.stochastic,
        seed=options.seed,
        vanishing_threshold=options.vanishing_threshold,
        exploding_threshold=options.exploding_threshold,
        versions=versions(),
        dtype_policies=tuple(policies),
        reload=reload_status,
    )
