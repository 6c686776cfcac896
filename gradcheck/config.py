"""Targets listed in pyproject.toml (issue 5): placeholder until it lands."""

from .errors import GradcheckError


def targets_from_pyproject(settings):
    raise GradcheckError("No TARGET given. Name the layer to check, e.g. gradcheck layers.py:MyLayer --input-shape 100,5.")
