"""The TensorFlow backend's runtime: TensorFlow imported quietly, once, and compiled without Grappler.

TensorFlow prints C++ log lines at import ("oneDNN custom operations are on", absl's banner) that
TF_CPP_MIN_LOG_LEVEL does not fully stop in 2.21, so file descriptor 2 is pointed at a temporary
file for the duration of the import and the text is shown only if the import fails.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import tempfile

from ...errors import GradcheckError

_modules = None


def tensorflow(hide_stderr: bool = True):
    """Return (tf, keras), importing them silently the first time.

    `hide_stderr=False` leaves file descriptor 2 as it is during the import: for the fork server,
    whose stderr is a file of its own, so that what a crashing import writes is kept (forkserver.py).
    """
    global _modules
    if _modules is None:
        _modules = _quiet_import(hide_stderr)
    return _modules


def _quiet_import(hide_stderr: bool = True):
    from ...runtime import quiet_environment

    quiet_environment()
    sys.stderr.flush()
    saved = os.dup(2)
    # The import makes about 270,000 objects that live as long as the process: the collections it
    # would trigger on the way walk them again and again for nothing (0.6 of its 4-5 CPU-seconds here).
    collecting = gc.isenabled()
    with tempfile.TemporaryFile() as captured:
        if hide_stderr:
            os.dup2(captured.fileno(), 2)
        # Keras imports JAX whenever it is installed (for its Orbax checkpoint callback), 0.35 s of
        # every TensorFlow worker's start with gradcheck[all] installed; none of it is used here. A
        # None in sys.modules makes that one `import jax` fail, and Keras goes on without it; the
        # entry is removed afterwards, so a layer that imports JAX itself still can.
        blocked = "jax" not in sys.modules
        if blocked:
            sys.modules["jax"] = None  # type: ignore[assignment]
        try:
            gc.disable()
            import tensorflow as tf  # noqa: I001  (TensorFlow first: Keras picks its backend from it)
            import keras
        except ImportError as error:
            os.dup2(saved, 2)
            captured.seek(0)
            detail = captured.read().decode(errors="replace").strip()
            raise GradcheckError(
                f"TensorFlow could not be imported ({error}). gradcheck needs tensorflow>=2.16 with "
                "Keras 3 in the same environment: pip install 'tensorflow>=2.16'." + (f"\n{detail}" if detail else "")
            ) from None
        finally:
            if blocked and sys.modules.get("jax", 0) is None:
                del sys.modules["jax"]
            if collecting:
                gc.enable()
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    if keras.backend.backend() != "tensorflow":
        raise GradcheckError(
            f"Keras is set to the {keras.backend.backend()!r} backend; gradcheck traces TensorFlow "
            "graphs. Run it with KERAS_BACKEND=tensorflow."
        )
    tf.get_logger().setLevel("ERROR")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    return tf, keras


def versions() -> dict:
    tf, keras = tensorflow()
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
    }


@contextlib.contextmanager
def unoptimized_graphs():
    """Run the checks' compiled functions as traced, without TensorFlow's graph optimizer (Grappler).

    A check compiles a few functions per layer and runs each a handful of times on small inputs:
    optimizing each one as it is first called cost more than it saved (about 15 % of a small
    layer's check, measured side by side; a 790k-parameter layer's was unchanged). The arithmetic
    is the same ops on the same kernels, as in eager mode or fit(run_eagerly=True): results agree
    with an optimized run up to rounding in the last bits. The process-wide setting is put back after.
    """
    tf, _ = tensorflow()
    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})
