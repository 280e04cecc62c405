"""Shared helpers for termlab demos: seeded datasets, tiny NumPy nets, linear models, ONNX export.

Demos import what they need, e.g. ``from demolib import datasets, nets, onnx_export``.
Everything is deterministic given a ``numpy.random.Generator`` and runs in well under a second.
"""

from demolib import datasets, linear, nets, onnx_export

__all__ = ["datasets", "linear", "nets", "onnx_export"]
