"""What the backends share at the level of Keras itself. JAX and PyTorch have no graph of named
ops with Python tracebacks, so both record what Keras does (the variables it makes, its float64
arithmetic) and describe what they find in the same terms; and a comparison of backends needs, on
every backend alike, Keras's random draws held fixed and its backend-API calls recorded.

- `variables.py` — the Keras variables made while a recorder is active, with the user's line.
- `precision.py` — Keras's float64 arithmetic for the twin (policy, floatx, its type promotion).
- `findings.py` — the op that cuts, kills or makes NaN of a gradient, described for a message.
- `draws.py` — Keras's random draws made by numpy, the same on every backend (a comparison).
- `stream.py` — the Keras backend-API calls of a pass, with outputs and their own gradients.
- `compared.py` — the comparison methods every backend answers alike (draws, stream, gradients).
- `values.py` — copies, snapshots and row writes made through numpy (TensorFlow makes them in place).

Nothing here imports a framework at module import; each function imports Keras when called.
"""
