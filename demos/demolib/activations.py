"""The one activation table of demolib: NumPy function, derivative and ONNX node per name.

Names: ``identity`` (also spelled ``linear``, as ``generative`` stacks do), ``relu``, ``tanh``,
``sigmoid`` and ``leaky_relu`` (slope ``LEAKY_SLOPE`` for negative inputs). Every derivative is
written in terms of the activation's *output* ``h``, so a backward pass only needs what the
forward pass kept (ReLU's derivative at exactly 0 is taken as 0, the convention of most
frameworks).
"""

from __future__ import annotations

import numpy as np

LEAKY_SLOPE = 0.2

#: ONNX operator per activation (``LeakyRelu`` also gets ``alpha=LEAKY_SLOPE``, see ``onnx_attrs``).
ONNX_OPS = {"identity": "Identity", "linear": "Identity", "relu": "Relu", "tanh": "Tanh",
            "sigmoid": "Sigmoid", "leaky_relu": "LeakyRelu"}


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """The activation function applied elementwise (``identity`` returns a copy)."""
    if name in ("identity", "linear"):
        return z.copy()
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "leaky_relu":
        return np.maximum(z, LEAKY_SLOPE * z)  # valid as 0 < LEAKY_SLOPE < 1
    raise ValueError(f"unknown activation {name!r}")


def output_derivative(name: str, h: np.ndarray) -> np.ndarray:
    """``d act(z) / dz`` elementwise, written in terms of the output ``h = act(z)``."""
    if name in ("identity", "linear"):
        return np.ones_like(h)
    if name == "relu":
        return (h > 0.0).astype(h.dtype)
    if name == "tanh":
        return 1.0 - h * h
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "leaky_relu":
        return (h > 0.0) * (1.0 - LEAKY_SLOPE) + LEAKY_SLOPE
    raise ValueError(f"unknown activation {name!r}")


def derivative(name: str, z: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
    """``d act(z) / dz`` elementwise; ``h = act(z)`` may be passed to save recomputing it."""
    return output_derivative(name, activate(name, z) if h is None else h)


def onnx_attrs(name: str) -> dict[str, float]:
    """Attributes of the activation's ONNX node (only ``LeakyRelu`` has one)."""
    return {"alpha": LEAKY_SLOPE} if name == "leaky_relu" else {}
