"""Low-rank adaptation (LoRA) of a frozen ``nets.MLP``: every hidden layer's weight matrix gets a
trainable low-rank update, ``W + s A B``, and the output layer (a new task head) trains in full.

Used by the lora demo::

    from demolib import lora

    model = lora.LoRAMLP.wrap(pretrained, rank=4, rng=rng)    # A random, B zero: starts as the net
    transfer.fit(model, X, y, opt, steps=..., trainable=model.lora_tuning())
    merged = model.merged()                                  # a plain nets.MLP, W + s A B folded in

Conventions follow ``nets`` (a layer is ``a @ W + b`` with ``W (fan_in, fan_out)``), so the update
of layer ``i`` is ``A_i (fan_in, r) @ B_i (r, fan_out)``, scaled by ``s = alpha / r``. As in Hu et
al., ``A`` starts Gaussian and ``B`` at zero, so the wrapped net computes exactly the pretrained
function before training. Gradients reuse ``nets.backward`` on the merged weights: with
``G = dLoss/dW_eff`` (the gradient a full fine-tuning step would see),
``dA = s G B^T`` and ``dB = s A^T G``.

``export_lora_mlp`` writes the unmerged form (``Gemm`` for the frozen weight plus a
``MatMul -> MatMul -> Add`` side path per layer); ``onnx_export.export_mlp(model.merged())`` writes
the merged one, which has exactly the nodes of the original network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from onnx import GraphProto

from demolib import nets
from demolib.graph import Graph, tensor


@dataclass
class LoRAMLP:
    """A frozen ReLU ``nets.MLP`` with a rank-``r`` update ``s A_i B_i`` on each hidden layer.

    ``params()`` lists the MLP's arrays first (``W0, b0, ..., W_out, b_out``), then
    ``A0, B0, A1, B1, ...``; ``lora_tuning()`` flags the head and the ``A``, ``B`` factors.
    """

    net: nets.MLP
    A: list[np.ndarray]
    B: list[np.ndarray]
    scale: float

    @classmethod
    def wrap(cls, net: nets.MLP, rank: int, rng: np.random.Generator, *, alpha: float | None = None) -> LoRAMLP:
        """A copy of ``net`` with rank-``rank`` factors on every hidden layer; ``s = alpha / rank``
        (``alpha`` defaults to ``rank``, i.e. ``s = 1``)."""
        if net.activation != "relu" or net.batchnorm is not None or net.dropout:
            raise ValueError("LoRA is implemented here for plain ReLU MLPs")
        hidden = net.weights[:-1]
        A = [rng.standard_normal((w.shape[0], rank)) / np.sqrt(w.shape[0]) for w in hidden]
        B = [np.zeros((rank, w.shape[1])) for w in hidden]
        return cls(net.copy(), A, B, (rank if alpha is None else alpha) / rank)

    @property
    def rank(self) -> int:
        return self.A[0].shape[1]

    def params(self) -> list[np.ndarray]:
        return self.net.params() + [p for pair in zip(self.A, self.B, strict=True) for p in pair]

    def lora_params(self) -> list[np.ndarray]:
        return [p for pair in zip(self.A, self.B, strict=True) for p in pair]

    def lora_tuning(self) -> list[bool]:
        n_base = len(self.net.params())
        return [False] * (n_base - 2) + [True, True] + [True] * (2 * len(self.A))

    def deltas(self) -> list[np.ndarray]:
        """The weight updates ``s A_i B_i`` (each of rank at most ``r``)."""
        return [self.scale * a @ b for a, b in zip(self.A, self.B, strict=True)]

    def merged(self) -> nets.MLP:
        """A plain MLP with ``W_i + s A_i B_i``: the same function, no extra layers."""
        out = self.net.copy()
        for i, d in enumerate(self.deltas()):
            out.weights[i] = out.weights[i] + d
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        return nets.predict(self.merged(), X)

    def loss_grads(self, X: np.ndarray, y: np.ndarray,
                   trainable: Sequence[bool] | None = None) -> tuple[float, list[np.ndarray | None]]:
        """Cross-entropy and gradients w.r.t. ``params()`` (the frozen weights' are ``None``
        unless some frozen array is flagged trainable)."""
        merged = self.merged()
        out, cache = nets.forward(merged, X, train=True)
        loss, dout = nets.softmax_cross_entropy(out, y)
        g = nets.backward(merged, cache, dout)  # gradients w.r.t. the merged weights
        n_body = len(self.net.params()) - 2
        body = trainable is not None and any(trainable[:n_body])
        base: list[np.ndarray | None] = list(g) if body else [None] * n_body + list(g[-2:])
        factors = []
        for i, (a, b) in enumerate(zip(self.A, self.B, strict=True)):
            G = g[2 * i]
            factors += [self.scale * G @ b.T, self.scale * a.T @ G]
        return loss, base + factors

    def copy(self) -> LoRAMLP:
        return LoRAMLP(self.net.copy(), [a.copy() for a in self.A], [b.copy() for b in self.B], self.scale)


def export_lora_mlp(model: LoRAMLP, *, name: str = "lora_mlp") -> GraphProto:
    """The unmerged LoRA network: per hidden layer ``Gemm`` (frozen ``W``, ``b``) plus the side path
    ``MatMul(x, A) -> MatMul(., s B)`` joined by ``Add``, then ``Relu``; a final ``Gemm`` gives ``y``."""
    g = Graph()
    net = model.net
    a = "x"
    for i, (A, B) in enumerate(zip(model.A, model.B, strict=True)):
        z = g.op("Gemm", [a, g.const(f"W{i}", net.weights[i]), g.const(f"b{i}", net.biases[i])], f"frozen{i}")
        low = g.op("MatMul", [a, g.const(f"lora{i}_A", A)], f"lora{i}_down")
        up = g.op("MatMul", [low, g.const(f"lora{i}_sB", model.scale * B)], f"lora{i}_up")
        a = g.op("Relu", [g.op("Add", [z, up], f"layer{i}")], f"h{i}")
    n = len(model.A)
    g.op("Gemm", [a, g.const(f"W{n}", net.weights[-1]), g.const(f"b{n}", net.biases[-1])], "y")
    sizes = net.sizes
    return g.build(name, [tensor("x", ["N", sizes[0]])], [tensor("y", ["N", sizes[-1]])],
                   f"MLP {sizes} with rank-{model.rank} LoRA updates on the hidden layers (unmerged)")
