"""Comparing backends: the same layer, the same float64 weights and inputs, the same random draws,
on every backend asked for; outputs and gradients compared between them.

With two or more backends, each backend's worker, after its own checks, makes one more pass
(side.py): a float64 copy of the layer given weights drawn from --seed by name and shape (so every
backend draws the same numbers), random draws made by numpy instead of the framework, the probe's
inputs and projections; it writes the outputs, the gradients, and the stream of Keras backend-API
calls with each call's own gradient to a folder the command made (the draws and the stream are
the backend's to make: backends/shared/draws.py and stream.py). The
command then compares the backends' files (verdict.py) and adds backend-mismatch and
backend-unsupported findings to the reports, each on the backend found at fault.

side.py runs in a worker; verdict.py runs in the command and reads numpy files only.
"""
