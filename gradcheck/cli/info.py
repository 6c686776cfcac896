"""`--version` and `--explain CODE`: answered at once, without TensorFlow and without checking anything.

The versions are read from the installed distributions' metadata (importlib.metadata), which a
TensorFlow import would take seconds to give; a missing TensorFlow or Keras is said, not a crash.
"""

from __future__ import annotations

import platform
from importlib import metadata

import click

from ..errors import GradcheckError
from .usage import UsageProblem

# The distributions that provide the `tensorflow` and `keras` modules, in the order pip users meet them.
_TENSORFLOW = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel", "tf-nightly")
_KERAS = ("keras", "keras-nightly")


def _installed(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def version_text() -> str:
    from .. import __version__

    # JAX and PyTorch are extras: named when installed (gradcheck[jax], gradcheck[torch]).
    others = "".join(
        f", {shown} {version}"
        for shown, version in (("JAX", _installed(("jax",))), ("PyTorch", _installed(("torch",))))
        if version != "not installed"
    )
    return (
        f"gradcheck {__version__} (TensorFlow {_installed(_TENSORFLOW)}, Keras {_installed(_KERAS)}{others}, "
        f"Python {platform.python_version()})"
    )


def show_version(ctx, param, value) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(version_text())
    ctx.exit(0)


def show_explanation(ctx, param, value) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from ..explain import page

    try:
        text = page(value.strip())
    except GradcheckError as error:
        raise UsageProblem(str(error)) from None
    click.echo(text.rstrip("\n"))
    ctx.exit(0)
