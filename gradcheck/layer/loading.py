"""From a TARGET string to a Keras layer: import the module or file, find the name, construct it.

TARGET is `package.module:Name` or `path/to/file.py:Name`. Name may be a Layer (or Model) class, a
Layer instance, or a callable returning one. Every failure becomes a GradcheckError that says what
was wrong and what to do; the user's own exceptions are shown with their file:line.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import GradcheckError, LayerRaised, user_code
from ..runtime import backend
from .source import error_text, format_location, is_user_file, sentence, user_code_error, user_frame_of


@dataclass
class Loaded:
    """The layer to check, and how to make a fresh one (for the float64 twin)."""

    target: str
    layer: Any
    make: Callable[[], Any] | None  # None for an instance: it can only be cloned from its config
    init: dict = field(default_factory=dict)  # the --init keywords `make` passes to the constructor


def split_target(target: str) -> tuple[str, str]:
    module, sep, name = target.rpartition(":")
    # A Windows drive ("C:\\x.py") has no name after it; "x.py:Name" always has.
    if not sep or not module or not name or not all(part.isidentifier() for part in name.split(".")):
        raise GradcheckError(
            f"TARGET {target!r} is not MODULE:NAME. Give a module path or a file path, a colon, and "
            "the layer's name, e.g. mypackage.layers:MyLayer or path/to/layers.py:MyLayer."
        )
    return module, name


def load(target, init: dict) -> Loaded:
    """Import the target's module and construct the layer it names.

    `target` is a TARGET string, or (from the Python API) a layer instance, Layer class or factory.
    """
    if not isinstance(target, str):
        label = getattr(target, "__name__", None) or type(target).__name__
        layer, make = _construct(target, label, init)
        return Loaded(target=label, layer=layer, make=make, init=dict(init))
    module_ref, name = split_target(target)
    module = _import(module_ref)
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise GradcheckError(_missing_name_message(module, module_ref, name))
        obj = getattr(obj, part)
    layer, make = _construct(obj, name, init)
    return Loaded(target=target, layer=layer, make=make, init=dict(init))


def _is_file_ref(module_ref: str) -> bool:
    return module_ref.endswith(".py") or os.sep in module_ref or "/" in module_ref


def _import(module_ref: str):
    if _is_file_ref(module_ref):
        return _import_file(module_ref)
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # as `python -m` would: modules beside the user are importable
    try:
        with _no_bytecode(), user_code(f"importing {module_ref!r}"):
            return importlib.import_module(module_ref)
    except LayerRaised as raised:
        error = raised.error
        if isinstance(error, ModuleNotFoundError) and error.name and module_ref.startswith(error.name):
            raise GradcheckError(
                f"No module named {module_ref!r} (Python could not find {error.name!r} from {cwd}). "
                "Check the spelling, run gradcheck from the folder that holds the module or install its "
                f"package, or give a file path instead: path/to/{module_ref.replace('.', '/')}.py:NAME."
            ) from None
        if isinstance(error, SyntaxError):
            raise _syntax_message(error) from None
        raise user_code_error(error, raised.doing) from None


def _import_file(path: str):
    if not path.endswith(".py"):
        raise GradcheckError(f"{path!r} is not a Python file. Give a .py file, e.g. {path}.py:NAME, or a module path.")
    if not os.path.isfile(path):
        raise GradcheckError(
            f"There is no file {path!r} (looked from {os.getcwd()}). Check the path, which is relative "
            "to the folder you run gradcheck in."
        )
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the file's sibling imports work, as when run as a script
    stem = os.path.splitext(os.path.basename(real))[0]
    existing = sys.modules.get(stem)
    if existing is not None and os.path.realpath(getattr(existing, "__file__", "") or "") == real:
        return existing
    module_name = stem if existing is None else f"gradcheck_target_{abs(hash(real))}"
    spec = importlib.util.spec_from_file_location(module_name, real)
    assert spec is not None and spec.loader is not None  # a .py file that exists (checked above) has both
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with _no_bytecode(), user_code(f"importing {path}"):
            spec.loader.exec_module(module)
    except LayerRaised as raised:
        del sys.modules[module_name]
        if isinstance(raised.error, SyntaxError):
            raise _syntax_message(raised.error) from None
        raise user_code_error(raised.error, raised.doing) from None
    return module


class Imported:
    """The user's source files a target has imported (real paths, sorted), as the worker reports them.

    The supervisor refuses to write a report over any of them (`--output helpers.py`), and the
    list only grows: a file seen once stays in it after its module is unloaded.
    """

    def __init__(self) -> None:
        self._before = set(sys.modules)
        self._files: set[str] = set()

    def files(self) -> tuple[str, ...]:
        for name in set(sys.modules) - self._before:
            module = sys.modules.get(name)
            location = getattr(module, "__file__", None)
            if location and _is_user_module(module):
                self._files.add(os.path.realpath(location))
        return tuple(sorted(self._files))


@contextlib.contextmanager
def own_imports():
    """Give a target its own imports: yield an `Imported`, then drop the user's modules the target
    imported and restore sys.path.

    Without this, in one process, the second of two targets whose folders both hold a `helpers.py`
    would get the first one's module, and a module's import-time state would carry over. Library
    modules (TensorFlow, Keras, anything in site-packages) stay loaded: that is what makes a
    second check in the same process fast.
    """
    saved_path = list(sys.path)
    imported = Imported()
    try:
        yield imported
    finally:
        imported.files()  # before they are unloaded
        sys.path[:] = saved_path
        for name in set(sys.modules) - imported._before:
            if _is_user_module(sys.modules.get(name)):
                del sys.modules[name]


def _is_user_module(module) -> bool:
    location = getattr(module, "__file__", None)
    if location and _installed(location):
        # An installed package (keras_hub, h5py when a .keras file is first saved) imported during
        # one target stays for the next: unloading it would only cost its import again.
        return False
    if location:
        return is_user_file(location)
    # A namespace package (a folder without __init__.py) has only __path__.
    folders = list(getattr(module, "__path__", None) or [])
    return bool(folders) and all(is_user_file(os.path.join(folder, "__init__.py")) for folder in folders)


def _installed(location: str) -> bool:
    parts = os.path.realpath(location).split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


@contextlib.contextmanager
def _no_bytecode():
    """Import without writing __pycache__ into the user's folders: gradcheck changes nothing of theirs."""
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = saved


