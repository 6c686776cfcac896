"""The rows of a variable a traced graph reads, when it reads the variable only by looking rows up.

An embedding's table is read by a gather along its first axis: the loss depends on the rows the
batch looks up and on no other. Finite differences then need to move only those rows, and the
tape's gradient must be zero on the rest (numeric/places.py). Whether that holds is read from the
graph, never assumed from the layer's type: every use of the variable must be a gather along axis
0 (`ResourceGather` on its handle, or `GatherV2` of a `ReadVariableOp` of it) or must read its shape
only. Any other use (a matmul with the table, as a tied output projection does; a slice; a read
passed into a nested function) reads every row, and the variable is compared whole.
"""

from __future__ import annotations

import numpy as np

from .values import evaluate

_SHAPE_ONLY = frozenset({"Shape", "ShapeN", "Size", "Rank", "VariableShape"})


def lookup_indices(placeholder) -> list | None:
    """The index tensors of the gathers through which a graph reads the variable whose handle is
    `placeholder`; None when some use reads more than the rows gathered (or nothing is gathered)."""
    indices: list = []
    for op in placeholder.consumers():
        if op.type in _SHAPE_ONLY:
            continue
        if op.type == "ResourceGather" and _gathers_rows(op, placeholder):
            indices.append(op.inputs[1])
            continue
        if op.type != "ReadVariableOp":
            return None
        for consumer in op.outputs[0].consumers():
            if consumer.type in _SHAPE_ONLY:
                continue
            if consumer.type == "GatherV2" and _gathers_rows(consumer, op.outputs[0]):
                indices.append(consumer.inputs[1])
                continue
            return None
    return indices or None


def _gathers_rows(op, table) -> bool:
    """Whether `op` gathers whole rows of `table` (its first input) along axis 0."""
    from tensorflow.python.framework import tensor_util

    if op.inputs[0] is not table or _attribute(op, "batch_dims", 0) != 0:
        return False
    if op.type == "ResourceGather":
        return True
    axis = tensor_util.constant_value(op.inputs[2])
    return axis is not None and int(np.asarray(axis)) == 0


def _attribute(op, name: str, default):
    try:
        return op.get_attr(name)
    except ValueError:
        return default


def rows_read(graph, placeholders: dict, arguments: list) -> dict:
    """{key: the sorted row numbers read} for each variable of `placeholders` ({key: (handle
    placeholder inside `graph`, number of rows)}) that `graph` reads by lookups only, on
    `arguments` (its inputs); a variable whose lookups reach every row, or whose indices cannot be
    computed, is left out."""
    wanted = {}
    for key, (placeholder, count) in placeholders.items():
        found = lookup_indices(placeholder) if placeholder is not None else None
        if found is not None:
            wanted[key] = (found, count)
    if not wanted:
        return {}
    fetches = [tensor for found, _ in wanted.values() for tensor in found]
    values = evaluate(graph, fetches, len(arguments), arguments)
    if values is None:
        return {}
    rows, position = {}, 0
    for key, (found, count) in wanted.items():
        looked_up = np.concatenate([np.asarray(v, np.int64).ravel() for v in values[position : position + len(found)]])
        position += len(found)
        read = np.unique(looked_up[(looked_up >= 0) & (looked_up < count)])
        if 0 < read.size < count:
            rows[key] = read
    return rows
