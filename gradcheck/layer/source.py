"""Where things happen in the user's code, and how its failures are told: the user's frame in a stack,
an op's traceback or an exception, and the one-paragraph text for an exception the user's code raised.

A frame is the user's when its file is not part of Python itself, a framework (TensorFlow, JAX,
PyTorch), Keras, NumPy or gradcheck. Locations are printed relative to the working folder when the
file lies inside it, so CI annotations (`::error file=...`) point at repository paths.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import sysconfig
import traceback
import types

from ..errors import GradcheckError, LayerFailed, sentence as ended

_LIBRARY_PACKAGES = (
    "tensorflow",
    "keras",
    "numpy",
    "gradcheck",
    "tf_keras",
    "absl",
    "google",
    "rich",
    "click",
    "_pytest",
    "pluggy",
    "jax",
    "jaxlib",
    "torch",
    "optree",
    "ml_dtypes",
    "scipy",
    "opt_einsum",
)


def _library_roots() -> tuple[str, ...]:
    # Asked once per frame of every stack gradcheck reads (each variable a layer creates, each op
    # of a trace): computed once per set of loaded library packages, not per frame.
    return _roots_of(tuple(name for name in _LIBRARY_PACKAGES if name in sys.modules))


@functools.cache
def _roots_of(loaded: tuple[str, ...]) -> tuple[str, ...]:
    roots = {os.path.dirname(os.path.dirname(__file__))}  # the gradcheck package, every room of it
    # "scripts": the console-script shim (venv/bin/gradcheck) is not the user's code either.
    for key in ("stdlib", "platstdlib", "scripts"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    for name in loaded:
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None) if module else None
        if location:
            roots.add(os.path.dirname(location))
    return tuple(os.path.realpath(r) + os.sep for r in roots)


def is_user_file(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False
    real = _realpath(filename) if os.path.isabs(filename) else os.path.realpath(filename)
    if any(real.startswith(root) for root in _library_roots()):
        return False
    return not any(f"{os.sep}{name}{os.sep}" in real and "site-packages" in real for name in _LIBRARY_PACKAGES)


@functools.lru_cache(maxsize=4096)
def _realpath(filename: str) -> str:
    """os.path.realpath of an absolute path, remembered: the same few files recur in every stack."""
    return os.path.realpath(filename)


def shown_path(filename: str) -> str:
    """A file as reports name it: relative to the working folder when inside it, else absolute."""
    real = os.path.realpath(filename)
    cwd = os.path.realpath(os.getcwd()) + os.sep
    return real[len(cwd) :] if real.startswith(cwd) else real


def format_location(filename: str, lineno: int) -> str:
    return f"{shown_path(filename)}:{lineno}"


def user_location(frames) -> str | None:
    """The innermost user frame of `frames` (objects with .filename and .lineno), as file:line."""
    for frame in reversed(list(frames)):
        if is_user_file(frame.filename):
            return format_location(frame.filename, frame.lineno)
    return None


def user_location_of_caller() -> str | None:
    """The innermost user frame of the running stack, as file:line. Walks the frames themselves:
    traceback.extract_stack() would read every frame's source line, for each variable created."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return format_location(frame.f_code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return None


def user_frame_of(error: BaseException) -> str | None:
    """The innermost line of the user's code in an exception's traceback, as file:line."""
    return user_location(traceback.extract_tb(error.__traceback__))


def error_text(error: BaseException, limit: int = 400) -> str:
    """The reason an exception gives, without the wrapping Keras and TensorFlow add around it."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    keras_reason = re.search(
        r"Exception encountered when calling .*?\n[ \t]*\n(.*?)(\n\s*\n\s*Arguments received|$)", text, re.S
    )
    if keras_reason:
        text = keras_reason.group(1)
    elif "in user code:" in text:
        # TensorFlow lists the user's frames, then "    ErrorType: reason" as the last entry.
        reasons = [line.strip() for line in text.splitlines() if re.match(r"\s*\w+(Error|Exception): ", line)]
        text = reasons[-1] if reasons else text.strip().splitlines()[-1]
    # TensorFlow's op errors carry the kernel's internal name and an empty op name:
    # "{{function_node __wrapped__MatMul_device_/job:localhost/...}} Matrix size-incompatible ... [Op:MatMul] name: "
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"(\[Op:\w+\])\s*name:\s*$", r"\1", text.strip())
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def user_code_error(error: BaseException, doing: str, advice: str = "", note: str = "") -> GradcheckError:
    """The one-paragraph error for an exception raised by the code being checked: what raised, at the
    user's line, while doing what, its reason (with `note` added), then `advice`."""
    where = user_frame_of(error)
    place = f" at {where}" if where else ""
    text = "; ".join(part for part in (error_text(error), note) if part)
    advice = advice or "This is an error in the code being checked; fix it there"
    return LayerFailed(
        f"{type(error).__name__} raised{place} while {doing}: {sentence(text)} {advice} "
        "(run with --debug for the full traceback).",
        where,
    )


