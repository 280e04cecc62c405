"""The one ONNX graph builder every demolib exporter uses: a thin layer over ``onnx.helper``.

``Graph`` collects nodes and initializers in the order they are added, so an exporter reads
top to bottom as the computation it writes. Every node is named after its (single) output, which
keeps saved models readable and deterministic. Wrap the built graph with
``onnx_export.make_model`` (IR 10, opset 17).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import GraphProto, TensorProto, ValueInfoProto, helper, numpy_helper

from demolib.activations import ONNX_OPS, onnx_attrs


def tensor(name: str, shape: Sequence[int | str], elem_type: int = TensorProto.FLOAT) -> ValueInfoProto:
    """A graph input or output ``name`` of ``shape`` (strings are dynamic axes); float32 by default."""
    return helper.make_tensor_value_info(name, elem_type, list(shape))


class Graph:
    """Collects ONNX nodes and initializers.

    Initializers keep bools and store integers as int64 and everything else as float32.
    """

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list[TensorProto] = []
        self._n = 0

    def const(self, name: str, value: np.ndarray | float | int | bool) -> str:
        """Add an initializer ``name`` holding ``value``; returns ``name``."""
        arr = np.asarray(value)
        if arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
        elif arr.dtype != np.bool_:
            arr = arr.astype(np.float32)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], output: str | None = None, **attrs: object) -> str:
        """Add a node; its output (and name) is ``output`` or a fresh ``<op_type>_<k>``."""
        if output is None:
            self._n += 1
            output = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attrs))
        return output

    def act(self, name: str, x: str, output: str) -> str:
        """The activation ``name`` (see ``demolib.activations``) applied to ``x``."""
        return self.op(ONNX_OPS[name], [x], output, **onnx_attrs(name))

    def build(self, name: str, inputs: list, outputs: list, doc: str = "") -> GraphProto:
        """The graph ``name`` with the given inputs and outputs (see ``tensor``)."""
        return helper.make_graph(self.nodes, name, inputs, outputs, self.inits, doc_string=doc)
