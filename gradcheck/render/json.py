"""The JSON document: the Report's dataclasses as they are (docs/output.md, "JSON document").

`ok` is each Report's own: no finding of severity error that is not ignored, whatever --fail-on
says (the exit status carries --fail-on). Each finding also says where its code is explained
(`"help": "gradcheck --explain CODE"`): the project has no web address to link to.
"""

from __future__ import annotations

import json
import math


def _clean(value):
    # NaN and Infinity are not JSON; the status field already says "nonfinite".
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _document(result) -> dict:
    from ..explain import help_command

    document = _clean(result.to_dict())
    for item in document.get("findings", ()):
        item["help"] = help_command(item["code"])
    return document


def render(reports, **_presentation) -> str:
    """One report -> its document; several (a pyproject run) -> {"ok", "targets": [...]}.

    The presentation keywords of renderers.render (quiet, width, color, fail_on) do not change a
    document that programs read.
    """
    if len(reports) == 1:
        document = _document(reports[0])
    else:
        document = {"ok": all(r.ok for r in reports), "targets": [_document(r) for r in reports]}
    return json.dumps(document, indent=2) + "\n"
