"""gradcheck: find the parts of a Keras layer that never learn.

`check(...)` returns a Report; see README.md. Importing this package does not import TensorFlow:
that happens when a check runs.
"""

from .api import check
from .errors import GradcheckError
from .report import Finding, InputInfo, Report, TensorInfo

__all__ = ["check", "Report", "Finding", "TensorInfo", "InputInfo", "GradcheckError"]
__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)
