"""What the tool finds: each check reads the probe and the rows filled so far, and returns facts per
row and findings (interface.py). The inventory makes the rows; gradients, the fit() step, the dtype
policies and the save/reload round trip follow (the finite-difference checks are in numeric/).

A check may import the contracts, options/, layer/ and the backend protocol (through
runtime.backend()); never a framework, never cli/, render/ or isolation/.
"""
