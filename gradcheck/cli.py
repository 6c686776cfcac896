"""The `gradcheck` command: parse options, call the library, pick a renderer, exit.

It does no checking of its own. TensorFlow is imported only once a check runs, so `--help` and
usage errors are instant.
"""

from __future__ import annotations

import sys

import click

from .errors import GradcheckError
from .options import (
    DEFAULT_EXPLODING, DEFAULT_MAX_ELEMENTS, DEFAULT_TIMEOUT, DEFAULT_VANISHING, DTYPE_POLICIES, DTYPES, check_setting, check_target,
    parse_dtype, parse_init, parse_range, parse_shape,
)
from .renderers import FORMATS
from .report import TargetFailure, exit_status


class UsageProblem(click.ClickException):
    """A GradcheckError on its way out: one paragraph on stderr, exit status 2."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"gradcheck: {self.format_message()}", err=True)


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
    with exit status 2, the same shape as every other usage error, instead of click's usage block."""

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


@click.command(cls=_Command, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("target", required=False)
@click.option("--input-shape", multiple=True, metavar="N,N,...", callback=_checked(parse_shape, each=True, keep=True),
              help="Full input shape, batch dimension first. Repeat once per input: several inputs go to call() "
                   "as a list, or as separate arguments when call() takes that many.")
@click.option("--input-dtype", multiple=True, metavar="DTYPE", callback=_checked(parse_dtype, each=True, keep=True),
              help=f"Input dtype, once per input in the same order (default float32). One of: {', '.join(DTYPES)}.")
@click.option("--input-range", multiple=True, metavar="LOW,HIGH", callback=_checked(parse_range, each=True, keep=True),
              help="Range of sampled values, once per input (default -1,1; integers: [0,10)).")
@click.option("--init", multiple=True, metavar="KEY=VALUE", callback=_checked(parse_init, keep=True),
              help="Constructor keyword; VALUE is read as a Python literal, else as a string. Repeatable.")
@click.option("--seed", type=str, default=0, show_default=True, metavar="N", callback=_setting("seed"), help="Seeds every sample: the same seed, the same report.")
@click.option("--training/--no-training", default=None,
              help="Check call(training=True) or False only. Default: both, when call() takes `training`.")
@click.option("--vanishing-threshold", type=str, default=DEFAULT_VANISHING, show_default=True, metavar="X", callback=_setting("vanishing_threshold"),
              help="Warn when RMS(gradient) / max(RMS(tensor), 1) is below this.")
@click.option("--exploding-threshold", type=str, default=DEFAULT_EXPLODING, show_default=True, metavar="X", callback=_setting("exploding_threshold"),
              help="Warn when RMS(gradient) / max(RMS(tensor), 1) is above this.")
@click.option("--numeric/--no-numeric", default=True, show_default=True,
              help="Compare gradients with finite differences.")
@click.option("--exhaustive", is_flag=True, help="Check every entry of every tensor by finite differences, not only small ones.")
@click.option("--order", type=str, default=1, show_default=True, metavar="1|2", callback=_setting("order"),
              help="2: also check second derivatives (Hessian-vector products, a gradient penalty's gradient).")
@click.option("--rtol", type=str, default=None, metavar="X", callback=_setting("rtol"), help="Relative tolerance of the finite-difference check.")
@click.option("--atol", type=str, default=None, metavar="X", callback=_setting("atol"), help="Absolute tolerance of the finite-difference check.")
@click.option("--eps", type=str, default=None, metavar="X", callback=_setting("eps"), help="Finite-difference step, relative to each tensor's scale.")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default=None,
              help="Output format (default text): markdown for $GITHUB_STEP_SUMMARY, svg for a picture.")
@click.option("--json", "as_json", is_flag=True, help="Shorthand for --format json: one JSON document on stdout.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to FILE instead of stdout.")
@click.option("--fail-on", type=click.Choice(["error", "warning"]), default="error", show_default=True,
              help="Lowest finding severity that makes the exit status 1.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the findings.")
@click.option("--max-elements", type=str, default=DEFAULT_MAX_ELEMENTS, show_default=True, metavar="N", callback=_setting("max_elements"),
              help="Refuse an input with more numbers than this, before allocating it.")
@click.option("--timeout", type=str, default=DEFAULT_TIMEOUT, show_default=True, metavar="SECONDS", callback=_setting("timeout"),
              help="Give up on a target after this many seconds (a layer that hangs).")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.option("--dtype-policy", "dtype_policies", multiple=True, type=click.Choice(DTYPE_POLICIES),
              help="Also run the layer under this Keras dtype policy and compare with float32. Repeatable.")
