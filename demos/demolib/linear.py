"""Linear models: polynomial features, ridge (closed form), lasso (coordinate descent), robust fits.

All fitters return a ``LinearModel`` with an unpenalised intercept. Objectives:

* ridge:  ``1/(2n) * ||y - Xw - b||^2 + lam/2 * ||w||^2``
* lasso:  ``1/(2n) * ||y - Xw - b||^2 + lam * ||w||_1`` (same scaling as scikit-learn)
* huber / mae: mean Huber or absolute loss (+ optional ``lam/2 * ||w||^2``), solved by IRLS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class LinearModel:
    """``y = X @ coef + intercept``."""

    coef: np.ndarray
    intercept: float = 0.0

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef + self.intercept


def poly_features(x: np.ndarray, degree: int, *, bias: bool = False) -> np.ndarray:
    """Columns ``x, x^2, ..., x^degree`` (and a leading column of ones if ``bias``).

    ``x`` may be ``(n,)`` or ``(n, 1)``. Keep ``x`` in about [-1, 1] for a well-conditioned basis.
    """
    x = np.asarray(x, float).reshape(-1)
    start = 0 if bias else 1
    return x[:, None] ** np.arange(start, degree + 1)


def _center(X: np.ndarray, y: np.ndarray, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    if not fit_intercept:
        return X, y, np.zeros(X.shape[1]), 0.0
    xm, ym = X.mean(axis=0), float(y.mean())
    return X - xm, y - ym, xm, ym


def ridge(X: np.ndarray, y: np.ndarray, lam: float, *, fit_intercept: bool = True) -> LinearModel:
    """Closed-form ridge regression: solves ``(Xc^T Xc / n + lam I) w = Xc^T yc / n``."""
    Xc, yc, xm, ym = _center(X, y, fit_intercept)
    n, d = Xc.shape
    w = np.linalg.solve(Xc.T @ Xc / n + lam * np.eye(d), Xc.T @ yc / n)
    return LinearModel(w, ym - float(xm @ w))


def soft_threshold(z: np.ndarray | float, t: float) -> np.ndarray:
    """``sign(z) * max(|z| - t, 0)``: the lasso proximal step (gives exact zeros)."""
    return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)


def lasso(
    X: np.ndarray,
    y: np.ndarray,
    lam: float,
    *,
    max_iter: int = 1000,
    tol: float = 1e-8,
    fit_intercept: bool = True,
    coef_init: np.ndarray | None = None,
) -> LinearModel:
    """Lasso by cyclic coordinate descent; coefficients below the threshold are exactly 0.

    Stops when no coefficient moved more than ``tol`` in a full sweep. Pass ``coef_init`` to warm
    start along a path of decreasing ``lam``.
    """
    Xc, yc, xm, ym = _center(X, y, fit_intercept)
    n, d = Xc.shape
    col_sq = (Xc * Xc).sum(axis=0) / n
    w = np.zeros(d) if coef_init is None else np.array(coef_init, float)
    r = yc - Xc @ w
    for _ in range(max_iter):
        max_step = 0.0
        for j in range(d):
            if col_sq[j] == 0.0:
                continue
            xj = Xc[:, j]
            old = w[j]
            rho = xj @ r / n + col_sq[j] * old
            new = float(soft_threshold(rho, lam)) / col_sq[j]
            if new != old:
                r -= xj * (new - old)
                w[j] = new
                max_step = max(max_step, abs(new - old))
        if max_step < tol:
            break
    return LinearModel(w, ym - float(xm @ w))


def _irls(
    X: np.ndarray,
    y: np.ndarray,
    weight_fn: Callable[[np.ndarray], np.ndarray],
    lam: float,
    max_iter: int,
    tol: float,
) -> LinearModel:
    n, d = X.shape
    A = np.column_stack([X, np.ones(n)])
    pen = lam * np.eye(d + 1)
    pen[-1, -1] = 0.0  # never penalise the intercept
    theta = np.linalg.lstsq(A, y, rcond=None)[0]
    for _ in range(max_iter):
        wts = weight_fn(y - A @ theta)
        Aw = A * wts[:, None]
        new = np.linalg.solve(A.T @ Aw / n + pen, Aw.T @ y / n)
        done = np.max(np.abs(new - theta)) < tol
        theta = new
        if done:
            break
    return LinearModel(theta[:-1], float(theta[-1]))


def huber(
    X: np.ndarray,
    y: np.ndarray,
    *,
    delta: float = 1.0,
    lam: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> LinearModel:
    """Huber regression by iteratively reweighted least squares (weights ``min(1, delta/|r|)``)."""
    return _irls(X, y, lambda r: np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-12)), lam, max_iter, tol)


def mae(
    X: np.ndarray,
    y: np.ndarray,
    *,
    lam: float = 0.0,
    eps: float = 1e-6,
    max_iter: int = 200,
    tol: float = 1e-10,
) -> LinearModel:
    """Least-absolute-deviation (median) regression by IRLS with weights ``1/max(|r|, eps)``."""
    return _irls(X, y, lambda r: 1.0 / np.maximum(np.abs(r), eps), lam, max_iter, tol)


def huber_loss(r: np.ndarray, delta: float = 1.0) -> np.ndarray:
    """Elementwise Huber loss: quadratic for ``|r| <= delta``, linear beyond."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
