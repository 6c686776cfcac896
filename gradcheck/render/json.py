"""The JSON document: the Report's dataclasses as they are (README "JSON document").

`ok` is each Report's own: no finding of severity error, whatever --fail-on says (the exit status
carries --fail-on); README "JSON document" states it.
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


def render(reports, **_presentation) -> str:
    """One report -> its document; several (a pyproject run) -> {"ok", "targets": [...]}.

    The presentation keywords of renderers.render (quiet, width, color, fail_on) do not change a
    document that programs read.
    """
    if len(reports) == 1:
        document = _clean(reports[0].to_dict())
    else:
        document = {"ok": all(r.ok for r in reports), "targets": [_clean(r.to_dict()) for r in reports]}
    return json.dumps(document, indent=2) + "\n"
