"""Shared helpers for termlab demos: seeded datasets, tiny NumPy nets, linear models, ONNX export.

Demos import what they need, e.g. ``from demolib import datasets, nets, onnx_export``.
Everything is deterministic given a ``numpy.random.Generator`` and runs in well under a second.
``from demolib import plotting`` adds matplotlib helpers (log axes with plain tick labels); it is
not imported here, so the rest works without matplotlib.

Shared internals: ``graph`` (the one ONNX graph builder every exporter uses), ``activations``
(the one activation table), ``dense`` (layout and initialisation of the dense nets),
``optimizers`` (every optimiser; demos reach them as ``nets.SGD``/``nets.Adam`` and
``optim.GD``/``optim.Momentum``/``optim.Adam``). ``attention`` and ``transfer`` are packages with
one module per model; their ``__init__`` re-exports every public name.
"""

from demolib import datasets, linear, nets, onnx_export

__all__ = ["datasets", "linear", "nets", "onnx_export"]
