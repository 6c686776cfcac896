"""The page of each finding code: what it means, why it matters for training, a layer that triggers
it, and the fix, as `gradcheck --explain CODE` prints it.

The pages are markdown files inside the package (gradcheck/findings/CODE.md, which docs/findings/
links to), so an installed gradcheck explains its codes without the repository; the SARIF report
embeds them as each rule's help. A test holds the pages and codes.CODES to each other.
"""

from __future__ import annotations

from importlib import resources

from .codes import CODES
from .errors import GradcheckError


def page(code: str) -> str:
    """The markdown page of `code`.

    Raises:
        GradcheckError: `code` is not a finding code (the message lists them).
    """
    if code not in CODES:
        raise GradcheckError(
            f"--explain {code!r}: there is no such finding code. The codes are: {', '.join(sorted(CODES))}."
        )
    return (resources.files(__package__) / "findings" / f"{code}.md").read_text(encoding="utf-8")


def help_command(code: str) -> str:
    """How a reader gets the page of `code` (what reports link to: the project has no web address)."""
    return f"gradcheck --explain {code}"
