"""The `gradcheck` command: parse options, hand the targets to the supervisor, pick a renderer, exit.

It does no checking of its own and never imports TensorFlow: the checks run in worker processes
(supervisor.py, worker.py), so `--help` and usage errors are instant and the layer's code cannot
decide the exit status.
"""

from __future__ import annotations

import contextlib
import os
import sys

import click

from ..errors import GradcheckError
from ..options.settings import (
    DEFAULT_EXPLODING,
    DEFAULT_MAX_ELEMENTS,
    DEFAULT_TIMEOUT,
    DEFAULT_VANISHING,
    DTYPE_POLICIES,
    DTYPES,
    check_setting,
    check_target,
    parse_dtype,
    parse_init,
    parse_range,
    parse_shape,
)
from ..render import FORMATS
from ..report import TargetFailure, exit_status
from .destination import check_output_path, refuse_imported_output, write_output
from .exits import exit_as_a_command
from .signals import remember_from_now
from .streams import say


class UsageProblem(click.ClickException):
    """A GradcheckError on its way out: one paragraph on stderr, exit status 2."""

    exit_code = 2

    def show(self, file=None):
        say(f"gradcheck: {self.format_message()}")


def _checked(validate, *, each: bool = False, keep: bool = False):
    """A click callback running one of options.py's validators, so a bad value exits 2 at once,
    before a pyproject entry is read or TensorFlow loads, as the one-paragraph message make_options
    would give. `each`: validate every value of a repeated option; `keep`: pass the values on as
    typed (make_options parses them again, with the other options they pair with)."""

    def callback(ctx, param, value):
        try:
            checked = tuple(validate(v) for v in value) if each else validate(value)
        except GradcheckError as error:
            raise UsageProblem(str(error)) from None
        return value if keep else checked

    return callback


def _setting(name: str):
    return _checked(lambda value: check_setting(name, value))