def sentence(text: str) -> str:
    """End a quoted reason with a full stop, so the advice after it reads as its own sentence."""
    return ended(text or "(no message)")  # MemoryError() and the like carry no text


def exit_message(error: BaseException, stage: str) -> str:
    """The paragraph for SystemExit or KeyboardInterrupt raised by the code being checked.

    Either would otherwise end the run as if it had finished (sys.exit(0) as a pass), so both are
    reported as a check that could not run, with the line that raised them.
    """
    where = user_frame_of(error)
    place = f" at {where}" if where else ""
    whose = "the layer's module" if stage == "loading the target" else "the layer's code"
    if isinstance(error, SystemExit):
        code = error.code if error.code is not None else ""
        what = f"called sys.exit({code!r})" if isinstance(code, str) and code else f"called sys.exit({code})"
        advice = (
            "An exit is never a pass: remove the call, or keep script code under "
            '`if __name__ == "__main__":` so importing the module does not run it.'
        )
    else:
        what = "raised KeyboardInterrupt"
        advice = "Nothing was checked; raise an ordinary exception there, or none."
    return f"{whose[0].upper()}{whose[1:]} {what}{place} while {stage}. {advice}"


def unhandled_message(raised, target: str) -> str:
    """The paragraph for a LayerRaised that no check turned into a finding: the layer's error, at its
    line, and that gradcheck should have reported it (a bug to report, with --debug's traceback)."""
    error = raised.error
    where = user_frame_of(error)
    place = f" at {where}" if where else ""
    return (
        f"The layer raised {type(error).__name__}{place} while {raised.doing}: {sentence(error_text(error, 300))} "
        f"gradcheck has no finding for this step, so {target} was not checked; this is a gap in gradcheck "
        "(run again with --debug and report the traceback), and the error itself may also be worth fixing."
    )


def eager_cut_location(layer) -> str | None:
    """Best effort when call() could not be traced: the first line of call()'s source that leaves
    TensorFlow (`.numpy()`, `np.`), the usual reason both tracing and the gradient fail."""
    return _first_call_line(layer, lambda code: ".numpy()" in code or "np." in code or "numpy." in code)


def _first_call_line(layer, matches) -> str | None:
    """The location of the first line of call()'s source whose code (its comment left out)
    `matches`, or None (no such line, or no source to read)."""
    import inspect

    try:
        lines, first = inspect.getsourcelines(type(layer).call)
        filename = inspect.getsourcefile(type(layer).call)
    except (OSError, TypeError):
        return None
    if filename is None:
        return None
    for offset, line in enumerate(lines):
        if matches(line.split("#", 1)[0]):
            return format_location(filename, first + offset)
    return None


# How a framework's own ops are usually written in a layer's source.
_FRAMEWORK_PREFIXES = {"tensorflow": ("tf.", "tensorflow."), "jax": ("jax.", "jnp."), "torch": ("torch.",)}


def foreign_op_line(layer, backend: str) -> str | None:
    """Best effort, when call() gives the backend something it cannot use: the first line of
    call()'s source that calls another framework's own op (`tf.sin` in a layer checked on JAX)."""
    foreign = [p for framework, prefixes in _FRAMEWORK_PREFIXES.items() if framework != backend for p in prefixes]
    return _first_call_line(layer, lambda code: any(re.search(rf"(?<![\w.]){re.escape(p)}", code) for p in foreign))
