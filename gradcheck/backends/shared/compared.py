"""A comparison of backends asks every backend the same three things, answered here alike: Keras's
random draws held fixed (draws.py), its backend-API calls recorded (stream.py) and each call's own
gradient, which the stream takes through the backend's `vjp`. Imports nothing at module import, so
TensorFlow's backend can mix it in without loading JAX or torch code."""

from __future__ import annotations


class BackendComparison:
    """backends.Backend's comparison methods (compare/side.py), the same on every framework."""

    def fixed_draws(self, seed: int):
        from .draws import fixed_draws

        return fixed_draws(seed)

    def recorded_calls(self):
        from .stream import recorded_calls

        return recorded_calls(self)

    def call_gradients(self, stream, seed: int) -> None:
        from .stream import add_gradients

        add_gradients(stream, self, seed)
