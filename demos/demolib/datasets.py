"""Seeded synthetic datasets for demos.

Every function takes a ``numpy.random.Generator`` and draws all randomness from it, so a demo
that passes ``demo.rng`` gets the same data on every run. Inputs are ``(n, d)`` float64 arrays;
regression targets are ``(n,)`` floats, class labels ``(n,)`` int64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def smooth_function(x: np.ndarray) -> np.ndarray:
    """A smooth, wiggly target on [-1, 1] (used as the default 1-D regression truth)."""
    return np.sin(3.0 * x) + 0.5 * np.cos(7.0 * x) * x


def regression_1d(
    rng: np.random.Generator,
    n: int,
    *,
    noise: float = 0.2,
    fn: Callable[[np.ndarray], np.ndarray] = smooth_function,
    low: float = -1.0,
    high: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy samples ``y = fn(x) + noise * N(0, 1)`` with ``x ~ U(low, high)``.

    Returns ``X`` of shape ``(n, 1)`` (sorted by x, which makes line plots easy) and ``y``.
    """
    x = np.sort(rng.uniform(low, high, size=n))
    y = fn(x) + noise * rng.standard_normal(n)
    return x[:, None], y


def sparse_linear(
    rng: np.random.Generator,
    n: int,
    d: int,
    *,
    k: int = 3,
    noise: float = 0.5,
    scale: float = 2.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear regression where only ``k`` of ``d`` features matter.

    ``X ~ N(0, I)``; the ``k`` true coefficients have random sign and magnitude in
    ``[scale/2, scale]``; the rest are exactly zero.
    Returns ``X (n, d)``, ``y (n,)`` and ``w_true (d,)``.
    """
    if not 0 <= k <= d:
        raise ValueError(f"need 0 <= k <= d, got k={k}, d={d}")
    w = np.zeros(d)
    support = rng.choice(d, size=k, replace=False)
    w[support] = rng.choice([-1.0, 1.0], size=k) * rng.uniform(scale / 2, scale, size=k)
    X = rng.standard_normal((n, d))
    y = X @ w + noise * rng.standard_normal(n)
    return X, y, w


def moons(rng: np.random.Generator, n: int, *, noise: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half-circles (classes 0 and 1), roughly centred on the origin."""
    n0 = n // 2
    n1 = n - n0
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n1)
    a = np.column_stack([np.cos(t0), np.sin(t0)])
    b = np.column_stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)])
    X = np.vstack([a, b]) - np.array([0.5, 0.25])
    X += noise * rng.standard_normal(X.shape)
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    return _shuffle(rng, X, y)


def circles(
    rng: np.random.Generator, n: int, *, noise: float = 0.1, factor: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """An inner circle (class 1, radius ``factor``) inside an outer one (class 0, radius 1)."""
    n0 = n // 2
    n1 = n - n0
    t = rng.uniform(0.0, 2 * np.pi, n)
    r = np.concatenate([np.ones(n0), np.full(n1, factor)])
    X = np.column_stack([r * np.cos(t), r * np.sin(t)])
    X += noise * rng.standard_normal(X.shape)
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    return _shuffle(rng, X, y)


def blobs(
    rng: np.random.Generator,
    n: int,
    *,
    centers: np.ndarray | None = None,
    std: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs, one class per row of ``centers`` (default: two blobs at (±1, 0))."""
    c = np.array([[-1.0, 0.0], [1.0, 0.0]]) if centers is None else np.asarray(centers, float)
    y = np.arange(n) % len(c)
    X = c[y] + std * rng.standard_normal((n, c.shape[1]))
    return _shuffle(rng, X, y.astype(np.int64))


def _shuffle(rng: np.random.Generator, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(y))
    return X[order], y[order]


@dataclass(frozen=True)
class Split:
    """Train / validation / test partitions of one dataset."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def split(
    rng: np.random.Generator,
    X: np.ndarray,
    y: np.ndarray,
    *,
    val: float = 0.2,
    test: float = 0.2,
) -> Split:
    """Shuffle and split into train/val/test by fractions (train gets the rest).

    Within each part the original order is kept, so data sorted by x stays sorted.
    """
    n = len(y)
    n_val = round(n * val)
    n_test = round(n * test)
    if n_val + n_test >= n:
        raise ValueError("val + test leave no training data")
    order = rng.permutation(n)
    i_val = np.sort(order[:n_val])
    i_test = np.sort(order[n_val : n_val + n_test])
    i_train = np.sort(order[n_val + n_test :])
    return Split(X[i_train], y[i_train], X[i_val], y[i_val], X[i_test], y[i_test])
