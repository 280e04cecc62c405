"""Ridge regression over many λ at once, and an ONNX graph that evaluates the whole sweep.

Used by the ridge, cross-validation and hyperparameter-tuning demos. The objective is the same as
``linear.ridge``: ``1/(2n) * ||y - Xw - b||^2 + lam/2 * ||w||^2`` with an unpenalised intercept.
One SVD of the centred design gives the solution for every λ:
``w(lam) = V diag(s / (s^2 + n lam)) U^T yc``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import GraphProto

from demolib import onnx_export


def ridge_path(X: np.ndarray, y: np.ndarray, lambdas: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge solutions for every λ: ``coefs (L, d)`` and ``intercepts (L,)``.

    Agrees with ``linear.ridge(X, y, lam)`` for each ``lam`` (to rounding).
    """
    lams = np.asarray(lambdas, float).reshape(-1)
    xm, ym = X.mean(axis=0), float(y.mean())
    Xc, yc = X - xm, y - ym
    n = len(y)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    uty = U.T @ yc
    shrink = s / (s * s + n * lams[:, None])  # (L, r)
    coefs = (shrink * uty) @ Vt  # (L, d)
    return coefs, ym - coefs @ xm


def rbf_features(x: np.ndarray, centers: np.ndarray, width: float) -> np.ndarray:
    """Gaussian bumps ``exp(-(x - c_j)^2 / (2 width^2))`` of a single feature ``x`` ((n,) or
    (n, 1)), one column per centre."""
    x = np.asarray(x, float).reshape(-1, 1)
    return np.exp(-((x - np.asarray(centers, float)[None, :]) ** 2) / (2.0 * width * width))


def export_linear_sweep(
    coefs: np.ndarray,
    intercepts: np.ndarray,
    *,
    degree: int | None = None,
    rbf: tuple[np.ndarray, float] | None = None,
    name: str = "linear_sweep",
) -> GraphProto:
    """``L`` linear models side by side: ``y[:, k] = features(x) @ coefs[k] + intercepts[k]``.

    The graph is one ``MatMul`` with a ``(d, L)`` coefficient matrix and one ``Add``. With
    ``degree`` the input is a single feature ``x (N, 1)`` and the graph builds the polynomial
    features ``x^1 .. x^degree`` with ``Pow`` (as ``linear.poly_features`` does). With
    ``rbf=(centers, width)`` it builds ``rbf_features(x, centers, width)`` instead
    (``Sub``, ``Mul``, ``Mul``, ``Exp``).
    """
    coefs = np.atleast_2d(np.asarray(coefs, float))
    n_models, d = coefs.shape
    if degree is not None and rbf is not None:
        raise ValueError("give degree or rbf, not both")
    features = None
    if degree is not None:
        if degree != d:
            raise ValueError(f"degree {degree} but {d} coefficients per model")
        features = onnx_export.pow_features(d)
    if rbf is not None:
        centers, width = np.asarray(rbf[0], float).reshape(1, -1), float(rbf[1])
        if centers.shape[1] != d:
            raise ValueError(f"{centers.shape[1]} centres but {d} coefficients per model")
        features = onnx_export.rbf_features(centers, width)
    return onnx_export.export_linear_sweep(
        coefs.T, np.asarray(intercepts, float).reshape(n_models), features=features,
        param_names=("coefs", "intercepts"), params_first=True, name=name, doc=f"{n_models} linear models")
