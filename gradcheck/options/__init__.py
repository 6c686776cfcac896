"""What a check is asked to do: options, inputs, single values and pyproject.toml entries.

- `settings.py`: `Options` and `make_options`, the one place every value is validated.
- `inputs.py`: input shapes, dtypes and ranges (`InputSpec`).
- `values.py`: single values (numbers, flags, --init keywords, the TARGET string).
- `pyproject.py`: the targets listed under [[tool.gradcheck.targets]].

Nothing here imports TensorFlow or numpy, so a bad value is refused at once. It may import only the
top-level contracts (errors.py).
"""

from .inputs import InputSpec
from .settings import Options, make_options

__all__ = ["InputSpec", "Options", "make_options"]
