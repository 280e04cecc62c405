"""Fully connected ReLU nets with a normalization layer after every hidden ``Gemm``, many side by
side: none, layer norm, RMS norm or batch norm, chosen per net; forward, hand-written backward
pass, plain SGD, and ONNX export (``LayerNormalization``; RMS norm from elementary nodes).

A hidden layer is ``z = a @ W + b``, then ``u = gamma * norm(z) + beta``, then ``relu(u)``; the
output layer is a plain ``a @ W + b`` (logits). ``K`` nets are stacked on axis 0 (``W[i]`` is
``(K, fan_in, fan_out)``), so one batched product steps them all; ``kinds[k]`` says which
normalization net ``k`` uses:

* ``none``:  ``norm(z) = z``, and ``gamma``, ``beta`` stay at 1 and 0 (they get no gradient);
* ``layer``: over the units of each example, ``(z - mean(z)) / sqrt(var(z) + eps)``;
* ``rms``:   over the units of each example, ``z / sqrt(mean(z^2) + eps)`` (no centring);
* ``batch``: over the examples of the batch for each unit, in training; at inference it uses
  running averages (``running = MOMENTUM * running + (1 - MOMENTUM) * batch``, biased variance).

The two per-example kinds share one formula, ``xhat = (z - c * mean(z)) / rho`` with
``rho = sqrt(s * mean((z - c * mean(z))^2) + (1 - s) + s * eps)``: ``c = s = 1`` is layer norm,
``c = 0, s = 1`` RMS norm, ``c = s = 0`` none. Its gradient is
``dz = (g - c * mean(g) - s * xhat * mean(g * xhat)) / rho`` for ``g = dLoss/dxhat``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from onnx import GraphProto

from demolib.dense import init_dense
from demolib.graph import Graph, tensor

KINDS = ("none", "layer", "rms", "batch")
EPS = 1e-5
MOMENTUM = 0.9


@dataclass
class NormNets:
    """``K`` stacked nets; ``kinds[k]`` is net ``k``'s normalization."""

    weights: list[np.ndarray]  # (K, fan_in, fan_out)
    biases: list[np.ndarray]  # (K, 1, fan_out)
    gammas: list[np.ndarray]  # (K, 1, width), one per hidden layer
    betas: list[np.ndarray]
    kinds: tuple[str, ...]
    running_mean: list[np.ndarray] = field(default_factory=list)  # (K, 1, width), batch norm only
    running_var: list[np.ndarray] = field(default_factory=list)

    @property
    def n_hidden(self) -> int:
        return len(self.weights) - 1

    def params(self) -> list[np.ndarray]:
        """Trainable arrays in a fixed order: W0, b0, gamma0, beta0, W1, ..., W_last, b_last."""
        out: list[np.ndarray] = []
        for i in range(self.n_hidden):
            out += [self.weights[i], self.biases[i], self.gammas[i], self.betas[i]]
        return out + [self.weights[-1], self.biases[-1]]

    def flags(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per net, shaped to broadcast over ``(K, n, width)``: centre and scale flags of the
        per-example formula (both 0 for batch norm, whose rows are then overwritten), and the
        indices of the batch-norm nets."""
        kinds = np.array(self.kinds)
        shape = (-1, 1, 1)
        centre = (kinds == "layer").astype(float).reshape(shape)
        scale = ((kinds == "layer") | (kinds == "rms")).astype(float).reshape(shape)
        return centre, scale, np.flatnonzero(kinds == "batch")

    def copy(self) -> NormNets:
        cp = [[a.copy() for a in arrays] for arrays in
              (self.weights, self.biases, self.gammas, self.betas, self.running_mean, self.running_var)]
        return replace(self, weights=cp[0], biases=cp[1], gammas=cp[2], betas=cp[3],
                       running_mean=cp[4], running_var=cp[5])

    def member(self, k: int) -> NormNets:
        """Net ``k`` alone (a stack of one)."""
        pick = [[a[k : k + 1].copy() for a in arrays] for arrays in
                (self.weights, self.biases, self.gammas, self.betas, self.running_mean, self.running_var)]
        return NormNets(*pick[:4], (self.kinds[k],), pick[4], pick[5])


def init_normnets(rng: np.random.Generator, sizes: Sequence[int], kinds: Sequence[str],
                  init: NormNets | None = None) -> NormNets:
    """He-initialised ReLU nets, one per entry of ``kinds``; ``gamma = 1``, ``beta = 0``.

    With ``init`` (a stack of ``S`` nets) the weights are copied from it instead: net ``k`` gets
    the weights of ``init``'s net ``k % S``, so several kinds can start from the same weights."""
    K = len(kinds)
    if any(k not in KINDS for k in kinds):
        raise ValueError(f"kinds must be among {KINDS}, got {kinds}")
    if init is None:
        weights, biases = init_dense(rng, sizes, [2.0] * (len(sizes) - 1), members=K)
    else:
        idx = np.arange(K) % len(init.kinds)
        weights, biases = [w[idx] for w in init.weights], [b[idx] for b in init.biases]
    widths = sizes[1:-1]
    return NormNets(weights, biases, [np.ones((K, 1, w)) for w in widths], [np.zeros((K, 1, w)) for w in widths],
                    tuple(kinds), [np.zeros((K, 1, w)) for w in widths], [np.ones((K, 1, w)) for w in widths])


@dataclass
class Cache:
    inputs: list[np.ndarray] = field(default_factory=list)  # input to each Gemm
    xhat: list[np.ndarray] = field(default_factory=list)
    rho: list[np.ndarray] = field(default_factory=list)  # per-example divisor
    inv_std: list[np.ndarray | None] = field(default_factory=list)  # batch-norm nets' divisor (per unit)
    relu_on: list[np.ndarray] = field(default_factory=list)
    batch_stats: list[tuple[np.ndarray | None, np.ndarray | None]] = field(default_factory=list)


def forward(nets: NormNets, X: np.ndarray, *, train: bool = False) -> tuple[np.ndarray, Cache]:
    """Logits ``(K, n, classes)`` for inputs ``X (n, d)``. ``train=True``: batch norm uses the
    batch's statistics (else its running averages); the other kinds never look at the batch."""
    centre, scale, bn = nets.flags()
    cache = Cache()
    a = np.broadcast_to(X, (len(nets.kinds), *X.shape))
    for i in range(nets.n_hidden):
        cache.inputs.append(a)
        z = a @ nets.weights[i] + nets.biases[i]
        u = z - centre * z.mean(axis=2, keepdims=True)
        rho = np.sqrt(scale * np.mean(u * u, axis=2, keepdims=True) + (1.0 - scale) + scale * EPS)
        xhat = u / rho
        mean = var = inv_std = None
        if bn.size:  # the batch-norm nets only (indices bn), over the examples of the batch
            zb = z[bn]
            if train:
                mean, var = zb.mean(axis=1, keepdims=True), zb.var(axis=1, keepdims=True)
            else:
                mean, var = nets.running_mean[i][bn], nets.running_var[i][bn]
            inv_std = 1.0 / np.sqrt(var + EPS)
            xhat[bn] = (zb - mean) * inv_std
        h = xhat * nets.gammas[i] + nets.betas[i]
        on = h > 0
        a = h * on
        cache.xhat.append(xhat)
        cache.rho.append(rho)
        cache.inv_std.append(inv_std)
        cache.relu_on.append(on)
        cache.batch_stats.append((mean, var) if train else (None, None))
    cache.inputs.append(a)
    return a @ nets.weights[-1] + nets.biases[-1], cache


def backward(nets: NormNets, cache: Cache, dout: np.ndarray) -> list[np.ndarray]:
    """Gradients w.r.t. ``nets.params()`` for a training-mode forward pass and ``dout = dLoss/dLogits``."""
    centre, scale, bn = nets.flags()
    trainable = (np.array(nets.kinds) != "none").astype(float).reshape(-1, 1, 1)
    a = cache.inputs[-1]
    grads = [a.transpose(0, 2, 1) @ dout, dout.sum(axis=1, keepdims=True)]
    da = dout @ nets.weights[-1].transpose(0, 2, 1)
    for i in reversed(range(nets.n_hidden)):
        dh = da * cache.relu_on[i]
        xhat = cache.xhat[i]
        dgamma = (dh * xhat).sum(axis=1, keepdims=True) * trainable
        dbeta = dh.sum(axis=1, keepdims=True) * trainable
        g = dh * nets.gammas[i]
        dz = (g - centre * g.mean(axis=2, keepdims=True)
              - scale * xhat * (g * xhat).mean(axis=2, keepdims=True)) / cache.rho[i]
        if bn.size:
            gb, xb = g[bn], xhat[bn]
            dz[bn] = cache.inv_std[i] * (gb - gb.mean(axis=1, keepdims=True)
                                         - xb * (gb * xb).mean(axis=1, keepdims=True))
        x_in = cache.inputs[i]
        grads = [x_in.transpose(0, 2, 1) @ dz, dz.sum(axis=1, keepdims=True), dgamma, dbeta, *grads]
        if i > 0:
            da = dz @ nets.weights[i].transpose(0, 2, 1)
    return grads


def update_running_stats(nets: NormNets, cache: Cache) -> None:
    """Fold a training-mode forward's batch statistics into the batch-norm nets' running averages."""
    bn = nets.flags()[2]
    for i, (mean, var) in enumerate(cache.batch_stats):
        if mean is None or var is None:
            continue
        nets.running_mean[i][bn] = MOMENTUM * nets.running_mean[i][bn] + (1.0 - MOMENTUM) * mean
        nets.running_var[i][bn] = MOMENTUM * nets.running_var[i][bn] + (1.0 - MOMENTUM) * var


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each net's mean softmax cross-entropy ``(K,)`` and its gradient w.r.t. the logits."""
    z = logits - logits.max(axis=2, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
    n = logits.shape[1]
    rows = np.arange(n)
    grad = np.exp(logp)
    grad[:, rows, labels] -= 1.0
    return -logp[:, rows, labels].mean(axis=1), grad / n


def sgd_step(nets: NormNets, X: np.ndarray, y: np.ndarray, lr: float | np.ndarray) -> np.ndarray:
    """One training-mode step of plain SGD on the batch ``(X, y)``; returns each net's batch loss."""
    logits, cache = forward(nets, X, train=True)
    loss, dout = cross_entropy(logits, y)
    rate = np.reshape(lr, (-1, 1, 1)) if np.ndim(lr) else lr
    for p, g in zip(nets.params(), backward(nets, cache, dout), strict=True):
        p -= rate * g
    update_running_stats(nets, cache)
    return loss


def export_normnet(nets: NormNets, k: int, *, name: str = "normnet") -> GraphProto:
    """Net ``k`` as ``x -> [Gemm -> norm -> Relu] * n -> Gemm -> y``.

    ``layer`` is one ``LayerNormalization`` node (axis -1, scale ``gamma``, bias ``beta``);
    ``rms`` (no such node before opset 23) is ``Mul -> ReduceMean -> Add(eps) -> Sqrt -> Div``
    followed by ``Mul(gamma) -> Add(beta)``; ``batch`` is a ``BatchNormalization`` node with the
    running averages; ``none`` has no node."""
    kind = nets.kinds[k]
    g = Graph()
    a = "x"
    for i in range(nets.n_hidden):
        z = g.op("Gemm", [a, g.const(f"W{i}", nets.weights[i][k]), g.const(f"b{i}", nets.biases[i][k, 0])], f"gemm{i}")
        gamma, beta = nets.gammas[i][k, 0], nets.betas[i][k, 0]
        if kind == "layer":
            z = g.op("LayerNormalization", [z, g.const(f"gamma{i}", gamma), g.const(f"beta{i}", beta)],
                     f"layernorm{i}", axis=-1, epsilon=EPS)
        elif kind == "rms":
            sq = g.op("Mul", [z, z], f"square{i}")
            ms = g.op("ReduceMean", [sq], f"mean_square{i}", axes=[-1], keepdims=1)
            rms = g.op("Sqrt", [g.op("Add", [ms, g.const(f"eps{i}", np.float32(EPS))], f"plus_eps{i}")], f"rms{i}")
            z = g.op("Div", [z, rms], f"rmsnorm{i}")
            z = g.op("Add", [g.op("Mul", [z, g.const(f"gamma{i}", gamma)], f"scaled{i}"),
                             g.const(f"beta{i}", beta)], f"shifted{i}")
        elif kind == "batch":
            z = g.op("BatchNormalization", [z, g.const(f"gamma{i}", gamma), g.const(f"beta{i}", beta),
                                            g.const(f"mean{i}", nets.running_mean[i][k, 0]),
                                            g.const(f"var{i}", nets.running_var[i][k, 0])],
                     f"batchnorm{i}", epsilon=EPS)
        a = g.op("Relu", [z], f"relu{i}")
    g.op("Gemm", [a, g.const("W_out", nets.weights[-1][k]), g.const("b_out", nets.biases[-1][k, 0])], "y")
    d_in, d_out = nets.weights[0].shape[1], nets.weights[-1].shape[2]
    return g.build(name, [tensor("x", ["N", d_in])], [tensor("y", ["N", d_out])], f"ReLU MLP with {kind} norm")
