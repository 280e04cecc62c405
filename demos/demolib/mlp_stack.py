"""``K`` fully connected nets of one shape as the rows of a ``(K, P)`` parameter matrix, so the
row-wise optimisers of ``demolib.optimizers`` train them all at once (re-exported as
``optim.MLPStack``).

The forward and backward passes are vectorised over ``K`` with their own float operations
(``einsum`` for the shared input), so they are not ``nets.forward`` / ``nets.backward`` run ``K``
times; ``to_net`` turns a row back into a ``nets.MLP``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from demolib import nets
from demolib.activations import activate, output_derivative


@dataclass(frozen=True)
class MLPStack:
    """``K`` fully connected nets of the same shape trained side by side, each stored as one row
    of a ``(K, P)`` parameter matrix (so the optimisers above run them all at once, e.g. one per
    learning rate). A row is ``W0, b0, W1, b1, ...`` flattened in the order of
    ``demolib.nets.MLP.params()``; ``to_net`` turns a row back into an ``MLP`` for export.
    Hidden layers use ``activation``, the output layer is linear. Losses match ``nets.mse`` and
    ``nets.softmax_cross_entropy``; the backward pass is written out by hand.
    """

    sizes: tuple[int, ...]
    activation: Literal["tanh", "relu"] = "tanh"

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        out: list[tuple[int, ...]] = []
        for m, k in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            out += [(m, k), (k,)]
        return out

    @property
    def n_params(self) -> int:
        return sum(int(np.prod(s)) for s in self.shapes)

    def flatten(self, net: nets.MLP) -> np.ndarray:
        """The parameters of ``net`` as one row (``(P,)``)."""
        if tuple(net.sizes) != tuple(self.sizes) or net.activation != self.activation:
            raise ValueError(f"net {net.sizes}/{net.activation} does not fit {self}")
        if net.batchnorm is not None or net.dropout:
            raise ValueError("MLPStack has no batch normalization or dropout")
        return np.concatenate([p.ravel() for p in net.params()])

    def unpack(self, W: np.ndarray) -> list[np.ndarray]:
        """Views of the rows of ``W`` (``(K, P)``) as ``[W0 (K, m, k), b0 (K, k), ...]``."""
        out, i = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            out.append(W[:, i : i + size].reshape((W.shape[0],) + shape))
            i += size
        return out

    def to_net(self, row: np.ndarray) -> nets.MLP:
        """Row ``row`` (``(P,)``) as a ``demolib.nets.MLP`` (copies)."""
        arrays = [a[0].copy() for a in self.unpack(np.asarray(row, float)[None, :])]
        return nets.MLP(arrays[0::2], arrays[1::2], self.activation)

    def _forward(self, W: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        arrays = self.unpack(W)
        acts = [X]  # the input of each layer; X is shared by all rows
        a: np.ndarray = X
        n_layers = len(arrays) // 2
        for i in range(n_layers):
            z = a @ arrays[2 * i] + arrays[2 * i + 1][:, None, :]
            if i == n_layers - 1:
                return z, acts
            a = activate(self.activation, z)
            acts.append(a)
        raise AssertionError("unreachable")

    def predict(self, W: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Outputs of every row's net on ``X`` (``(n, d)``): shape ``(K, n, out)``."""
        return self._forward(W, X)[0]

    def loss_grad(self, W: np.ndarray, X: np.ndarray, y: np.ndarray,
                  loss: Literal["mse", "softmax"] = "mse") -> tuple[np.ndarray, np.ndarray]:
        """Loss of every row on ``(X, y)`` (``(K,)``) and its gradient (``(K, P)``).

        ``mse``: mean of ``(out - y)^2`` over all outputs (``y`` reshaped to ``(n, out)``);
        ``softmax``: mean cross-entropy of integer labels ``y`` under ``softmax(out)``.
        """
        out, acts = self._forward(W, X)
        n = X.shape[0]
        if loss == "mse":
            r = out - np.asarray(y, float).reshape(out.shape[1:])
            values = np.mean(r * r, axis=(1, 2))
            dz = (2.0 / (r.shape[1] * r.shape[2])) * r
        elif loss == "softmax":
            z = out - out.max(axis=2, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
            rows = np.arange(n)
            values = -logp[:, rows, y].mean(axis=1)
            dz = np.exp(logp)
            dz[:, rows, y] -= 1.0
            dz /= n
        else:
            raise ValueError(f"unknown loss {loss!r}")
        arrays = self.unpack(W)
        grads: list[np.ndarray] = []
        for i in reversed(range(len(arrays) // 2)):
            a = acts[i]
            dW = np.einsum("nm,knj->kmj", a, dz) if a.ndim == 2 else np.swapaxes(a, 1, 2) @ dz
            grads = [dW.reshape(W.shape[0], -1), dz.sum(axis=1), *grads]
            if i > 0:
                da = dz @ np.swapaxes(arrays[2 * i], 1, 2)
                dz = da * output_derivative(self.activation, a)
        return values, np.concatenate(grads, axis=1)
