"""A TensorFlow that cannot start on this machine: it says why on stderr and aborts, as a wheel
built for CPU instructions the machine lacks does. Put first on PYTHONPATH by a test only."""

import os
import sys

sys.stderr.write("The TensorFlow library was compiled to use instructions this CPU does not have.\n")
sys.stderr.flush()
os.abort()