class _Command(click.Command):
    """Click's own usage errors (an unknown option, a missing value, a bad choice) as one paragraph
    with exit status 2, the same shape as every other usage error, instead of click's usage block.
    Run as a command (`standalone_mode`), it also owns the process-level ends: Ctrl-C and SIGTERM
    at any moment (130, 143: signals.py), and a message stderr could not take (2: streams.py)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        exit_as_a_command(lambda: super(_Command, self).main(args, prog_name, complete_var, False, **extra))

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            raise UsageProblem(_usage_text(error)) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise UsageProblem(_usage_text(error)) from None


def _usage_text(error: click.UsageError) -> str:
    text = " ".join(error.format_message().split())  # one paragraph, whatever click wrapped
    return f"{text.rstrip('.')}. Run gradcheck --help for the options."


def _jobs_count(ctx, param, value):
    if value == "auto":
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise click.BadParameter(f"must be a number of worker processes (1 or more) or auto, got {value!r}.")
    return count


@click.command(cls=_Command, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("target", required=False)
@click.option(
    "--input-shape",
    multiple=True,
    metavar="N,N,...",
    callback=_checked(parse_shape, each=True, keep=True),
    help="Full input shape, batch dimension first. Repeat once per input: several inputs go to call() "
    "as a list, or as separate arguments when call() takes that many.",
)
@click.option(
    "--input-dtype",
    multiple=True,
    metavar="DTYPE",
    callback=_checked(parse_dtype, each=True, keep=True),
    help=f"Input dtype, once per input in the same order (default float32). One of: {', '.join(DTYPES)}.",
)
@click.option(
    "--input-range",
    multiple=True,
    metavar="LOW,HIGH",
    callback=_checked(parse_range, each=True, keep=True),
    help="Range of sampled values, once per input (default -1,1; integers: [0,10)).",
)
@click.option(
    "--init",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_checked(parse_init, keep=True),
    help="Constructor keyword; VALUE is read as a Python literal, else as a string. Repeatable.",
)
@click.option(
    "--seed",
    type=str,
    default=0,
    show_default=True,
    metavar="N",
    callback=_setting("seed"),
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
    callback=_setting("vanishing_threshold"),
    help="Warn when RMS(gradient) / max(RMS(tensor), 1) is below this.",
)
@click.option(
    "--exploding-threshold",
    type=str,
    default=DEFAULT_EXPLODING,
    show_default=True,
    metavar="X",
    callback=_setting("exploding_threshold"),
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
    callback=_setting("order"),
    help="2: also check second derivatives (Hessian-vector products, a gradient penalty's gradient).",
)
@click.option(
    "--rtol",
    type=str,
    default=None,
    metavar="X",
    callback=_setting("rtol"),
    help="Relative tolerance of the finite-difference check.",
)
@click.option(
    "--atol",
    type=str,
    default=None,
    metavar="X",
    callback=_setting("atol"),
    help="Absolute tolerance of the finite-difference check.",
)
@click.option(
    "--eps",
    type=str,
    default=None,
    metavar="X",
    callback=_setting("eps"),
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
@click.option("--quiet", "-q", is_flag=True, help="Print only the findings.")
@click.option(
    "--max-elements",
    type=str,
    default=DEFAULT_MAX_ELEMENTS,
    show_default=True,
    metavar="N",
    callback=_setting("max_elements"),
    help="Refuse an input with more numbers than this, before allocating it.",
)
@click.option(
    "--timeout",
    type=str,
    default=DEFAULT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    callback=_setting("timeout"),
    help="Give up on a target after this many seconds (a layer that hangs).",
)
@click.option(
    "--jobs",
    "-j",
    default="1",
    show_default=True,
    metavar="N|auto",
    callback=_jobs_count,
    help="Check the targets of ./pyproject.toml in N worker processes (auto: one per CPU).",
)
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors, and every target's captured output.")
@click.option(
    "--dtype-policy",
    "dtype_policies",
    multiple=True,
    type=click.Choice(DTYPE_POLICIES),
    help="Also run the layer under this Keras dtype policy and compare with float32. Repeatable.",
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
    max_elements,
    timeout,
    jobs,
    debug,
    dtype_policies=(),
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
    settings.update(dtype_policies=tuple(dtype_policies), reload=reload)
    try:
        targets = _jobs(target, input_shape, input_dtype, input_range, init, settings)
        check_output_path(output, [label for label, _ in targets])
    except GradcheckError as error:
        raise UsageProblem(str(error)) from None
    from ..isolation.supervisor import check_targets
    from .terminal import ProgressView, stderr_is_terminal, tell

    # Progress lines only where a person watches a text report come: erased before it is written.
    view = (
        ProgressView(alone=len(targets) == 1)
        if output_format == "text" and not quiet and stderr_is_terminal()
        else None
    )
    try:
        with view or contextlib.nullcontext():
            outcomes = check_targets(
                targets,
                workers=jobs,
                debug=debug,
                done=lambda index, outcome: tell(targets, index, outcome, debug, view),
                progress=view.show if view is not None else None,
            )
        results = [outcome.result for outcome in outcomes]
        # When no target could run there is no report: the messages on stderr are the whole
        # answer, and stdout or --output stays empty rather than holding a document about nothing.
        if not all(isinstance(result, TargetFailure) for result in results):
            refuse_imported_output(output, [outcome.user_files for outcome in outcomes])
            write_output(output, _render(results, output_format, quiet, fail_on, output))
            remember_from_now()  # the report is out: a signal now does not undo it
    except GradcheckError as error:  # stdout or --output could not take the report
        raise UsageProblem(str(error)) from None
    sys.exit(exit_status(results, fail_on))


def _jobs(target, input_shape, input_dtype, input_range, init, settings):
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


def _render(results, output_format: str, quiet: bool, fail_on: str, output) -> str:
    """The report in `output_format`, as text; drawn for the terminal (width, colour) when stdout is one."""
    from ..render import render, terminal_settings

    settings = {}
    if output is None and output_format == "text":
        try:
            settings = terminal_settings(sys.stdout)
        except ValueError:  # a closed stdout: write_output says so
            pass
    return render(output_format, results, quiet=quiet, fail_on=fail_on, **settings)
