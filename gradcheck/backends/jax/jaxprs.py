"""Reading a jaxpr: the user's line of an equation, the jaxprs nested in one, which variables an
equation reads, and running a jaxpr equation by equation to see every value it makes.

A jaxpr is JAX's record of a traced function: equations (a primitive, its input and output
variables, the Python stack that made it), with the arrays the function closed over as constants.
Every equation keeps the stack of the call that made it (`source_info.traceback`, innermost frame
first), so the user's line of an op is known as a TensorFlow op's is. Inside a nested `jit`
equation the inner jaxpr is cached from its first trace, and its stacks may point at another
call site: the outer equation's line is the one used.
"""

from __future__ import annotations

from types import SimpleNamespace

from ...layer.source import user_location

# Parameters under which an equation holds the jaxpr it runs (jit, custom_jvp_call, remat...).
_NESTED = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def line_of(eqn) -> str | None:
    """The innermost line of the user's code in the stack that made `eqn`."""
    traceback = eqn.source_info.traceback
    if traceback is None:
        return None
    frames = [SimpleNamespace(filename=f.file_name, lineno=f.line_num) for f in traceback.frames]
    return user_location(reversed(frames))  # user_location reads outermost first


def called_from_user(eqn) -> bool:
    """Whether the first frame outside JAX that made `eqn` is the user's own code: a custom_vjp the
    user defined, not jax.nn.relu's custom_jvp called by Keras."""
    from ...layer.source import is_user_file

    traceback = eqn.source_info.traceback
    for frame in traceback.frames if traceback is not None else ():
        if "/jax/" in frame.file_name or "/jaxlib/" in frame.file_name:
            continue
        return is_user_file(frame.file_name)
    return False


def nested(eqn):
    """The jaxpr an equation runs (a jit, a custom derivative's primal), or None."""
    for key in _NESTED:
        inner = eqn.params.get(key)
        if inner is not None:
            return getattr(inner, "jaxpr", inner), list(getattr(inner, "consts", ()))
    return None


def is_var(atom) -> bool:
    """A jaxpr variable rather than a literal constant written into the equation."""
    return not hasattr(atom, "val")


def is_float(aval) -> bool:
    import jax.numpy as jnp  # numpy's dtype tree does not count bfloat16 (ml_dtypes) as inexact

    return bool(jnp.issubdtype(aval.dtype, jnp.inexact))


def first_reads(jaxpr) -> dict:
    """{variable: the first equation that reads it} over the top level of `jaxpr`."""
    first: dict = {}
    for eqn in jaxpr.eqns:
        for atom in eqn.invars:
            if is_var(atom):
                first.setdefault(atom, eqn)
    return first


def read_vars(jaxpr) -> set:
    """The variables some equation reads or the jaxpr returns as they are."""
    found = {atom for eqn in jaxpr.eqns for atom in eqn.invars if is_var(atom)}
    return found | {atom for atom in jaxpr.outvars if is_var(atom)}


def feeding_outputs(jaxpr) -> set:
    """The variables the jaxpr's outputs depend on (so an equation off the outputs' path is ignored)."""
    needed = {atom for atom in jaxpr.outvars if is_var(atom)}
    for eqn in reversed(jaxpr.eqns):
        if any(out in needed for out in eqn.outvars):
            needed.update(atom for atom in eqn.invars if is_var(atom))
    return needed


def bind(eqn, inputs: list) -> list:
    """Run one equation on concrete inputs."""
    made = eqn.primitive.get_bind_params(eqn.params)
    if isinstance(made, tuple):  # JAX before 0.10 returned (subfuns, params)
        subfuns, params = made
        outputs = eqn.primitive.bind(*subfuns, *inputs, **params)
    else:
        outputs = eqn.primitive.bind(*inputs, **made)
    return list(outputs) if eqn.primitive.multiple_results else [outputs]


def interpret(jaxpr, consts: list, arguments: list, visit) -> list:
    """Run `jaxpr` equation by equation; `visit(eqn, inputs, outputs)` sees each one (a True return
    stops the run). Returns the outputs, or [] when stopped."""
    env: dict = {}

    def read(atom):
        return atom.val if not is_var(atom) else env[atom]

    for var, value in zip(jaxpr.constvars, consts):
        env[var] = value
    for var, value in zip(jaxpr.invars, arguments):
        env[var] = value
    for eqn in jaxpr.eqns:
        inputs = [read(atom) for atom in eqn.invars]
        outputs = bind(eqn, inputs)
        for var, value in zip(eqn.outvars, outputs):
            env[var] = value
        if visit(eqn, inputs, outputs):
            return []
    return [read(atom) for atom in jaxpr.outvars]
