"""The process boundary: the code under check runs only in worker processes, so nothing it does
(exit, crash, hang, print) decides the verdict. The supervisor starts, times and ends workers and
turns every way a check can end into a result; on Linux workers are forked from a fork server that
has the framework imported.

The supervisor side imports no framework; the worker imports the pipeline. Nothing here imports
cli/ or render/.
"""
