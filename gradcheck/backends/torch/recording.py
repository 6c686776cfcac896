"""One forward pass of a layer on torch, recorded op by op: what each torch function read, what it
made, at which line of the user's code, and which of the tensors being checked it depends on.

torch keeps no graph of named ops with Python stacks, as a TensorFlow graph or a jaxpr does; a
`TorchFunctionMode` sees every torch function and Tensor method as it is called, with its
arguments and results. From that record come the inventory (which weights, raw Parameters, tensors
and numpy constants call() reads, and where first), the op that cuts a path (an output that no
longer requires grad, or one whose derivative is zero: torch's round gives a zero gradient where
TensorFlow and JAX give none), the activation where a gradient dies, and the first NaN.

Two things to look through: a Keras variable enters torch functions as itself (it defines
`__torch_function__` and is unwrapped inside), so it is looked at as the Parameter it holds; and a
custom `torch.autograd.Function` runs its forward without the mode seeing the call, so a tensor it
made is traced back through its autograd graph to the tensors the record knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...layer.source import user_location_of_caller
from .runtime import torch_modules

# torch's names for the ops whose output carries requires_grad but whose derivative is zero.
ZERO_DERIVATIVE_NODES = frozenset(
    {"RoundBackward0", "RoundBackward1", "FloorBackward0", "CeilBackward0", "SignBackward0", "TruncBackward0"}
)
_ACTIVATIONS = {"relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh", "exp": "exp"}
_ACTIVATIONS.update({"softplus": "softplus", "elu": "elu"})
_SKIPPED = frozenset({"__get__", "__set__"})  # attribute reads: .shape, .dtype, .grad_fn


@dataclass
class Op:
    name: str
    line: str | None
    deps: frozenset  # the keys of the tensors being checked that its inputs depend on
    float_outputs: tuple  # dtypes of its float outputs ("float32")
    cut: str | None = None  # "no grad": an output that no longer requires grad; "zero": a zero derivative
    output_dtype: str = ""  # its non-float output dtype, for a cut


@dataclass
class Record:
    """What one recorded pass saw."""

    ops: list = field(default_factory=list)
    reads: set = field(default_factory=set)  # the keys some op read
    first_use: dict = field(default_factory=dict)  # key -> (op name, line) of the first op (not a cast) reading it
    activations: list = field(default_factory=list)  # (deps, name, line, kind, input, output)
    node_line: dict = field(default_factory=dict)  # autograd node -> (op name, line) that made it
    customs: list = field(default_factory=list)  # (deps, Function class, line of the op using its output, node)
    first_nonfinite: tuple | None = None  # (op name, line)
    outputs: list = field(default_factory=list)

    def fingerprint(self):
        return tuple((op.name, op.line, op.float_outputs) for op in self.ops)


def recorder(sources: list, numpy_sources: list):
    """A Recorder (a TorchFunctionMode) over `sources` [(tensor, key)] and `numpy_sources`
    [(key, array)]: use it as a context manager around one call of the layer; `.record` is filled."""
    torch, keras = torch_modules()
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_leaves

    class Recorder(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.record = Record()
            self.deps: dict[int, frozenset] = {id(t): frozenset([k]) for t, k in sources}
            self.keep = [t for t, _ in sources]  # alive while recording: ids stay unique
            self.node_deps: dict = {}

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", str(func))
            out = func(*args, **kwargs)
            if name in _SKIPPED:
                return out
            line = user_location_of_caller()
            inputs = [
                getattr(a, "_value", a) if isinstance(a, keras.Variable) else a for a in tree_leaves((args, kwargs))
            ]
            deps: set = set()
            grad_in, finite_in = False, True
            for item in inputs:
                if isinstance(item, np.ndarray):
                    for key, array in numpy_sources:
                        # Keras's convert_to_tensor copies an array first (np.array(x)): equal values, not identity.
                        if item.shape == array.shape and item.dtype == array.dtype and np.array_equal(item, array):
                            deps.add(key)
                            self.record.reads.add(key)
                            self.record.first_use.setdefault(key, (name, line))
                if isinstance(item, torch.Tensor):
                    known = self.deps.get(id(item))
                    if known is None and item.grad_fn is not None:
                        known = self._through_graph(item.grad_fn)
                    function = getattr(item.grad_fn, "_forward_cls", None)
                    if function is not None and all(node is not item.grad_fn for *_, node in self.record.customs):
                        self.record.customs.append((known or frozenset(), function, line, item.grad_fn))
                    for key in known or ():
                        self.record.reads.add(key)
                        if name != "to":  # Keras's dtype conversion of every tensor is not its use
                            self.record.first_use.setdefault(key, (name, line))
                    deps |= known or set()
                    grad_in |= bool(item.requires_grad)
                    if item.is_floating_point() and not bool(torch.isfinite(item).all()):
                        finite_in = False
            self._outputs(name, line, frozenset(deps), grad_in, finite_in, inputs, out, tree_leaves(out))
            return out

        def _outputs(self, name, line, deps, grad_in, finite_in, inputs, out, leaves) -> None:
            outputs = [o for o in leaves if isinstance(o, torch.Tensor)]
            floats = tuple(str(o.dtype).removeprefix("torch.") for o in outputs if o.is_floating_point())
            op = Op(name, line, deps, floats)
            for o in outputs:
                self.deps[id(o)] = self.deps.get(id(o), frozenset()) | deps
                self.keep.append(o)
                if o.grad_fn is not None:
                    self.record.node_line.setdefault(o.grad_fn, (name, line))
                    self.node_deps.setdefault(o.grad_fn, deps)
                if deps and grad_in and torch.is_grad_enabled():
                    if not o.requires_grad:
                        op.cut = "no grad"
                        if not (o.is_floating_point() or o.is_complex()):
                            op.output_dtype = str(o.dtype).removeprefix("torch.")
                    elif o.grad_fn is not None and type(o.grad_fn).__name__ in ZERO_DERIVATIVE_NODES:
                        op.cut = "zero"
                if finite_in and self.record.first_nonfinite is None and o.is_floating_point():
                    if not bool(torch.isfinite(o).all()):
                        self.record.first_nonfinite = (name, line)
            kind = _ACTIVATIONS.get(name)
            if kind is not None and deps and outputs:
                x = next((i for i in inputs if isinstance(i, torch.Tensor) and i.is_floating_point()), None)
                if x is not None:
                    self.record.activations.append((deps, name, line, kind, x.detach(), outputs[0].detach()))
            self.record.ops.append(op)

        def _through_graph(self, node) -> frozenset:
            """The keys a tensor made outside the record's sight (a custom Function) depends on."""
            found: set = set()
            seen, stack = set(), [node]
            while stack:
                current = stack.pop()
                if current is None or current in seen:
                    continue
                seen.add(current)
                if current in self.node_deps:
                    found |= self.node_deps[current]
                    continue
                variable = getattr(current, "variable", None)
                if variable is not None:
                    found |= self.deps.get(id(variable), frozenset())
                    continue
                stack.extend(next_node for next_node, _ in current.next_functions)
            deps = frozenset(found)
            self.node_deps[node] = deps
            return deps

    return Recorder()
