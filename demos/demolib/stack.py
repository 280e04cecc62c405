"""Dense stacks: layers ``a @ W + b`` (weights ``(fan_in, fan_out)``, as ONNX ``Gemm``), each
followed by its own activation (``linear``, ``tanh``, ``relu``, ``leaky_relu`` with slope
``LEAKY_SLOPE``, ``sigmoid``), as a single net or an ensemble trained side by side; with forward
and backward passes and ``export_stack``. The building block of ``demolib.generative``, which
re-exports all of it (``gm.Stack``, ``gm.forward``, ...).

Unlike ``demolib.nets.MLP`` the backward pass also returns the gradient with respect to the
*input*, which a GAN needs (the generator learns through the discriminator) and which lets an
autoencoder be split into an encoder and a decoder (``layers``). Parameters are plain arrays, so
``demolib.nets.SGD`` / ``Adam`` train them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from onnx import GraphProto

from demolib.activations import LEAKY_SLOPE as LEAKY_SLOPE  # re-exported
from demolib.activations import activate, output_derivative
from demolib.dense import DenseLayers, init_dense
from demolib.graph import Graph, tensor

Act = Literal["linear", "tanh", "relu", "leaky_relu", "sigmoid"]
_ACTS = ("linear", "tanh", "relu", "leaky_relu", "sigmoid")


# --------------------------------------------------------------------------- dense stacks


@dataclass
class Stack(DenseLayers):
    """Dense layers with one activation each: ``a = act_i(a @ weights[i] + biases[i])``.

    Weights are ``(fan_in, fan_out)`` and biases ``(fan_out,)``; or, for an *ensemble* of
    ``S`` independent stacks trained side by side (one set of NumPy calls for all of them),
    ``(S, fan_in, fan_out)`` and ``(S, 1, fan_out)``. An ensemble maps ``(B, d)`` (shared) or
    ``(S, B, d)`` inputs to ``(S, B, out)``; ``member(net, s)`` is stack ``s`` on its own.
    """

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activations: list[str]

    def __post_init__(self) -> None:
        if not len(self.weights) == len(self.biases) == len(self.activations):
            raise ValueError("weights, biases and activations need one entry per layer")
        for act in self.activations:
            if act not in _ACTS:
                raise ValueError(f"unknown activation {act!r}; use one of {_ACTS}")

    @property
    def members(self) -> int | None:
        """``S`` for an ensemble, ``None`` for a single stack."""
        return self.weights[0].shape[0] if self.weights[0].ndim == 3 else None

    def copy(self) -> Stack:
        return replace(super().copy(), activations=list(self.activations))


def init_stack(
    rng: np.random.Generator,
    sizes: Sequence[int],
    activations: Sequence[str],
    *,
    members: int | None = None,
) -> Stack:
    """Random stack (or an ensemble of ``members`` independent ones): weights
    ``N(0, gain / fan_in)`` with gain 2 before ReLU-like activations and 1 otherwise; zero
    biases."""
    if len(activations) != len(sizes) - 1:
        raise ValueError(f"{len(sizes) - 1} layers need {len(sizes) - 1} activations")
    gains = [2.0 if act in ("relu", "leaky_relu") else 1.0 for act in activations]
    weights, biases = init_dense(rng, sizes, gains, members=members)
    return Stack(weights, biases, list(activations))


def member(net: Stack, s: int) -> Stack:
    """Stack ``s`` of an ensemble, as a single stack (copied)."""
    if net.members is None:
        raise ValueError("not an ensemble")
    return Stack([w[s].copy() for w in net.weights], [b[s, 0].copy() for b in net.biases],
                 list(net.activations))


def layers(net: Stack, start: int, stop: int | None = None) -> Stack:
    """The layers ``start:stop`` as a stack of their own (sharing the arrays): e.g. the encoder
    and the decoder of an autoencoder."""
    sl = slice(start, stop)
    return Stack(net.weights[sl], net.biases[sl], net.activations[sl])


@dataclass
class StackCache:
    """Inputs and outputs of every layer of one forward pass."""

    inputs: list[np.ndarray] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)


def forward(net: Stack, X: np.ndarray) -> tuple[np.ndarray, StackCache]:
    """Run the stack; the cache is what ``backward`` needs."""
    cache = StackCache()
    a = X
    for w, b, act in zip(net.weights, net.biases, net.activations, strict=True):
        cache.inputs.append(a)
        a = activate(act, a @ w + b)
        cache.outputs.append(a)
    return a, cache


def predict(net: Stack, X: np.ndarray) -> np.ndarray:
    return forward(net, X)[0]


def backward(
    net: Stack, cache: StackCache, dout: np.ndarray, *, param_grads: bool = True
) -> tuple[list[np.ndarray], np.ndarray]:
    """Gradients w.r.t. ``net.params()`` and w.r.t. the input, given ``dout = dLoss/dOutput``.
    With ``param_grads=False`` only the input gradient is computed (the list is empty)."""
    grads: list[np.ndarray] = []
    da = dout
    for i in reversed(range(len(net.weights))):
        dz = da * output_derivative(net.activations[i], cache.outputs[i])
        if param_grads:  # appended as (b, W): the list is reversed below
            grads += [dz.sum(axis=-2).reshape(net.biases[i].shape),
                      np.swapaxes(cache.inputs[i], -1, -2) @ dz]
        da = dz @ np.swapaxes(net.weights[i], -1, -2)
    return grads[::-1], da


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over all entries and its gradient w.r.t. ``pred``."""
    r = pred - target
    return float(np.mean(r * r)), (2.0 / r.size) * r


# --------------------------------------------------------------------------- ONNX


def export_stack(
    net: Stack, *, name: str, input_name: str = "x", output_name: str = "y", doc_string: str = ""
) -> GraphProto:
    """A stack as an ONNX graph (float32, dynamic batch ``N``); wrap it with ``demo.make_model``.

    A single stack is ``input (N, d) -> Gemm -> activation -> ... -> output (N, out)``. An
    ensemble of ``S`` stacks shares the input: ``MatMul`` with ``(S, d, h)`` weights broadcasts it
    to ``(S, N, h)``, ``Add`` adds ``(S, 1, h)`` biases, and a final ``Transpose`` gives
    ``output (N, S, out)``, member ``s`` in ``output[:, s]``. ``leaky_relu`` is a ``LeakyRelu``
    node with ``alpha = LEAKY_SLOPE``; ``linear`` adds no node.
    """
    g = Graph()
    ensemble = net.members is not None
    a = input_name
    last = len(net.weights) - 1
    for i, (w, b, act) in enumerate(zip(net.weights, net.biases, net.activations, strict=True)):
        W, B = g.const(f"W{i}", w), g.const(f"b{i}", b)
        is_out = i == last and act == "linear" and not ensemble
        if ensemble:
            a = g.op("Add", [g.op("MatMul", [a, W], f"matmul{i}"), B], f"add{i}")
        else:
            a = g.op("Gemm", [a, W, B], output_name if is_out else f"gemm{i}")
        if act != "linear":
            a = g.act(act, a, output_name if i == last and not ensemble else f"{act}{i}")
    if ensemble:
        g.op("Transpose", [a], output_name, perm=[1, 0, 2])
        out_shape: list[str | int] = ["N", int(net.members), net.sizes[-1]]
    else:
        out_shape = ["N", net.sizes[-1]]
    kind = f"ensemble of {net.members} dense stacks" if ensemble else "dense stack"
    doc = doc_string or f"{kind} {net.sizes}, activations {net.activations}"
    return g.build(name, [tensor(input_name, ["N", net.sizes[0]])], [tensor(output_name, out_shape)], doc)
