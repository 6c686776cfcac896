"""Where a gradient path is cut in a jaxpr: the first equations between a tensor and the outputs
that pass no tangent.

Called only for a tensor whose gradient is None (gradients.py decided that exactly, by dead-code
elimination); here the walk goes forward from the tensor's jaxpr variable, keeping two sets: what
depends on it, and what a tangent from it reaches. An equation whose output still depends on the
tensor but carries no tangent cuts the path: one whose outputs are all integer or bool (argmax, a
comparison, a cast to int), or a float one JAX gives no tangent (stop_gradient, round, floor,
ceil, sign). Inside a nested jit the inner equation that cuts is named, at the outer equation's
line (the inner jaxpr is cached from its first trace: its stacks can point elsewhere). Keras's
argmax makes three equations on one user line (it handles -0.0 first, with a comparison): one cut
is named per line, the most telling one.
"""

from __future__ import annotations

from ..shared.findings import Cut, make_cut
from .jaxprs import feeding_outputs, is_float, is_var, line_of, nested

_NO_TANGENT = frozenset({"stop_gradient", "round", "floor", "ceil", "sign"})
_COMPARISONS = frozenset({"eq", "ne", "lt", "gt", "le", "ge", "is_finite"})
_CALLBACKS = frozenset({"pure_callback", "io_callback", "callback"})
_CUSTOM = frozenset({"custom_jvp_call", "custom_vjp_call"})
# The cut named when several are on one line, most telling first.
_PRIORITY = ("argmax", "argmin", "stop_gradient", "round", "floor", "ceil", "sign", "callback", "cast", "comparison")


def find_cuts(jaxpr, source) -> list[Cut]:
    """The cuts on the paths from `source` (a jaxpr variable) to the outputs, one per user line,
    in the jaxpr's order; empty when none could be named."""
    _, found = _walk(jaxpr, {source}, feeding_outputs(jaxpr))
    by_line: dict = {}
    for eqn, inner in found:
        cut = _describe(eqn, inner)
        location = cut.location or f"#{id(eqn)}"
        kept = by_line.get(location)
        if kept is None or _rank(cut) < _rank(kept):
            by_line[location] = cut
    return list(by_line.values())


def _rank(cut: Cut) -> int:
    kind = _kind(cut.op_type, cut.written_as)
    return _PRIORITY.index(kind) if kind in _PRIORITY else len(_PRIORITY)


def _walk(jaxpr, start: set, feeds: set | None):
    """(variables a tangent from `start` reaches, [(equation that cuts, the inner one that does)])."""
    data, alive, cuts = set(start), set(start), []
    for eqn in jaxpr.eqns:
        inputs = [atom for atom in eqn.invars if is_var(atom)]
        if not any(atom in data for atom in inputs):
            continue
        data.update(eqn.outvars)
        if feeds is not None and not any(out in feeds for out in eqn.outvars):
            continue  # its result never reaches an output: not a cut of this path
        if not any(atom in alive for atom in inputs):
            continue  # behind a cut already named
        passed, inner = _passes(eqn, alive)
        alive.update(passed)
        if not passed:
            cuts.append((eqn, inner))
    return alive, cuts


def _passes(eqn, alive: set):
    """(the outputs of `eqn` a tangent reaches, the inner equation that cut when none does)."""
    name = eqn.primitive.name
    floats = [out for out in eqn.outvars if is_float(out.aval)]
    if name in _NO_TANGENT:
        return [], None
    inner = nested(eqn)
    if inner is None or name in _CUSTOM:
        return floats, None  # a custom rule gives the tangent it defines
    inner_jaxpr, _ = inner
    offset = len(inner_jaxpr.invars) - len(eqn.invars)
    start = {
        var for var, atom in zip(inner_jaxpr.invars[max(offset, 0) :], eqn.invars) if is_var(atom) and atom in alive
    }
    reached, inner_cuts = _walk(inner_jaxpr, start, None)
    passed = [
        out
        for out, inner_out in zip(eqn.outvars, inner_jaxpr.outvars)
        if is_var(inner_out) and inner_out in reached and is_float(out.aval)
    ]
    if passed or not inner_cuts:
        return passed, None
    cut_eqn, deeper = inner_cuts[0]
    return passed, deeper or cut_eqn


def _kind(name: str, written_as: str) -> str | None:
    if name in ("argmax", "argmin", "stop_gradient", "round", "floor", "ceil", "sign"):
        return name
    if name in _COMPARISONS:
        return "comparison"
    if name in _CALLBACKS:
        return "callback"
    if name == "convert_element_type":
        return "cast"
    return None


def _describe(eqn, inner) -> Cut:
    named = inner if inner is not None else eqn
    name = named.primitive.name
    outputs = [str(out.aval.dtype) for out in named.outvars if hasattr(out, "aval")]
    not_float = [d for d in outputs if not d.startswith(("float", "bfloat", "complex"))]
    kind = _kind(name, name)
    written_as = {"stop_gradient": "jax.lax.stop_gradient", "pure_callback": "jax.pure_callback"}.get(name, name)
    if kind == "comparison":
        written_as = "a comparison"
    if kind == "cast" and not not_float:
        kind = None  # a float cast: cut only inside something else, named by its output
    return make_cut(kind, name, written_as, line_of(eqn), "/".join(sorted(set(not_float))))
