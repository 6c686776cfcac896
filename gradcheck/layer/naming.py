"""Name every tensor a layer holds by the attribute path a user would type (`proj.kernel`, `ws[1]`).

The walk goes through attributes, lists, tuples, dicts, sublayers, plain Python objects that hold
sublayers, the closures of call() and the module globals it names: Keras 3 tracks only some of
these (design notes 7), which is exactly where untracked tensors hide. Public paths are preferred over
private ones (`kernel` rather than `_kernel`), shallow over deep.
"""

from __future__ import annotations

import ast
import functools
import heapq
import inspect
import itertools
import textwrap
from dataclasses import dataclass
from typing import Any

from .source import format_location, is_user_file

# Keras bookkeeping that refers back to things already reachable (or to the whole model graph).
_SKIP_ATTRIBUTES = frozenset(
    {
        "_tracker",
        "_inbound_nodes",
        "_outbound_nodes",
        "_metrics",
        "_losses",
        "_loss_tracker",
        "_compile_loss",
        "_compile_metrics",
        "_call_signature",
        "_saved_model_inputs_spec",
        "_saved_model_arg_spec",
        "_distribute_strategy",
        "optimizer",
        "_optimizer",
        "train_function",
        "test_function",
        "predict_function",
        "_dtype_policy",
        "_input_spec",
        "_functional",
        "_operations",
        "_nodes_by_depth",
        "_self_unconditional_checkpoint_dependencies",
        "_self_unconditional_dependency_names",
        "_self_unconditional_deferred_dependencies",
        "_self_saveable_object_factories",
        "_self_name_based_restores",
        "_parent_path",
        "_trainable_variables",
        "_non_trainable_variables",
        "_seed_generators",
        "_layers",
    }
)
_MAX_DEPTH = 8
_MAX_NODES = 20_000


@dataclass
class Place:
    path: str
    owner: Any  # the object whose attribute (or container) holds the value
    attribute: str | None  # the attribute name on `owner`, when held directly as an attribute
    private: int  # how many path segments start with "_"

    @property
    def rank(self):
        return (self.private, self.path.count(".") + self.path.count("["), len(self.path))


class Names:
    """Where each object reachable from the layer lives: id(object) -> best Place."""

    def __init__(self, root, backend):
        self._backend = backend
        _, self._keras = backend.modules()
        self.places: dict[int, Place] = {}
        self.objects: dict[int, Any] = {}
        self.layers: dict[int, Place] = {}  # sublayers (and the root, at path "")
        self._walk(root)
        backend.remember_places(self)  # JAX replaces a raw array where it is held to assign it

    def is_leaf(self, value) -> bool:
        return self._backend.is_leaf(value)

    def _walk(self, root):
        """Best-first over paths, public and shallow first, so each container is reached by the
        path a user would type before any private one (`blocks[0].proj`, not `<dense>`)."""
        keras = self._keras
        counter = itertools.count()  # ties keep insertion order, so the walk is deterministic
        heap = [(Place("", None, None, 0).rank, next(counter), root, Place("", None, None, 0), 0)]
        seen: set[int] = set()
        while heap and len(seen) < _MAX_NODES:
            _, _, value, place, depth = heapq.heappop(heap)
            push = lambda child, child_place, depth=depth: heapq.heappush(  # noqa: E731
                heap, (child_place.rank, next(counter), child, child_place, depth + 1)
            )
            if self.is_leaf(value):
                if id(value) not in self.places:  # the first path popped is the best
                    self.places[id(value)] = place
                    self.objects[id(value)] = value
                continue
            if id(value) in seen or depth > _MAX_DEPTH:
                continue
            seen.add(id(value))
            if isinstance(value, keras.layers.Layer):
                self.layers.setdefault(id(value), place)
                self.objects[id(value)] = value
                # The weights Keras tracks, reached also when their attribute was reassigned.
                for variable in value._trainable_variables + value._non_trainable_variables:
                    push(variable, _child(place, value, f"<{variable.name}>", "."))
                for sublayer in getattr(value, "_layers", []):
                    push(sublayer, _child(place, value, f"<{sublayer.name}>", "."))
                self._queue_call_references(type(value), place, push)
            for name, child in _children(value, self._backend.attributes):
                push(child, _child(place, value, name, name[0]))

    def _queue_call_references(self, cls, place: Place, push):
        """Tensors call() reaches by closure or module global rather than through `self`."""
        call = getattr(cls, "call", None)
        code = getattr(call, "__code__", None)
        if call is None or code is None or not is_user_file(code.co_filename):
            return
        for name, cell in zip(code.co_freevars, call.__closure__ or ()):
            try:
                push(cell.cell_contents, Place(name, None, None, 1))
            except ValueError:  # an empty cell
                continue
        module = inspect.getmodule(call)
        module_name = module.__name__.rpartition(".")[2] if module else "global"
        for name in code.co_names:
            if name in call.__globals__:
                push(call.__globals__[name], Place(f"{module_name}.{name}", module, name, 1))

    def owner_layer(self, variable):
        """The (inner) layer whose weights include `variable`, or None."""
        for layer_id, _ in self.layers.items():
            layer = self.objects[layer_id]
            if any(v is variable for v in layer._trainable_variables + layer._non_trainable_variables):
                return layer
        return None

    def layer_path(self, layer) -> str:
        """A sublayer's public attribute path, or its Keras name when it is reachable only privately."""
        place = self.layers.get(id(layer))
        if place is None or place.private or "<" in place.path:
            return layer.name
        return place.path

    def variable_name(self, variable, root) -> str:
        """`proj.kernel` for a tracked weight; the attribute path for anything else."""
        place = self.places.get(id(variable))
        if place is not None and not place.private and "<" not in place.path:
            return place.path
        owner = self.owner_layer(variable)
        if owner is not None:
            prefix = "" if owner is root else self.layer_path(owner) + "."
            return prefix + variable.name
        if place is not None:
            return place.path.replace("<", "").replace(">", "")
        return getattr(variable, "name", "variable").split(":")[0]

    def assignment_location(self, value) -> str | None:
        """Where the user's code assigns the attribute that holds `value` (`self.w = ...`)."""
        place = self.places.get(id(value))
        if place is None or place.owner is None or place.attribute is None:
            return None
        if inspect.ismodule(place.owner):
            return _find_global_assignment(place.owner, place.attribute)
        is_variable = isinstance(value, self._keras.Variable) or self._backend.is_variable(value)
        for cls in type(place.owner).__mro__:
            found = _find_assignment(cls, place.attribute, is_variable)
            if found:
                return found
        return None


