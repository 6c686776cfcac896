"""The pipeline without the CLI: `check(...)` loads, probes, runs every check and returns a Report."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading

from .errors import GradcheckError
from .options import Options, build_inputs, check_size, parse_init
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
        **settings: any other field of `gradcheck.options.Options` (vanishing_threshold,
            exploding_threshold, numeric, exhaustive, rtol, atol, eps, max_elements, timeout).

    It seeds Keras's global random state with `seed` (keras.utils.set_random_seed) so a layer's
    initial weights, and so the report, repeat from run to run.

    Returns:
        A Report: `report.ok`, `report.findings`, `report.variables`, `report.inputs`.

    Raises:
        GradcheckError: the check could not run (bad target or options, the layer raised).
    """
    options = make_options(
        input_shape=input_shape, input_dtype=input_dtype, input_range=input_range, init=init,
        seed=seed, training=training, **settings,
    )
    with time_limit(options.timeout):
        return run(target, options)


def make_options(*, input_shape, input_dtype=(), input_range=(), init=None, **settings) -> Options:
    if input_shape is None:
        shapes = []
    elif isinstance(input_shape, str) or (input_shape and isinstance(input_shape[0], int)):
        shapes = [input_shape]
    else:
        shapes = list(input_shape)
    dtypes = [input_dtype] if isinstance(input_dtype, str) else list(input_dtype or ())
    ranges: list  # strings or tuples of numbers, as the user gave them
    if input_range and isinstance(input_range, str):
        ranges = [input_range]
    elif input_range and not isinstance(input_range[0], (str, list, tuple)):
        ranges = [tuple(input_range)]
    else:
        ranges = list(input_range or ())
    if isinstance(init, dict):
        keywords = dict(init)
    else:
        keywords = parse_init(init or ())
    unknown = set(settings) - {f.name for f in dataclasses.fields(Options)}
    if unknown:
        raise TypeError(f"check() got unexpected keyword(s): {', '.join(sorted(unknown))}")
    options = Options(inputs=build_inputs(shapes, dtypes, ranges), init=keywords, **settings)
    check_size(options.inputs, options.max_elements)
    return options


def run(target, options: Options, *, fresh_session: bool = False) -> Report:
    """Load, probe and check `target` under `options` (no time limit of its own).

    `fresh_session=True` clears Keras's global state first, so a target checked after others in
    one process gets the layer names it would get alone (`dense`, not `dense_4`). The CLI sets it;
    check() does not, since clearing would renumber names in the caller's own session.
    """
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
    # Keras initialisers draw from the global seed: without this, two runs of the same command
    # would build different weights and report different gradient norms.
    keras.utils.set_random_seed(options.seed)
    log = VariableLog()
    with log.recording():
        loaded = load(target, options.init)
    probe = make_probe(loaded, options, log)

    tensors, findings = check_inventory(probe)
    inputs = input_inventory(options)
    findings += probe_findings(probe)
    for check_step in (check_gradients, check_numeric):
        tensor_updates, input_updates, new_findings = check_step(probe, tensors, inputs)
        tensors = _merge(tensors, tensor_updates)
        inputs = _merge(inputs, input_updates)
        findings += new_findings

    return Report(
        target=loaded.target,
        variables=tuple(tensors),
        inputs=tuple(inputs),
        findings=sort_findings(findings),
        training_modes=tuple(t.mode for t in probe.traces) or ("n/a",),
        stochastic=probe.stochastic,
        seed=options.seed,
        versions=versions(),
    )


def _merge(items, updates: dict):
    """Apply {name: {field: value}} from a check to the matching TensorInfo/InputInfo."""
    return [dataclasses.replace(item, **updates.get(item.name, {})) for item in items]


@contextlib.contextmanager
def time_limit(seconds):
    """Stop a layer that hangs. SIGALRM interrupts Python code (a loop in call()); it works only in
    the main thread, so elsewhere (a pytest-xdist worker thread, a notebook thread) no limit is set."""
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
