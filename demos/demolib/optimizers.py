"""Every optimiser of demolib, in two flavours that run the same algorithms.

* **Parameter lists** (``SGD``, ``Adam``, ``AdamW``; used through ``demolib.nets``): one model's
  arrays, updated in place by ``step(params, grads, decay_mask)``, with coupled L2 (``l2``) and
  decoupled weight decay (``weight_decay``, PyTorch's AdamW convention) on the arrays
  ``decay_mask`` marks. State is kept as flat vectors.
* **Rows** (``GD``, ``Momentum``, ``RowAdam``; used through ``demolib.optim``, where ``RowAdam``
  is ``optim.Adam``): ``K`` runs side by side as the rows of a ``(K, d)`` matrix,
  ``W_new = step(W, G, t)``, with a learning rate per run and optional bias correction.

``Momentum`` is the heavy-ball form of ``SGD(momentum=...)``; the two Adams agree to rounding
(see ``RowAdam`` for why they are not one function).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

#: A scalar learning rate, or one per run (``(K,)``).
LearningRate = float | np.ndarray


# --------------------------------------------------------------------------- parameter lists


def _flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([a.ravel() for a in arrays])


def _write_back(params: Sequence[np.ndarray], flat: np.ndarray) -> None:
    """Copy consecutive slices of ``flat`` into ``params`` (in place)."""
    i = 0
    for p in params:
        p[...] = flat[i : i + p.size].reshape(p.shape)
        i += p.size


def _decay_vector(params: Sequence[np.ndarray], decay_mask: Sequence[bool] | None) -> np.ndarray:
    mask = [True] * len(params) if decay_mask is None else decay_mask
    return _flat([np.full(p.shape, float(m)) for p, m in zip(params, mask, strict=True)])


class _FlatStep:
    """The step SGD and Adam share, on all parameters as one flat vector.

    ``g += l2 * w`` (coupled L2), then the optimiser's own ``_delta(g)``, then decoupled decay
    ``w *= 1 - lr * weight_decay`` and ``w -= delta``. Only the arrays marked by ``decay_mask``
    (weight matrices, see ``MLP.decay_mask``) get L2 and decay.
    """

    lr: float
    l2: float
    weight_decay: float
    _decay: np.ndarray | None

    def step(
        self,
        params: Sequence[np.ndarray],
        grads: Sequence[np.ndarray],
        decay_mask: Sequence[bool] | None = None,
    ) -> None:
        """Update ``params`` in place (``decay_mask`` marks the arrays L2/decay applies to)."""
        if self._decay is None:
            self._decay = _decay_vector(params, decay_mask)
        w = _flat(params)
        g = _flat(grads)
        if self.l2:
            g += self.l2 * self._decay * w
        delta = self._delta(g)
        if self.weight_decay:
            w *= 1.0 - self.lr * self.weight_decay * self._decay
        w -= delta
        _write_back(params, w)

    def _delta(self, g: np.ndarray) -> np.ndarray:
        """What to subtract from the flat weights for gradient ``g`` (updates the state)."""
        raise NotImplementedError


@dataclass
class SGD(_FlatStep):
    """Stochastic gradient descent with optional momentum, coupled L2 and decoupled decay.

    Per step: ``g += l2 * w`` (coupled), momentum ``buf = momentum * buf + g``, then
    ``w = w * (1 - lr * weight_decay) - lr * buf`` (decoupled). State is kept as flat vectors.
    """

    lr: float = 0.1
    momentum: float = 0.0
    l2: float = 0.0
    weight_decay: float = 0.0
    _decay: np.ndarray | None = field(default=None, repr=False)
    _buf: np.ndarray | None = field(default=None, repr=False)

    def _delta(self, g: np.ndarray) -> np.ndarray:
        if self.momentum:
            self._buf = g if self._buf is None else self.momentum * self._buf + g
            g = self._buf
        return self.lr * g


@dataclass
class Adam(_FlatStep):
    """Adam; ``l2`` = coupled L2 (added to the gradient), ``weight_decay`` = decoupled (AdamW).

    Decoupled decay follows PyTorch: ``w *= 1 - lr * weight_decay`` before the Adam step.
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    l2: float = 0.0
    weight_decay: float = 0.0
    t: int = 0
    _decay: np.ndarray | None = field(default=None, repr=False)
    _m: np.ndarray | None = field(default=None, repr=False)
    _v: np.ndarray | None = field(default=None, repr=False)

    def _delta(self, g: np.ndarray) -> np.ndarray:
        if self._m is None or self._v is None:
            self._m = np.zeros_like(self._decay)
            self._v = np.zeros_like(self._decay)
        self.t += 1
        m, v = self._m, self._v
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        step = self.lr / (1.0 - self.beta1**self.t)
        return step * m / (np.sqrt(v / (1.0 - self.beta2**self.t)) + self.eps)


