"""The pipeline without the CLI: `check(...)` loads, probes, runs every check and returns a Report."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import signal
import threading
from collections.abc import Callable

from .errors import GradcheckError
from .options import Options, make_options
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
        with time_limit(options.timeout):
            return run(target, options, stage=stages.append)
    except (SystemExit, KeyboardInterrupt) as error:
        # Both are BaseExceptions that a caller's `except Exception` would let end a test run or a
        # notebook cell as if the check had been stopped on purpose; the layer's code raised them.
        from .loading import exit_message

        raise GradcheckError(exit_message(error, stages[-1])) from None


def run(
    target,
    options: Options,
    *,
    fresh_session: bool = False,
    stage: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
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
    stage = stage or (lambda name: None)
    # Given to the counted checks only when someone listens: a caller wrapping a check (bench/) keeps
    # seeing the three arguments it always took.
    counted = {"progress": progress} if progress is not None else {}
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
    for phrase, check_step in (
        ("computing gradients", check_gradients),
        ("comparing gradients with finite differences", functools.partial(check_numeric, **counted)),
    ):
        stage(phrase)
        tensor_updates, input_updates, new_findings = check_step(probe, tensors, inputs)
        tensors = _merge(tensors, tensor_updates)
        inputs = _merge(inputs, input_updates)
        findings += new_findings
    if options.order == 2:
        from .second_order import check_second_order

        stage("checking second derivatives")
        tensor_updates, input_updates, new_findings = check_second_order(probe, tensors, inputs, **counted)
        tensors, inputs, findings = (
            _merge(tensors, tensor_updates),
            _merge(inputs, input_updates),
            findings + new_findings,
        )
    policies: list = []
    if options.dtype_policies:
        from .dtype_policy import check_dtype_policies

        stage("running the layer under the dtype policies")
        policies, policy_findings = check_dtype_policies(probe, tensors, inputs)
        findings += policy_findings
    reload_status = None
    if options.reload:
        from .reload import check_reload

        stage("saving and reloading the layer")
        reload_status, reload_findings = check_reload(probe, tensors)
        findings += reload_findings

    return Report(
        target=loaded.target,
        variables=tuple(tensors),
        inputs=tuple(inputs),
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


def _merge(items, updates: dict):
    """Apply {name: {field: value}} from a check to the matching TensorInfo/InputInfo."""
    return [dataclasses.replace(item, **updates.get(item.name, {})) for item in items]


@contextlib.contextmanager
def time_limit(seconds):
    """A best-effort limit for the in-process check(): the command and check(isolate=True) do not use it.

    SIGALRM interrupts Python code (a loop in call()) but not a long TensorFlow op or a
    tf.while_loop, and a broad `except` in the code being run can swallow it. It works only in the
    main thread, so elsewhere (a pytest-xdist worker thread, a notebook thread) no limit is set.
    The supervisor's limit (supervisor.py) has none of these gaps: it ends the worker process.
    """
    usable = seconds and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    message = (
        f"The check did not finish within {seconds:g} s (the layer may hang in build() or call()). "
        "Check the layer for an endless loop, or allow more time with --timeout SECONDS."
    )
    expired = []

    def expire(signum, frame):
        expired.append(True)
        raise GradcheckError(message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except Exception:
        # Keras rewrites an exception raised inside Layer.__call__ ("Exception encountered when
        # calling ..."), so the one raised above may come back wrapped: give the plain message.
        if expired:
            raise GradcheckError(message) from None
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
