"""Every value the forensics need from a traced graph, computed once on the probe batch.

dying.py (the op where a gradient dies) and nonfinite.py (the op that made the first NaN) read the
values of tensors inside the probe's traced graph: a copy of the traced function pruned to return
them, run on the probe's inputs and projections, with the layer's random and carried state fixed as
for the pass being explained. This runs only when a finding has to be located, and a graph that
cannot be pruned (a tensor that cannot be lifted out of a loop) gives no values: the finding is
then made without naming the op.
"""

from __future__ import annotations

from ....errors import LayerRaised, user_code
from ....layer import state
from ..runtime import tensorflow


def graph_values(probe, run, fetches: list) -> list | None:
    """The numpy values of `fetches` (tensors of `run.trace.graph`) on the probe batch, or None
    when the graph cannot be pruned to them or the layer raised running it."""
    tf, keras = tensorflow()
    projections = probe.projections_for(run.trace.mode)
    count = len(probe.inputs) + len(projections)
    saved = state.snapshot(probe.layer)
    state.restore(state.fixed(probe.layer, probe.seed))  # the state of the pass explained
    try:
        return evaluate(
            run.trace.graph, fetches, count, [*probe.input_tensors(), *[tf.constant(r) for r in projections]]
        )
    finally:
        state.restore(saved)


def evaluate(graph, fetches: list, feeds: int, arguments: list) -> list | None:
    """The numpy values of `fetches` when the first `feeds` inputs of `graph` are `arguments`;
    None when the graph cannot be pruned to them (a tensor that cannot be lifted out of a loop) or
    the layer's ops raised."""
    from tensorflow.python.eager import wrap_function
    from tensorflow.python.ops.op_selector import UnliftableError

    try:
        wrapped = wrap_function.WrappedFunction(
            graph, variable_holder=wrap_function.VariableHolder(share_variables=True)
        )
        pruned = wrapped.prune(feeds=graph.inputs[:feeds], fetches=fetches)
    except (ValueError, TypeError, UnliftableError):
        return None
    try:
        with user_code("running the probe's graph to locate a finding"):
            return [v.numpy() for v in pruned(*arguments)]
    except LayerRaised:
        return None