def AdamW(lr: float = 1e-3, weight_decay: float = 1e-2, **kwargs: float) -> Adam:  # noqa: N802
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch convention."""
    return Adam(lr=lr, weight_decay=weight_decay, **kwargs)


#: An optimiser of parameter lists (``step(params, grads, decay_mask)``).
Optimizer = SGD | Adam


# --------------------------------------------------------------------------- rows of (K, d) matrices


def _per_run(lr: LearningRate) -> np.ndarray:
    """A learning rate shaped to broadcast over ``(K, d)``: scalars stay, ``(K,)`` -> ``(K, 1)``."""
    arr = np.asarray(lr, float)
    return arr[:, None] if arr.ndim == 1 else arr


@dataclass
class GD:
    """(Stochastic) gradient descent ``w -= lr_t * g``, with ``lr_t = lr * schedule(t)``."""

    lr: LearningRate
    schedule: Callable[[int], float] | None = None

    def step(self, W: np.ndarray, G: np.ndarray, t: int) -> np.ndarray:
        lr = _per_run(self.lr) * (1.0 if self.schedule is None else self.schedule(t))
        return W - lr * G


@dataclass
class Momentum:
    """Heavy-ball momentum: ``buf = beta * buf + g``, ``w -= lr * buf`` (buffer starts at ``g``)."""

    lr: LearningRate
    beta: float = 0.9
    _buf: np.ndarray | None = field(default=None, repr=False)

    def step(self, W: np.ndarray, G: np.ndarray, t: int) -> np.ndarray:
        self._buf = G.copy() if self._buf is None else self.beta * self._buf + G
        return W - _per_run(self.lr) * self._buf


@dataclass
class RowAdam:
    """Adam (Kingma & Ba) on rows of parameters; ``bias_correction=False`` drops the division of
    ``m`` and ``v`` by ``1 - beta^t`` (a ``(K,)`` bool array sets it per row). ``last_step`` keeps
    the most recent update ``w_new - w``.

    The same algorithm as ``Adam`` above (equal to rounding), but not the same code: the
    float operations run in a different order (``v`` gets ``((1 - beta2) g) g``, the step is
    ``-lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)`` with the corrections as
    multiplied reciprocals), and sharing ``Adam``'s order changes the last bits of the adam
    demo's trajectories, so its figures. Keep the two orders as they are."""

    lr: LearningRate
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    bias_correction: bool | np.ndarray = True
    _m: np.ndarray | None = field(default=None, repr=False)
    _v: np.ndarray | None = field(default=None, repr=False)
    last_step: np.ndarray | None = field(default=None, repr=False)

    def step(self, W: np.ndarray, G: np.ndarray, t: int) -> np.ndarray:
        if self._m is None or self._v is None:
            self._m = np.zeros_like(G)
            self._v = np.zeros_like(G)
        self._m = self.beta1 * self._m + (1.0 - self.beta1) * G
        self._v = self.beta2 * self._v + (1.0 - self.beta2) * G * G
        correct = np.asarray(self.bias_correction, bool)
        c1 = np.where(correct, 1.0 / (1.0 - self.beta1**t), 1.0)
        c2 = np.where(correct, 1.0 / (1.0 - self.beta2**t), 1.0)
        if correct.ndim == 1:
            c1, c2 = c1[:, None], c2[:, None]
        m, v = self._m * c1, self._v * c2
        self.last_step = -_per_run(self.lr) * m / (np.sqrt(v) + self.eps)
        return W + self.last_step


#: An optimiser of rows (``step(W, G, t)``).
RowOptimizer = GD | Momentum | RowAdam
