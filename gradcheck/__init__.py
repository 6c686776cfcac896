"""gradcheck: find the parts of a Keras layer that never learn.

`check(...)` returns a Report; see README.md. Importing this package does not import TensorFlow:
that happens when a check runs. Nor does it import anything else until a name is asked for, so
the command's first code (cli/entry.py) runs before any of gradcheck's modules are loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import check
    from .errors import GradcheckError
    from .report import Finding, InputInfo, Report, TensorInfo

__all__ = ["check", "Report", "Finding", "TensorInfo", "InputInfo", "GradcheckError"]
__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)

_HOMES = {
    "check": ".api",
    "GradcheckError": ".errors",
    "Report": ".report",
    "Finding": ".report",
    "TensorInfo": ".report",
    "InputInfo": ".report",
}


def __getattr__(name: str):
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
