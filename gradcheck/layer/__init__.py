"""The layer being checked: loaded from its TARGET, called as Keras would, its tensors named, its
non-weight state reset, probed on sampled inputs, and copied (the float64 twin, a copy under a
policy). Framework-neutral: what only the framework can do is asked of runtime.backend().

It may import the contracts and options/; never checks/, numeric/, cli/, render/ or isolation/.
"""
