"""Elastic-net (and lasso) paths by coordinate descent on the Gram matrix, for many problems at once.

Objective (the scaling of ``linear.lasso`` and scikit-learn's ``ElasticNet``), with an unpenalised
intercept::

    1/(2n) * ||y - Xw - b||^2 + lam * (l1_ratio * ||w||_1 + (1 - l1_ratio)/2 * ||w||^2)

``l1_ratio = 1`` is the lasso, ``l1_ratio = 0`` ridge. After centring, the objective only needs
``G = Xc^T Xc / n`` and ``c = Xc^T yc / n``, so one coordinate update costs ``O(d)`` whatever
``n`` is, and it vectorises over any leading axes: many resampled training sets (``G`` of shape
``(R, d, d)``) times many λ (``lams`` of shape ``(L,)``) are solved together, every problem with
its own coordinate descent. Coordinates below the threshold are set exactly to zero.
"""

from __future__ import annotations

import numpy as np


def moments(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``G = Xc^T Xc / n``, ``c = Xc^T yc / n`` and the means of ``X`` and ``y`` (last two axes of
    ``X`` are ``(n, d)``; any leading axes are separate problems)."""
    xm, ym = X.mean(axis=-2), y.mean(axis=-1)
    Xc, yc = X - xm[..., None, :], y - ym[..., None]
    n = X.shape[-2]
    G = np.swapaxes(Xc, -1, -2) @ Xc / n
    c = (np.swapaxes(Xc, -1, -2) @ yc[..., None])[..., 0] / n
    return G, c, xm, ym


def lam_max(c: np.ndarray, l1_ratio: float) -> np.ndarray:
    """The smallest λ at which every coefficient is exactly zero (per problem)."""
    return np.max(np.abs(c), axis=-1) / l1_ratio


def path(G: np.ndarray, c: np.ndarray, lams: np.ndarray, l1_ratio: float, *,
         max_sweeps: int = 2000, tol: float = 1e-9) -> np.ndarray:
    """Coefficients for every problem and every λ: shape ``(*lead, L, d)``.

    ``G (*lead, d, d)``, ``c (*lead, d)``, ``lams (L,)`` or ``(*lead, L)``. Cyclic coordinate
    descent from zero, all problems in lock step, until no coefficient of any problem moves more
    than ``tol`` in a sweep. Updates: ``w_j = S(c_j - G_j w + G_jj w_j, lam a) / (G_jj + lam (1-a))``.
    """
    lead, d = c.shape[:-1], c.shape[-1]
    lams = np.broadcast_to(np.asarray(lams, float), (*lead, np.shape(lams)[-1]))
    G = G[..., None, :, :]  # (*lead, 1, d, d): shared by every λ
    c = c[..., None, :]  # (*lead, 1, d)
    l1, l2 = lams * l1_ratio, lams * (1.0 - l1_ratio)  # (*lead, L)
    w = np.zeros((*lead, lams.shape[-1], d))
    Gw = np.zeros_like(w)  # G @ w, kept up to date
    for _ in range(max_sweeps):
        moved = 0.0
        for j in range(d):
            gjj = G[..., j, j]
            rho = c[..., j] - Gw[..., j] + gjj * w[..., j]
            new = np.sign(rho) * np.maximum(np.abs(rho) - l1, 0.0) / (gjj + l2)
            step = new - w[..., j]
            w[..., j] = new
            Gw += step[..., None] * G[..., j, :]
            moved = max(moved, float(np.max(np.abs(step))))
        if moved < tol:
            break
    return w


def intercepts(coefs: np.ndarray, xm: np.ndarray, ym: np.ndarray) -> np.ndarray:
    """The unpenalised intercepts ``ym - xm @ w`` that go with ``coefs (*lead, L, d)``."""
    return ym[..., None] - (coefs @ xm[..., :, None])[..., 0]
