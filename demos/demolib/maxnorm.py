"""ReLU nets with inverted dropout, many side by side, trained by SGD with momentum (a learning rate
per net) and an optional max-norm constraint: after every step, each unit's incoming weight vector
is scaled back onto the ball of radius ``c`` if it left it.

``K`` nets are stacked on axis 0: ``weights[i]`` is ``(K, fan_in, fan_out)`` (a layer is
``a @ W + b``, an ONNX ``Gemm``), ``biases[i]`` is ``(K, 1, fan_out)``. Unit ``j`` of layer ``i``
in net ``k`` has the incoming weight vector ``weights[i][k, :, j]``; its bias is not constrained.
Hidden layers are ``relu`` followed by dropout; the output layer gives logits. ``to_mlp`` turns
one net into a ``demolib.nets.MLP``, so ``onnx_export.export_mlp`` exports it (with ``Dropout``
nodes, which are the identity at inference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from demolib.dense import init_dense
from demolib.nets import MLP


@dataclass
class DropoutNets:
    """``K`` stacked ReLU nets with dropout rate ``p`` on every hidden layer."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    p: float

    @property
    def members(self) -> int:
        return self.weights[0].shape[0]

    def params(self) -> list[np.ndarray]:
        """W0, b0, W1, b1, ...; updating them in place updates the nets."""
        return [a for wb in zip(self.weights, self.biases, strict=True) for a in wb]

    def tile(self, times: int) -> DropoutNets:
        """``times`` copies of every net, one block after the other."""
        return DropoutNets([np.concatenate([w] * times) for w in self.weights],
                           [np.concatenate([b] * times) for b in self.biases], self.p)


def init_dropout_nets(rng: np.random.Generator, sizes: Sequence[int], members: int, p: float) -> DropoutNets:
    """He-initialised weights ``N(0, 2 / fan_in)`` and zero biases for ``members`` nets."""
    weights, biases = init_dense(rng, sizes, [2.0] * (len(sizes) - 1), members=members)
    return DropoutNets(weights, biases, p)


def dropout_masks(rng: np.random.Generator, nets: DropoutNets, shape: tuple[int, int]) -> list[np.ndarray]:
    """One inverted-dropout mask per hidden layer, ``(K, n, width)``: 0 with probability ``p``,
    else ``1 / (1 - p)``."""
    K, n = shape
    return [(rng.random((K, n, w.shape[-1])) >= nets.p) / (1.0 - nets.p) for w in nets.weights[:-1]]


@dataclass
class Cache:
    inputs: list[np.ndarray] = field(default_factory=list)  # input to each layer (after dropout)
    on: list[np.ndarray] = field(default_factory=list)  # relu active, times the dropout mask


def forward(nets: DropoutNets, X: np.ndarray, masks: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, Cache]:
    """Logits ``(K, n, classes)``; with ``masks`` (training) the hidden units are dropped."""
    cache = Cache()
    a = np.broadcast_to(X, (nets.members, *X.shape))
    for i in range(len(nets.weights) - 1):
        cache.inputs.append(a)
        z = a @ nets.weights[i] + nets.biases[i]
        gate = (z > 0) if masks is None else (z > 0) * masks[i]
        a = z * gate
        cache.on.append(gate)
    cache.inputs.append(a)
    return a @ nets.weights[-1] + nets.biases[-1], cache


def backward(nets: DropoutNets, cache: Cache, dout: np.ndarray) -> list[np.ndarray]:
    """Gradients w.r.t. ``nets.params()`` given ``dout = dLoss/dLogits``."""
    grads: list[np.ndarray] = []
    dz = dout
    for i in reversed(range(len(nets.weights))):
        grads = [cache.inputs[i].transpose(0, 2, 1) @ dz, dz.sum(axis=1, keepdims=True), *grads]
        if i > 0:
            dz = (dz @ nets.weights[i].transpose(0, 2, 1)) * cache.on[i - 1]
    return grads


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each net's mean softmax cross-entropy ``(K,)`` and its gradient w.r.t. the logits."""
    z = logits - logits.max(axis=2, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
    rows = np.arange(logits.shape[1])
    grad = np.exp(logp)
    grad[:, rows, labels] -= 1.0
    return -logp[:, rows, labels].mean(axis=1), grad / logits.shape[1]


@dataclass
class Momentum:
    """Heavy-ball SGD with one learning rate per net: ``buf = beta * buf + g``, ``w -= lr * buf``."""

    lr: np.ndarray  # (K,)
    beta: float = 0.9
    bufs: list[np.ndarray] | None = None

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        if self.bufs is None:
            self.bufs = [np.zeros_like(p) for p in params]
        rate = self.lr.reshape(-1, 1, 1)
        for p, g, buf in zip(params, grads, self.bufs, strict=True):
            buf *= self.beta
            buf += g
            p -= rate * buf


def unit_norms(W: np.ndarray) -> np.ndarray:
    """Norm of every unit's incoming weight vector: ``(K, fan_out)``."""
    return np.sqrt(np.sum(W * W, axis=1))


def max_norm_project(nets: DropoutNets, c: np.ndarray) -> None:
    """Scale every unit's incoming weight vector with norm above ``c`` (one value per net, ``inf``
    for no constraint) back to norm ``c``; all layers, output included. In place."""
    cap = np.reshape(c, (-1, 1))
    for W in nets.weights:
        norms = unit_norms(W)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms > cap, cap / norms, 1.0)
        W *= scale[:, None, :]


def to_mlp(nets: DropoutNets, k: int) -> MLP:
    """Net ``k`` as a ``demolib.nets.MLP`` (ReLU, dropout ``p``) for ``onnx_export.export_mlp``."""
    return MLP([w[k].copy() for w in nets.weights], [b[k, 0].copy() for b in nets.biases], "relu", nets.p)
