"""Residual bottleneck adapters on a frozen ``nets.MLP`` (``Adapter``, ``AdapterMLP``) and
``export_adapter_mlp``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from onnx import GraphProto

from demolib import nets
from demolib.graph import Graph, tensor

# --------------------------------------------------------------------------- adapters


@dataclass
class Adapter:
    """A residual bottleneck ``h + relu(h @ Wd + bd) @ Wu + bu`` (``width -> rank -> width``)."""

    Wd: np.ndarray  # (width, rank) down-projection
    bd: np.ndarray  # (rank,)
    Wu: np.ndarray  # (rank, width) up-projection
    bu: np.ndarray  # (width,)

    @classmethod
    def near_identity(cls, rng: np.random.Generator, width: int, rank: int, *,
                      scale: float = 0.01) -> Adapter:
        """A small random down-projection (standard deviation ``scale``) and a zero
        up-projection: the adapter starts as exactly the identity and its bottleneck starts small."""
        return cls(rng.standard_normal((width, rank)) * scale, np.zeros(rank),
                   np.zeros((rank, width)), np.zeros(width))

    def params(self) -> list[np.ndarray]:
        return [self.Wd, self.bd, self.Wu, self.bu]

    def copy(self) -> Adapter:
        return Adapter(*(p.copy() for p in self.params()))


@dataclass
class AdapterMLP:
    """A ReLU ``nets.MLP`` with an ``Adapter`` after every hidden layer.

    ``params()`` lists the MLP's arrays first (``W0, b0, ..., W_out, b_out``), then each adapter's
    ``Wd, bd, Wu, bu``; ``adapter_tuning()`` gives the ``trainable`` flags for training only the
    adapters and the output layer.
    """

    net: nets.MLP
    adapters: list[Adapter]

    @classmethod
    def wrap(cls, net: nets.MLP, rank: int, rng: np.random.Generator, *,
             scale: float = 0.01) -> AdapterMLP:
        """A copy of ``net`` with a near-identity adapter of bottleneck ``rank`` per hidden layer."""
        if net.activation != "relu" or net.batchnorm is not None or net.dropout:
            raise ValueError("adapters are implemented for plain ReLU MLPs")
        return cls(net.copy(), [Adapter.near_identity(rng, w, rank, scale=scale)
                                for w in net.sizes[1:-1]])

    def params(self) -> list[np.ndarray]:
        return self.net.params() + [p for a in self.adapters for p in a.params()]

    def adapter_tuning(self) -> list[bool]:
        n_base = len(self.net.params())
        return [False] * (n_base - 2) + [True, True] + [True] * (4 * len(self.adapters))

    def adapter_params(self) -> list[np.ndarray]:
        return [p for a in self.adapters for p in a.params()]

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, ...]]]:
        """Logits and, per hidden layer, ``(layer input, h, bottleneck u)`` for ``backward``."""
        cache = []
        a = X
        for i, ad in enumerate(self.adapters):
            h = np.maximum(a @ self.net.weights[i] + self.net.biases[i], 0.0)
            u = np.maximum(h @ ad.Wd + ad.bd, 0.0)
            cache.append((a, h, u))
            a = h + u @ ad.Wu + ad.bu
        cache.append((a,))
        return a @ self.net.weights[-1] + self.net.biases[-1], cache

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)[0]

    def backward(self, cache: list[tuple[np.ndarray, ...]], dout: np.ndarray,
                 backbone: bool = True) -> list[np.ndarray | None]:
        """Gradients w.r.t. ``params()`` given ``dout = dLoss/dLogits``. With ``backbone=False``
        the hidden layers' weight and bias gradients are skipped (``None``): adapter tuning
        does not need them."""
        a_last = cache[-1][0]
        net_grads: list[list[np.ndarray | None]] = [[None, None] for _ in self.net.weights]
        ad_grads: list[list[np.ndarray]] = [[] for _ in self.adapters]
        net_grads[-1] = [a_last.T @ dout, dout.sum(axis=0)]
        da = dout @ self.net.weights[-1].T
        for i in reversed(range(len(self.adapters))):
            ad = self.adapters[i]
            a_in, h, u = cache[i]
            du = (da @ ad.Wu.T) * (u > 0.0)
            ad_grads[i] = [h.T @ du, du.sum(axis=0), u.T @ da, da.sum(axis=0)]
            dz = (da + du @ ad.Wd.T) * (h > 0.0)
            if backbone:
                net_grads[i] = [a_in.T @ dz, dz.sum(axis=0)]
            if i > 0:
                da = dz @ self.net.weights[i].T
        return [g for pair in net_grads for g in pair] + [g for quad in ad_grads for g in quad]

    def loss_grads(self, X: np.ndarray, y: np.ndarray,
                   trainable: Sequence[bool] | None = None) -> tuple[float, list[np.ndarray | None]]:
        """Cross-entropy and its gradients (backbone ones only if some backbone array trains)."""
        out, cache = self.forward(X)
        loss, dout = nets.softmax_cross_entropy(out, y)
        n_body = len(self.net.params()) - 2
        backbone = trainable is None or any(trainable[:n_body])
        return loss, self.backward(cache, dout, backbone=backbone)

    def copy(self) -> AdapterMLP:
        return AdapterMLP(self.net.copy(), [a.copy() for a in self.adapters])


# --------------------------------------------------------------------------- ONNX export


def export_adapter_mlp(model: AdapterMLP, *, name: str = "adapter_mlp") -> GraphProto:
    """The adapted network: per hidden layer ``Gemm -> Relu`` (frozen), then the adapter
    ``Gemm (down) -> Relu -> Gemm (up) -> Add`` (residual); a final ``Gemm`` gives logits ``y``."""
    g = Graph()
    net = model.net
    a = "x"
    for i, ad in enumerate(model.adapters):
        z = g.op("Gemm", [a, g.const(f"W{i}", net.weights[i]), g.const(f"b{i}", net.biases[i])],
                 f"layer{i}")
        h = g.op("Relu", [z], f"h{i}")
        d = g.op("Gemm", [h, g.const(f"adapter{i}_Wd", ad.Wd), g.const(f"adapter{i}_bd", ad.bd)],
                 f"adapter{i}_down")
        u = g.op("Relu", [d], f"adapter{i}_bottleneck")
        r = g.op("Gemm", [u, g.const(f"adapter{i}_Wu", ad.Wu), g.const(f"adapter{i}_bu", ad.bu)],
                 f"adapter{i}_up")
        a = g.op("Add", [h, r], f"adapted{i}")
    n = len(model.adapters)
    g.op("Gemm", [a, g.const(f"W{n}", net.weights[-1]), g.const(f"b{n}", net.biases[-1])], "y")
    sizes = net.sizes
    rank = model.adapters[0].Wd.shape[1] if model.adapters else 0
    return g.build(name, [tensor("x", ["N", sizes[0]])], [tensor("y", ["N", sizes[-1]])],
                   f"MLP {sizes} with bottleneck-{rank} residual adapters")
