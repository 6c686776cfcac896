"""What the JAX and PyTorch backends share: neither has a graph of named ops with Python
tracebacks, so both record what Keras itself does (the variables it makes, its float64
arithmetic) and describe what they find in the same terms.

- `variables.py` — the Keras variables made while a recorder is active, with the user's line.
- `precision.py` — Keras's float64 arithmetic for the twin (policy, floatx, its type promotion).
- `findings.py` — the op that cuts, kills or makes NaN of a gradient, described for a message.

Nothing here imports a framework at module import; each function imports Keras when called.
"""