def _syntax_message(error: SyntaxError) -> GradcheckError:
    where = format_location(error.filename, error.lineno or 0) if error.filename else "the module"
    return GradcheckError(
        f"{where}: syntax error: {sentence(error.msg or 'invalid syntax')} Python cannot import the module until it is fixed."
    )


def _layer_classes_in(module) -> list[str]:
    _, keras = backend().modules()
    names = []
    for attr, value in vars(module).items():
        if inspect.isclass(value) and issubclass(value, keras.layers.Layer) and value.__module__ == module.__name__:
            names.append(attr)
    return sorted(names)


def _missing_name_message(module, module_ref: str, name: str) -> str:
    classes = _layer_classes_in(module)
    shown = os.path.basename(module_ref) if _is_file_ref(module_ref) else module_ref
    if classes:
        listing = f"It defines the Layer classes {', '.join(f'`{c}`' for c in classes)}."
    else:
        listing = "It defines no Keras Layer class."
    return f"`{shown}` has no `{name}`. {listing} Check the name after the colon."


def _construct(obj, name: str, init: dict):
    _, keras = backend().modules()
    if inspect.isclass(obj):
        if not issubclass(obj, keras.layers.Layer):
            raise GradcheckError(
                _not_a_layer(
                    name, f"a class that is not a keras.layers.Layer subclass ({obj.__mro__[1].__name__} base)"
                )
            )
        make = lambda: _call_user(obj, init, name)  # noqa: E731
        return make(), make
    if isinstance(obj, keras.layers.Layer):
        if init:
            raise GradcheckError(
                f"`{name}` is a layer instance, so --init {', '.join(init)} cannot be applied. Drop --init, "
                "or point TARGET at the class or a factory function instead."
            )
        return obj, None
    if callable(obj):

        def make():
            made = _call_user(obj, init, name)
            if not isinstance(made, keras.layers.Layer):
                raise GradcheckError(
                    _not_a_layer(name, f"a callable that returned {type(made).__name__}, not a Keras Layer or Model")
                )
            return made

        return make(), make
    kind = type(obj).__name__
    raise GradcheckError(_not_a_layer(name, f"{'an' if kind[0].lower() in 'aeiou' else 'a'} {kind} ({obj!r:.60})"))


def _not_a_layer(name: str, what: str) -> str:
    return (
        f"`{name}` is {what}. gradcheck checks a Keras Layer or Model: point TARGET at a Layer "
        "subclass, a layer instance, a Model, or a function that returns one."
    )


def _call_user(constructor, init: dict, name: str):
    try:
        signature = inspect.signature(constructor)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**init)
        except TypeError as problem:
            raise GradcheckError(_signature_message(name, signature, init, problem)) from None
    try:
        with user_code(f"constructing {name}"):
            return constructor(**init)
    except LayerRaised as raised:
        error = raised.error
        if isinstance(error, GradcheckError):  # a nested gradcheck call's own message: kept whole
            raise error from None
        shown = f"{name}({', '.join(f'{k}={v!r}' for k, v in init.items())})"
        where = user_frame_of(error)
        place = f" at {where}" if where else ""
        sig = f" Its signature is {name}{signature}." if signature is not None else ""
        raise GradcheckError(
            f"{shown} raised {type(error).__name__}{place}: {sentence(error_text(error))}{sig} "
            "Fix the code there, or give other arguments with --init KEY=VALUE (run with --debug for "
            "the traceback)."
        ) from None


def _signature_message(name: str, signature, init: dict, problem: TypeError) -> str:
    required = [
        p.name
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in init
    ]
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [k for k in init if k not in signature.parameters and not accepts_any]
    if unknown:
        return (
            f"`{name}` does not take {', '.join(repr(k) for k in unknown)}. Its signature is "
            f"{name}{signature}. Use --init with one of its parameters."
        )
    if required:
        first = required[0]
        # With **kwargs in the signature a misspelt keyword binds fine; name it, since it is the likely cause.
        stray = [k for k in init if k not in signature.parameters]
        also = f" (--init {', '.join(stray)} is not one of its named parameters)" if stray else ""
        return (
            f"`{name}` needs the argument {', '.join(repr(r) for r in required)} to be constructed{also}. "
            f"Give it with --init {first}=... (its signature is {name}{signature})."
        )
    return f"`{name}` cannot be called with {init}: {problem}. Its signature is {name}{signature}."
