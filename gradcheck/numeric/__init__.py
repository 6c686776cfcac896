"""Finite differences: the tape's gradients (and, with --order 2, its Hessian-vector products)
compared with central differences on the float64 twin, with steps that adapt to the function and
verdicts that tell a wrong derivative from a kink or a step that cannot resolve the function.

It may import the contracts, options/, layer/, checks/interface.py and the backend protocol
(through runtime.backend()); never a framework, cli/, render/ or isolation/.
"""