@click.option("--reload/--no-reload", default=True, show_default=True,
              help="Check that the layer survives from_config(get_config()) and a .keras save and load.")
def main(target, input_shape, input_dtype, input_range, init, seed, training, vanishing_threshold,
         exploding_threshold, numeric, exhaustive, order, rtol, atol, eps, output_format, as_json, output,
         fail_on, quiet, max_elements, timeout, debug, dtype_policies=(), reload=True):
    """Check that every weight of a Keras layer is tracked and gets a sound gradient.

    TARGET is MODULE:NAME or path/to/file.py:NAME, where NAME is a Layer class, a layer instance,
    a Model, or a function that returns one. Without TARGET, every [[tool.gradcheck.targets]]
    entry of ./pyproject.toml is checked, in one process.

    Exit status: 0 no error finding, 1 at least one, 2 the check could not run.

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
        seed=seed, training=training, vanishing_threshold=vanishing_threshold,
        exploding_threshold=exploding_threshold, numeric=numeric, exhaustive=exhaustive, order=order, rtol=rtol,
        atol=atol, eps=eps, max_elements=max_elements, timeout=timeout,
        progress=output_format == "text" and sys.stderr.isatty(),
    )
    settings.update(dtype_policies=tuple(dtype_policies), reload=reload)
    try:
        jobs = _jobs(target, input_shape, input_dtype, input_range, init, settings)
    except GradcheckError as error:
        raise UsageProblem(str(error)) from None
    several = len(jobs) > 1
    results = [_run(label, options_or_error, debug, several) for label, options_or_error in jobs]
    # When no target could run there is no report: the messages on stderr are the whole answer,
    # and stdout or --output stays empty rather than holding a document about nothing.
    if not all(isinstance(result, TargetFailure) for result in results):
        _emit(results, output_format, output, quiet, fail_on)
    sys.exit(exit_status(results, fail_on))


def _jobs(target, input_shape, input_dtype, input_range, init, settings):
    """(target, Options) pairs: the one on the command line, or each one in pyproject.toml."""
    from .api import make_options

    if target is not None:
        check_target(target)  # before TensorFlow loads: syntax, and that a file target exists
        options = make_options(input_shape=list(input_shape), input_dtype=list(input_dtype),
                               input_range=list(input_range), init=list(init), **settings)
        return [(target, options)]
    if input_shape or input_dtype or input_range or init:
        raise GradcheckError(
            "--input-shape, --input-dtype, --input-range and --init describe a TARGET named on the command "
            "line, and none was given. Name the TARGET, or set input-shape, input-dtype, input-range and "
            "init in each [[tool.gradcheck.targets]] entry of ./pyproject.toml."
        )
    from .config import targets_from_pyproject

    return targets_from_pyproject(settings)


def _run(target: str, options, debug: bool, several: bool = False):
    """Check one target; a problem the user must fix becomes a TargetFailure (exit 2).

    With several targets each message on stderr starts with its target, so a reader of the CI log
    knows which entry it is about.
    """
    from .api import run, time_limit

    if isinstance(options, GradcheckError):  # a config entry that did not parse
        click.echo(f"gradcheck: {target}: {options}", err=True)
        return TargetFailure(target, str(options))
    try:
        with time_limit(options.timeout):
            return run(target, options, fresh_session=True)
    except GradcheckError as error:
        if debug:
            # Messages are raised `from None` to keep them one paragraph; --debug promises the
            # user's own traceback, which is the suppressed context.
            error.__suppress_context__ = False
            raise
        click.echo(f"gradcheck: {target + ': ' if several else ''}{error}", err=True)
        return TargetFailure(target, str(error))
    except Exception as error:
        if debug:
            raise
        from .loading import error_text

        # TensorFlow's messages run to pages of frames and object ids; the short reason keeps the
        # paragraph (and the JSON holding it) the same from run to run.
        reason = error_text(error, 300).rstrip(".")
        message = (
            f"gradcheck failed on {target} with {type(error).__name__}: {reason}. This is a bug in "
            "gradcheck, not in your layer; run again with --debug and report the traceback."
        )
        click.echo(f"gradcheck: {message}", err=True)
        return TargetFailure(target, message)


def _emit(results, output_format: str, output, quiet: bool, fail_on: str = "error") -> None:
    from .renderers import render, terminal_settings

    stream = sys.stdout if not output else None
    settings = terminal_settings(stream) if stream is not None and output_format == "text" else {}
    text = render(output_format, results, quiet=quiet, fail_on=fail_on, **settings)
    if output:
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)
    else:
        sys.stdout.write(text)
