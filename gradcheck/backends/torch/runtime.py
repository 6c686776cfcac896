"""The PyTorch backend's runtime: torch and Keras imported once, and their versions."""

from __future__ import annotations

import sys

from ...errors import GradcheckError
from ...runtime import INSTALL

_modules = None


def torch_modules(hide_stderr: bool = True):
    """Return (torch, keras), importing them the first time (`hide_stderr` as TensorFlow's)."""
    global _modules
    if _modules is None:
        from ...runtime import quiet_environment

        quiet_environment()
        try:
            import keras
            import torch
        except ImportError as error:
            raise GradcheckError(
                f"PyTorch could not be imported ({error}). Checking on the torch backend needs torch and "
                f"Keras 3 in the same environment: {INSTALL['torch']}."
            ) from None
        if keras.backend.backend() != "torch":
            raise GradcheckError(
                f"Keras was imported on the {keras.backend.backend()!r} backend before gradcheck could set "
                "it to torch (Keras reads KERAS_BACKEND once, at import). Run the torch check in a process "
                "of its own: the gradcheck command, or check(..., isolate=True)."
            )
        from ..shared.variables import keep_tensorflow_out

        keep_tensorflow_out()
        _modules = (torch, keras)
    return _modules


def versions() -> dict:
    torch, keras = torch_modules()
    return {"torch": torch.__version__, "keras": keras.__version__, "python": ".".join(map(str, sys.version_info[:3]))}
