"""ONNX model building and ONNX Runtime sessions with versions the installed runtime accepts."""

from __future__ import annotations

from typing import Any

# onnx >= 1.23 writes IR 14 by default, newer than onnxruntime 1.31 reads (<= 13):
# always pin the IR version and opset explicitly.
IR_VERSION = 10
OPSET = 17


def make_model(graph: Any, opset: int = OPSET, **kwargs: Any) -> Any:
    """A ModelProto from a GraphProto, with the pinned IR version and opset."""
    from onnx import helper

    kwargs.setdefault("producer_name", "termlab")
    return helper.make_model(graph, ir_version=IR_VERSION,
                             opset_imports=[helper.make_opsetid("", opset)], **kwargs)


def session(model_bytes: bytes) -> Any:
    """An onnxruntime InferenceSession on the CPU, pinned to one thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