def _child(place: Place, owner, name: str, kind: str) -> Place:
    if kind == "[":
        path = f"{place.path}{name}"
        attribute = None
    else:
        path = f"{place.path}.{name}" if place.path else name
        attribute = name
    private = place.private + (1 if name.startswith("_") or name.startswith("<") else 0)
    return Place(path, owner, attribute, private)


def _children(value, attributes_of):
    """(name, child) pairs of a container or plain object; `[i]` / `['k']` names for items.
    `attributes_of(obj)` is the backend's view of an object's attributes (a torch module keeps its
    Parameters and submodules outside `__dict__`)."""
    if isinstance(value, (list, tuple)):
        return [(f"[{i}]", item) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return [(f"[{k!r}]", item) for k, item in value.items()]
    if inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value):
        return []
    attributes = attributes_of(value)
    if not isinstance(attributes, dict):
        return []
    module = type(value).__module__ or ""
    is_library = module.split(".")[0] in ("tensorflow", "keras", "numpy", "tf_keras", "jax", "jaxlib")
    from_keras_layer = hasattr(value, "_trainable_variables")
    if is_library and not from_keras_layer:
        return []  # library internals (optimizers, initializers, dtype policies) hold no user tensors
    pairs = [(k, v) for k, v in attributes.items() if k not in _SKIP_ATTRIBUTES and not k.startswith("__")]
    return sorted(pairs, key=lambda kv: kv[0].startswith("_"))


def _find_global_assignment(module, name: str) -> str | None:
    """The line of `NAME = ...` at the top level of a user's module."""
    try:
        filename = inspect.getsourcefile(module)
        tree = ast.parse(inspect.getsource(module))
    except (TypeError, OSError, SyntaxError):
        return None
    if not filename or not is_user_file(filename):
        return None
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return format_location(filename, node.lineno)
    return None


_VARIABLE_MAKERS = ("add_weight", "Variable", "add_variable")


def _makes_variable(node) -> bool:
    call = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
    if not isinstance(call, ast.Call):
        return False
    function = call.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    return name in _VARIABLE_MAKERS


def _find_assignment(cls, attribute: str, is_variable: bool) -> str | None:
    """The line of `self.<attribute> = ...` that made this kind of value: a variable maker's line
    for a variable, any other assignment for a tensor (`self.kernel = self.kernel / n` in call())."""
    parsed = _self_assignments(cls)
    if parsed is None:
        return None
    filename, start, assignments = parsed
    preferred = [line for name, line, makes in assignments if name == attribute and makes == is_variable]
    other = [line for name, line, makes in assignments if name == attribute and makes != is_variable]
    lines_found = sorted(preferred) or sorted(other)
    return format_location(filename, start + lines_found[0] - 1) if lines_found else None


@functools.lru_cache(maxsize=256)
def _self_assignments(cls) -> tuple[str, int, tuple[tuple[str, int, bool], ...]] | None:
    """(file, first line, every `self.NAME = ...` in the class as (NAME, line, makes a variable)).

    Parsed once per class: a layer made of many sublayers asks for dozens of attributes of the same
    few classes, and reading a class's source (inspect.getsourcelines) is the slow part.
    """
    try:
        filename = inspect.getsourcefile(cls)
    except TypeError:
        return None
    if not filename or not is_user_file(filename):
        return None
    try:
        lines, start = inspect.getsourcelines(cls)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (TypeError, OSError, SyntaxError):
        return None
    found: list[tuple[str, int, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                found.append((target.attr, node.lineno, _makes_variable(node)))
    return filename, start, tuple(found)


def assigned_name(location: str | None) -> str | None:
    """The name the user's line at `location` ("file:line") assigns: `w` for `w = tf.Variable(...)`,
    `self.scale` -> `scale`. None when the line is not a simple assignment."""
    import linecache

    if not location or ":" not in location:
        return None
    filename, _, number = location.rpartition(":")
    if not number.isdigit():
        return None
    text = linecache.getline(filename, int(number)).strip()
    try:
        statement = ast.parse(text).body[0] if text else None
    except SyntaxError:
        return None
    targets = []
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        targets = [statement.targets[0]]
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        targets = [statement.target]
    for target in targets:
        if isinstance(target, ast.Name):
            return target.id
        if isinstance(target, ast.Attribute):
            return target.attr
    return None
