"""The stream of Keras backend-API calls of one pass, with each call's output and its own gradient.

Every backend module of Keras implements the same functions under the same names
(`keras.src.backend.<name>.numpy.matmul`, `.nn.gelu`, `.image.affine_transform`), and `keras.ops`
looks them up at each call. Recording the outermost calls of one pass gives, on every backend, the
same sequence for a layer written with keras.ops: aligned by position and name, the first call
whose output differs between backends is where the outputs part, and the first whose own gradient
(a vector-Jacobian product with a fixed cotangent, on the inputs that call received) differs is the
op whose gradient is wrong on one of them, even when every output agrees (TensorFlow's
affine_transform). A backend-specific op, or a layer whose streams differ, is compared without
naming an op.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...layer.source import user_location_of_caller

_MODULES = ("numpy", "nn", "math", "image", "linalg")
_LIMIT = 200  # calls recorded per pass: a big layer is compared without naming an op past them


@dataclass
class Call:
    op: str  # "image.affine_transform"
    line: str | None  # the user's line that led to it
    function: Any  # the backend's own function, to run it again for its gradient
    args: list  # numpy arrays where the call had tensors, the rest as given
    kwargs: dict
    output: np.ndarray
    gradient: np.ndarray | None = None  # its VJP with respect to its first float array argument


@dataclass
class Stream:
    calls: list = field(default_factory=list)
    overflowed: bool = False


@contextlib.contextmanager
def recorded_calls(framework):
    """Record the outermost backend-API calls made while active (`framework`: the process's backend)."""
    import keras

    stream, depth, saved = Stream(), [0], []
    for part in _MODULES:
        module = importlib.import_module(f"keras.src.backend.{keras.backend.backend()}.{part}")
        for name, function in list(vars(module).items()):
            if name.startswith("_") or isinstance(function, type) or not callable(function):
                continue
            if getattr(function, "__module__", "") != module.__name__:
                continue
            saved.append((module, name, function))
            setattr(module, name, _recording(f"{part}.{name}", function, stream, depth, framework))
    try:
        yield stream
    finally:
        for module, name, function in saved:
            setattr(module, name, function)


def _recording(op: str, function, stream: Stream, depth: list, framework):
    def recorded(*args, **kwargs):
        outermost = depth[0] == 0 and len(stream.calls) < _LIMIT
        if outermost:  # before the call: Keras's torch affine_transform writes into its arguments
            kept = ([_kept(a, framework) for a in args], {k: _kept(v, framework) for k, v in kwargs.items()})
        depth[0] += 1
        try:
            output = function(*args, **kwargs)
        finally:
            depth[0] -= 1
        if depth[0] == 0 and not outermost:
            stream.overflowed = True
        elif outermost:
            value = _as_array(output, framework)
            if value is not None and value.dtype.kind == "f":
                line = user_location_of_caller()
                stream.calls.append(Call(op, line, function, kept[0], kept[1], np.asarray(value, "float64")))
        return output

    return recorded


def _as_array(value, framework):
    try:
        if framework.is_tensor(value) or isinstance(value, np.ndarray):
            return np.asarray(framework.to_numpy(value))
    except Exception:  # noqa: BLE001 - a value that cannot be read back (a tracer): not recorded
        return None
    return None


def _kept(value, framework):
    """A tensor argument as a numpy copy, taken before the call: each replay converts it afresh."""
    array = _as_array(value, framework)
    return array.copy() if array is not None else value


def add_gradients(stream: Stream, framework, seed: int) -> None:
    """Each call's VJP with respect to its first float array argument, with a cotangent drawn from
    `seed` and the call's position (the same on every backend)."""
    for index, call in enumerate(stream.calls):
        # The first float array argument, positional or (as Keras's image ops pass `images`) by keyword.
        named = [*enumerate(call.args), *call.kwargs.items()]
        position = next((k for k, a in named if isinstance(a, np.ndarray) and a.dtype.kind == "f"), None)
        if position is None:
            continue
        primal = call.args[position] if isinstance(position, int) else call.kwargs[position]
        cotangent = np.random.default_rng([seed, 104729, index]).standard_normal(call.output.shape)

        def function(x, call=call, position=position):
            args = [framework.constant(a) if isinstance(a, np.ndarray) else a for a in call.args]
            kwargs = {k: framework.constant(v) if isinstance(v, np.ndarray) else v for k, v in call.kwargs.items()}
            if isinstance(position, int):
                args[position] = x
            else:
                kwargs[position] = x
            return call.function(*args, **kwargs)

        try:
            call.gradient = framework.vjp(function, primal, cotangent)
        except Exception:  # noqa: BLE001 - a call that cannot be differentiated here: compared by output only
            call.gradient = None
