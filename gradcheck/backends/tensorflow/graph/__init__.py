"""Forensics on a traced TensorFlow graph: what it reads, which op cuts a gradient path, where a
gradient dies or turns NaN, a backward that raises, what a dtype policy loses. Each walk starts from
where a tensor enters the graph and names the op at the user's line.

Part of the TensorFlow backend: it may import TensorFlow, the neutral layer/ and the contracts.
"""
