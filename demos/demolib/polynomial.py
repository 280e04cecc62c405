"""Polynomial regression in a Chebyshev basis, and many linear models exported as one ONNX graph.

Monomials ``x, x^2, ..., x^15`` are nearly collinear on [-1, 1], so high-degree fits in that basis
have huge, cancelling coefficients that float32 cannot evaluate well. Chebyshev polynomials
``T_k(t) = cos(k * arccos t)`` span the same functions and stay in [-1, 1], so the coefficients
stay moderate and an ONNX Runtime (float32) forward agrees with NumPy to about 1e-6.

``export_linear_sweep`` puts ``K`` linear models side by side in one graph (``y`` has shape
``(N, K)``, column ``k`` is model ``k``), optionally building the Chebyshev features itself from a
single input column with ``Clip -> Acos -> Mul -> Cos``. A whole hyper-parameter sweep, or many
models trained on resampled data, is then one session run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import GraphProto

from demolib import onnx_export
from demolib.linear import LinearModel, ridge

Domain = tuple[float, float]


def to_unit(x: np.ndarray, domain: Domain = (-1.0, 1.0)) -> np.ndarray:
    """Map ``x`` from ``domain`` affinely onto [-1, 1] and clip (as the ONNX graph does)."""
    lo, hi = domain
    t = (np.asarray(x, float).reshape(-1) - (lo + hi) / 2.0) * (2.0 / (hi - lo))
    return np.clip(t, -1.0, 1.0)


def chebyshev_features(x: np.ndarray, degree: int, *, domain: Domain = (-1.0, 1.0)) -> np.ndarray:
    """Columns ``T_1(t), ..., T_degree(t)`` with ``t = to_unit(x, domain)``: shape ``(n, degree)``.

    ``T_0 = 1`` is left out; the fitters below add an unpenalised intercept instead.
    """
    t = to_unit(x, domain)
    return np.cos(np.arccos(t)[:, None] * np.arange(1, degree + 1))


def least_squares(F: np.ndarray, y: np.ndarray) -> LinearModel:
    """Least squares with an intercept; the minimum-norm solution when it is not unique."""
    fm, ym = F.mean(axis=0), float(np.mean(y))
    w = np.linalg.lstsq(F - fm, y - ym, rcond=None)[0]
    return LinearModel(w, ym - float(fm @ w))


def fit(
    x: np.ndarray,
    y: np.ndarray,
    degree: int,
    *,
    lam: float = 0.0,
    domain: Domain = (-1.0, 1.0),
) -> LinearModel:
    """Polynomial of ``degree`` in the Chebyshev basis: least squares, or ridge if ``lam > 0``.

    ``degree = 0`` gives the constant model (the mean of ``y``).
    """
    if degree == 0:
        return LinearModel(np.zeros(0), float(np.mean(y)))
    F = chebyshev_features(x, degree, domain=domain)
    return ridge(F, y, lam) if lam > 0 else least_squares(F, y)


def fit_many(
    x: np.ndarray, Y: np.ndarray, degree: int, *, domain: Domain = (-1.0, 1.0)
) -> list[LinearModel]:
    """Least-squares polynomials for many target vectors at once (columns of ``Y (n, R)``).

    The inputs ``x`` are shared, so one factorisation serves every column: this is the fast way
    to refit a model on many resampled noise draws (fixed design).
    """
    Y = np.asarray(Y, float)
    ym = Y.mean(axis=0)
    if degree == 0:
        return [LinearModel(np.zeros(0), float(m)) for m in ym]
    F = chebyshev_features(x, degree, domain=domain)
    fm = F.mean(axis=0)
    W = np.linalg.lstsq(F - fm, Y - ym, rcond=None)[0]
    b = ym - fm @ W
    return [LinearModel(W[:, r].copy(), float(b[r])) for r in range(Y.shape[1])]


def predict(model: LinearModel, x: np.ndarray, *, domain: Domain = (-1.0, 1.0)) -> np.ndarray:
    """NumPy prediction of a model returned by ``fit`` (degree = number of coefficients)."""
    degree = len(model.coef)
    if degree == 0:
        return np.full(np.asarray(x).reshape(-1).shape, model.intercept)
    return model.predict(chebyshev_features(x, degree, domain=domain))


def stack(models: Sequence[LinearModel], d: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients as a ``(d, K)`` matrix (shorter models padded with zeros) and intercepts ``(K,)``."""
    d = max(len(m.coef) for m in models) if d is None else d
    W = np.zeros((d, len(models)))
    for k, m in enumerate(models):
        W[: len(m.coef), k] = m.coef
    return W, np.array([m.intercept for m in models], float)


def export_linear_sweep(
    models: Sequence[LinearModel],
    *,
    chebyshev: int | None = None,
    domain: Domain = (-1.0, 1.0),
    n_features: int | None = None,
    name: str = "linear_sweep",
    doc_string: str = "",
) -> GraphProto:
    """``K`` linear models side by side: ``y (N, K) = features(x) @ W + b``.

    With ``chebyshev=D`` the input is one column ``x (N, 1)`` and the graph builds ``T_1..T_D``
    of ``to_unit(x, domain)`` (models of lower degree get zero-padded coefficients). Without it
    the input is ``x (N, n_features)`` used as is.
    """
    if not models:
        raise ValueError("need at least one model")
    d = chebyshev if chebyshev is not None else n_features
    if d is None:
        d = max(len(m.coef) for m in models)
    if any(len(m.coef) > d for m in models):
        raise ValueError(f"a model has more than {d} coefficients")
    W, b = stack(models, d)
    features = None if chebyshev is None else onnx_export.chebyshev_features(d, domain)
    return onnx_export.export_linear_sweep(W, b, features=features, name=name,
                                           doc=doc_string or f"{len(models)} linear models side by side")


def run_sweep(session, x: np.ndarray) -> np.ndarray:
    """Run a sweep graph's session on ``x`` (1-D or 2-D); returns float64 ``(N, K)``."""
    x = np.asarray(x, float)
    if x.ndim == 1:
        x = x[:, None]
    return session.run(None, {"x": x.astype(np.float32)})[0].astype(np.float64)
