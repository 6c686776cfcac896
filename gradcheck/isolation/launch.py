"""How a worker's Python is started: its command line and the environment it imports under.

The supervisor (supervisor.py) starts fork servers with these, and the daemon (daemon.py,
daemon_client.py) starts itself and its servers with the same, so a warm run imports TensorFlow
under what a cold run's worker would.
"""

from __future__ import annotations

import os
import sys

from ..runtime import QUIET_DEFAULTS, WORKER_DEFAULTS


def python_command(code: str) -> list[str]:
    # `-c` puts the working folder first on sys.path; loading.py adds it for a module target only,
    # as `python -m` would, so a file there cannot shadow a library.
    return [sys.executable, "-c", f"import sys; del sys.path[0]; {code}"]


def worker_environment(backend: str | None = None) -> dict[str, str]:
    """The environment a worker of this process gets (for `backend`, else the environment's)."""
    import gradcheck

    # The worker imports this very gradcheck, whatever the caller's sys.path made of it.
    home = os.path.dirname(os.path.dirname(os.path.abspath(gradcheck.__file__)))
    # With the defaults the worker imports TensorFlow under: the same whether or not this process
    # has imported it (check() sets them here), so that import does not call for a new fork server.
    environment = {**QUIET_DEFAULTS, **WORKER_DEFAULTS, **os.environ}
    if backend is not None:  # Keras reads it once, at import: the job's backend, its worker's import
        environment["KERAS_BACKEND"] = backend
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [home, environment.get("PYTHONPATH")]))
    return environment


SERVER = "from gradcheck.isolation.forkserver import serve; serve()"  # a fork server's code (python_command)
