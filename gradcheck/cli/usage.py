"""The command's usage errors: every one is a single paragraph on stderr and exit status 2.

Click's own errors (an unknown option, a missing value, a bad choice) are reworded into the same
shape as gradcheck's, and each option's value is validated where click parses it, by the one
validation layer (options/), so a bad value exits before a pyproject entry is read or TensorFlow
loads.
"""

from __future__ import annotations

import os

import click

from ..errors import GradcheckError, sentence
from ..options.settings import check_setting
from .exits import exit_as_a_command
from .streams import say


class UsageProblem(click.ClickException):
    """A GradcheckError on its way out: one paragraph on stderr, exit status 2."""

    exit_code = 2

    def show(self, file=None):
        say(f"gradcheck: {self.format_message()}")


def checked(validate, *, each: bool = False, keep: bool = False):
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


def setting(name: str):
    return checked(lambda value: check_setting(name, value))


class Command(click.Command):
    """Click's own usage errors (an unknown option, a missing value, a bad choice) as one paragraph
    with exit status 2, the same shape as every other usage error, instead of click's usage block.
    Run as a command (`standalone_mode`), it also owns the process-level ends: Ctrl-C and SIGTERM
    at any moment (130, 143: signals.py), and a message stderr could not take (2: streams.py)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        exit_as_a_command(lambda: super(Command, self).main(args, prog_name, complete_var, False, **extra))

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
    if isinstance(error, click.NoSuchOption) and error.possibilities:
        # Said in gradcheck's words, not click's: its "(Did you mean one of: ...?)" ends in brackets
        # after the question mark, and its wording changes between click versions.
        names = [repr(name) for name in sorted(error.possibilities)]
        asked = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        text = f"{sentence(error.message)} Did you mean {asked}?"
    else:
        text = error.format_message()
    return f"{sentence(' '.join(text.split()))} Run gradcheck --help for the options."  # one paragraph


def jobs_count(ctx, param, value):
    if value == "auto":
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise click.BadParameter(f"must be a number of worker processes (1 or more) or auto, got {value!r}.")
    return count
