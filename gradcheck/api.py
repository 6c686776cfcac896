"""The Python door: `check(...)` checks one layer (in this process or in a worker) and returns a Report."""

from __future__ import annotations

from .errors import GradcheckError, LayerRaised
from .options.settings import make_options
from .report import Report


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
        backend: "tensorflow", "jax" or "torch": the Keras backend to check on (default: this
            process's). Keras reads its backend once, at import, so another backend than this
            process's is checked in a worker process (as with isolate=True).
        isolate: False (default) runs the check in this process. True runs it in a worker
            process, as the `gradcheck` command does: `timeout` is enforced whatever the layer
            does, an exit, crash or signal in the layer's code becomes a GradcheckError, and what
            the layer prints is captured (shown in the error). `target` must then be a TARGET
            string, since a layer object cannot be handed to another process.
        **settings: any other field of `gradcheck.options.Options` (vanishing_threshold,
            exploding_threshold, numeric, exhaustive, rtol, atol, eps, max_elements, timeout,
            reload=True, dtype_policies), and dtype_policy: a policy name or a list of them
            ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16"), as --dtype-policy; and
            ignore: rules as pyproject.toml's `ignore` ("CODE", "CODE:TENSOR" or a dict with code,
            tensor and reason), as --ignore.

    Findings that an `ignore` rule or a `# gradcheck: ignore[CODE]` comment in the layer's source
    matches are kept in the Report, marked `ignored` (with the reason), and `report.ok` leaves
    them out, as the command does.

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
    if len(options.backends) > 1:
        raise GradcheckError(
            f"check() checks one backend at a time, and got backend={list(options.backends)}. Call it once per "
            "backend, or run the command with --backend for each (it also compares them)."
        )
    if options.backends and options.backends[0] != _this_process_backend():
        isolate = True  # Keras reads its backend once, at import: another backend needs a process of its own
    if isolate:
        from .isolation.supervisor import check_isolated

        return _gated(check_isolated(target, options), target, options)
    stages = ["loading the target"]
    try:
        from .isolation.time_limit import time_limit

        with time_limit(options.timeout):
            from .pipeline import build_report

            report = build_report(target, options, stage=stages.append)
    except LayerRaised as raised:  # the layer raised where no check expected it
        from .layer.source import unhandled_message

        raise GradcheckError(unhandled_message(raised, str(target))) from raised
    except (SystemExit, KeyboardInterrupt) as error:
        # Both are BaseExceptions that a caller's `except Exception` would let end a test run or a
        # notebook cell as if the check had been stopped on purpose; the layer's code raised them.
        from .layer.source import exit_message

        raise GradcheckError(exit_message(error, stages[-1])) from None
    return _gated(report, target, options)


def _gated(report: Report, target, options) -> Report:
    """The report as the command would print it: `ignore` rules and `# gradcheck: ignore` comments applied."""
    from .gate import apply_gate, files_named

    return apply_gate([report], [options.ignore], [files_named(report, target)])[0]


def _this_process_backend() -> str:
    """The backend Keras runs on in this process: the one it was imported with, else the one it would be."""
    import os

    from .runtime import imported_backend

    return imported_backend() or os.environ.get("KERAS_BACKEND") or "tensorflow"
