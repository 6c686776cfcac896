"""The `gradcheck` command: parse options, hand the targets to the supervisor, pick a renderer, exit.

It does no checking of its own and never imports TensorFlow: the checks run in worker processes
(supervisor.py, worker.py), so `--help` and usage errors are instant and the layer's code cannot
decide the exit status.
"""

from __future__ import annotations

import contextlib
import sys

import click

from ..errors import GradcheckError
from ..options.backends import check_installed, parse_backends
from ..options.ignores import parse_ignore
from ..options.settings import (
    DEFAULT_EXPLODING,
    DEFAULT_MAX_ELEMENTS,
    DEFAULT_TIMEOUT,
    DEFAULT_VANISHING,
    DTYPE_POLICIES,
    DTYPES,
    parse_dtype,
    parse_init,
    parse_range,
    parse_shape,
)
from ..render import FORMATS
from ..report import TargetFailure, exit_status
from .daemon import ACTIONS, daemon_action
from .destination import check_output_path, refuse_imported_output, write_output
from .gating import gated, prepare_baseline
from .info import show_explanation, show_version
from .jobs import backend_jobs, compared, jobs_of, named
from .signals import remember_from_now
from .streams import say
from .usage import Command, UsageProblem, checked, jobs_count, setting


@click.command(cls=Command, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("target", required=False)
@click.option(
    "--input-shape",
    multiple=True,
    metavar="N,N,...",
    callback=checked(parse_shape, each=True, keep=True),
    help="Full input shape, batch dimension first. Repeat once per input: several inputs go to call() "
    "as a list, or as separate arguments when call() takes that many.",
)
@click.option(
    "--input-dtype",
    multiple=True,
    metavar="DTYPE",
    callback=checked(parse_dtype, each=True, keep=True),
    help=f"Input dtype, once per input in the same order (default float32). One of: {', '.join(DTYPES)}.",
)
@click.option(
    "--input-range",
    multiple=True,
    metavar="LOW,HIGH",
    callback=checked(parse_range, each=True, keep=True),
    help="Range of sampled values, once per input (default -1,1; integers: [0,10)).",
)
@click.option(
    "--init",
    multiple=True,
    metavar="KEY=VALUE",
    callback=checked(parse_init, keep=True),
    help="Constructor keyword; VALUE is read as a Python literal, else as a string. Repeatable.",
)
@click.option(
    "--seed",
    type=str,
    default=0,
    show_default=True,
    metavar="N",
    callback=setting("seed"),
    help="Seeds every sample: the same seed, the same report.",
)
@click.option(
    "--training/--no-training",
    default=None,
    help="Check call(training=True) or False only. Default: both, when call() takes `training`.",
)
@click.option(
    "--vanishing-threshold",
    type=str,
    default=DEFAULT_VANISHING,
    show_default=True,
    metavar="X",
    callback=setting("vanishing_threshold"),
    help="Warn when RMS(gradient) / max(RMS(tensor), 1) is below this.",
)
@click.option(
    "--exploding-threshold",
    type=str,
    default=DEFAULT_EXPLODING,
    show_default=True,
    metavar="X",
    callback=setting("exploding_threshold"),
    help="Warn when RMS(gradient) / max(RMS(tensor), 1) is above this.",
)
@click.option(
    "--numeric/--no-numeric", default=True, show_default=True, help="Compare gradients with finite differences."
)
@click.option(
    "--exhaustive", is_flag=True, help="Check every entry of every tensor by finite differences, not only small ones."
)
@click.option(
    "--order",
    type=str,
    default=1,
    show_default=True,
    metavar="1|2",
    callback=setting("order"),
    help="2: also check second derivatives (Hessian-vector products, a gradient penalty's gradient).",
)
@click.option(
    "--rtol",
    type=str,
    default=None,
    metavar="X",
    callback=setting("rtol"),
    help="Relative tolerance of the finite-difference check.",
)
@click.option(
    "--atol",
    type=str,
    default=None,
    metavar="X",
    callback=setting("atol"),
    help="Absolute tolerance of the finite-difference check.",
)
@click.option(
    "--eps",
    type=str,
    default=None,
    metavar="X",
    callback=setting("eps"),
    help="Finite-difference step, relative to each tensor's scale.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format (default text): markdown for $GITHUB_STEP_SUMMARY, svg for a picture.",
)
@click.option("--json", "as_json", is_flag=True, help="Shorthand for --format json: one JSON document on stdout.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the report to FILE instead of stdout.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="error",
    show_default=True,
    help="Lowest finding severity that makes the exit status 1.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the warnings and errors (and a verdict per target).")
@click.option(
    "--ignore",
    "ignores",
    multiple=True,
    metavar="CODE[:TENSOR]",
    callback=checked(parse_ignore, each=True),
    help="Ignore the findings of CODE (on TENSOR only, when given) in every target. Repeatable. "
    "An ignored finding is still listed with --show-ignored, and never fails the run.",
)
@click.option("--show-ignored", is_flag=True, help="List the ignored findings in the text report too.")
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Fail only on findings not recorded in FILE (written by --write-baseline); list the entries now fixed.",
)
@click.option(
    "--write-baseline",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Record this run's errors and warnings in FILE, so later runs with --baseline FILE fail only on new ones.",
)
@click.option(
    "--max-elements",
    type=str,
    default=DEFAULT_MAX_ELEMENTS,
    show_default=True,
    metavar="N",
    callback=setting("max_elements"),
    help="Refuse an input with more numbers than this, before allocating it.",
)
@click.option(
    "--timeout",
    type=str,
    default=DEFAULT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    callback=setting("timeout"),
    help="Give up on a target after this many seconds (a layer that hangs).",
)
@click.option(
    "--jobs",
    "-j",
    default="1",
    show_default=True,
    metavar="N|auto",
    callback=jobs_count,
    help="Check the targets of ./pyproject.toml in N worker processes (auto: one per CPU).",
)
@click.option(
    "--explain",
    metavar="CODE",
    expose_value=False,
    is_eager=True,
    callback=show_explanation,
    help="Print the page of a finding code (what it means, an example, the fix) and exit.",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=show_version,
    help="Print the versions of gradcheck, TensorFlow and Keras and exit.",
)
@click.option(
    "--daemon",
    type=click.Choice(ACTIONS),
    is_flag=False,
    flag_value="start",
    expose_value=False,
    is_eager=True,
    callback=daemon_action,
    help="Keep TensorFlow imported in the background for this project, so later runs here start at once "
    "(start, the default); stop it, or show its status.",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Show Python tracebacks for errors, every target's captured output, and each worker's peak memory.",
)
@click.option(
    "--dtype-policy",
    "dtype_policies",
    multiple=True,
    type=click.Choice(DTYPE_POLICIES),
    help="Also run the layer under this Keras dtype policy and compare with float32. Repeatable.",
)
@click.option(
    "--backend",
    "backends",
    multiple=True,
    metavar="tensorflow|jax|torch|all",
    callback=checked(parse_backends),
    help="Check on this Keras backend (default: KERAS_BACKEND, else tensorflow). Repeatable: several "
    "(or all) are each checked, then compared.",
)
@click.option(
    "--reload/--no-reload",
    default=True,
    show_default=True,
    help="Check that the layer survives from_config(get_config()) and a .keras save and load.",
)
def main(
    target,
    input_shape,
    input_dtype,
    input_range,
    init,
    seed,
    training,
    vanishing_threshold,
    exploding_threshold,
    numeric,
    exhaustive,
    order,
    rtol,
    atol,
    eps,
    output_format,
    as_json,
    output,
    fail_on,
    quiet,
    ignores,
    show_ignored,
    baseline,
    write_baseline,
    max_elements,
    timeout,
    jobs,
    debug,
    dtype_policies=(),
    backends=(),
    reload=True,
):
    """Check that every weight of a Keras layer is tracked and gets a sound gradient.

    TARGET is MODULE:NAME or path/to/file.py:NAME, where NAME is a Layer class, a layer instance,
    a Model, or a function that returns one. Without TARGET, every [[tool.gradcheck.targets]]
    entry of ./pyproject.toml is checked. Each target runs in a worker process, so the layer's
    code cannot end, stall or print into the run.

    Exit status: 0 no error finding, 1 at least one, 2 the check could not run, 130/143
    interrupted (Ctrl-C / SIGTERM).

    Example:

    \b
      gradcheck sample_layers/classic.py:DenseWithActivation \\
          --init units=10 --input-shape 100,5
    """
    if as_json:
        if output_format not in (None, "json"):
            raise click.BadParameter("--json is --format json; give one of them.", param_hint="--json")
        output_format = "json"
    output_format = output_format or "text"
    settings = dict(
        seed=seed,
        training=training,
        vanishing_threshold=vanishing_threshold,
        exploding_threshold=exploding_threshold,
        numeric=numeric,
        exhaustive=exhaustive,
        order=order,
        rtol=rtol,
        atol=atol,
        eps=eps,
        max_elements=max_elements,
        timeout=timeout,
    )
    settings.update(dtype_policies=tuple(dtype_policies), reload=reload, ignore=tuple(ignores))
    settings.update({"backends": backends} if backends else {})
    try:
        targets, comparisons = backend_jobs(jobs_of(target, input_shape, input_dtype, input_range, init, settings))
        labels = [label for label, _ in targets]
        baselines = prepare_baseline(baseline, write_baseline, output, labels)
        also_read = {
            path: f"the {option} file"
            for option, path in (("--baseline", baseline), ("--write-baseline", write_baseline))
            if path
        }
        check_output_path(output, labels, also_read)
        check_installed(targets)  # last: what is wrong with the command line is said first
    except GradcheckError as error:
        raise UsageProblem(str(error)) from None
    from ..isolation.daemon_client import attached
    from ..isolation.supervisor import check_targets
    from .terminal import ProgressView, stderr_is_terminal, tell

    # Progress lines only where a person watches a text report come: erased before it is written.
    view = (
        ProgressView(alone=len(targets) == 1)
        if output_format == "text" and not quiet and stderr_is_terminal()
        else None
    )
    try:
        with attached(say if debug else None) as daemon, view or contextlib.nullcontext():
            outcomes = check_targets(
                targets,
                workers=jobs,
                debug=debug,
                done=lambda index, outcome: tell(targets, index, outcome, debug, view),
                progress=view.show if view is not None else None,
                daemon=daemon,
            )
        imported = [outcome.user_files for outcome in outcomes]
        results, note = gated(compared(outcomes, targets, comparisons), targets, baselines, imported)
        results = named(results, targets)  # the gate's own findings (unused-ignore) name the backend too
        if note:
            say(note)
        # When no target could run there is no report: the messages on stderr are the whole
        # answer, and stdout or --output stays empty rather than holding a document about nothing.
        if not all(isinstance(result, TargetFailure) for result in results):
            refuse_imported_output(output, imported)
            write_output(output, _render(results, output_format, quiet, show_ignored, fail_on, output))
            remember_from_now()  # the report is out: a signal now does not undo it
    except GradcheckError as error:  # stdout or --output could not take the report
        raise UsageProblem(str(error)) from None
    sys.exit(exit_status(results, fail_on))


def _render(results, output_format: str, quiet: bool, show_ignored: bool, fail_on: str, output) -> str:
    """The report in `output_format`, as text; drawn for the terminal (width, colour) when stdout is one."""
    from ..render import render, terminal_settings

    settings = {}
    if output is None and output_format == "text":
        try:
            settings = terminal_settings(sys.stdout)
        except ValueError:  # a closed stdout: write_output says so
            pass
    return render(output_format, results, quiet=quiet, show_ignored=show_ignored, fail_on=fail_on, **settings)
