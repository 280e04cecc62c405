"""Optimisation helpers for the optimiser demos: least-squares problems with a known Hessian,
first-order optimisers that run many parameter vectors side by side (``GD``, ``Momentum``,
``Adam``, from ``demolib.optimizers``), the exact noise floor of constant-step SGD on least
squares, ``K`` MLPs as the rows of one parameter matrix (``MLPStack``, from
``demolib.mlp_stack``), and ONNX graphs of a least-squares loss surface.

Conventions:

* A least-squares problem is ``f(w) = 1/(2n) * ||X w - y||^2`` with no intercept. Its Hessian
  ``H = X^T X / n`` is constant, and ``f(w) = f(w*) + 1/2 (w - w*)^T H (w - w*)`` exactly, so the
  *excess loss* ``f(w) - f(w*)`` is computed from ``w - w*`` (no cancellation near the optimum).
* Parameters are rows: ``W`` has shape ``(K, d)`` for ``K`` runs of the same optimiser (e.g. one
  per learning rate) and every method is vectorised over ``K``. A learning rate may be a scalar or
  one value per run (shape ``(K,)``).
* ``Momentum`` is the heavy-ball form PyTorch and ``demolib.nets.SGD`` use
  (``buf = beta * buf + g``; ``w -= lr * buf``); ``Adam`` is Kingma & Ba's algorithm, with the bias
  correction optional so that demos can show what it does. With bias correction on, both agree
  with ``demolib.nets`` step for step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from onnx import GraphProto

from demolib.graph import Graph, tensor
from demolib.mlp_stack import MLPStack as MLPStack  # re-exported
from demolib.optimizers import GD as GD  # re-exported: optim.GD / Momentum / Adam are the demos' names
from demolib.optimizers import LearningRate, RowAdam
from demolib.optimizers import Momentum as Momentum
from demolib.optimizers import RowOptimizer as Optimizer

#: ``grad(W, t)``: the (possibly stochastic) gradient at the rows of ``W`` for step ``t`` (1-based).
GradFn = Callable[[np.ndarray, int], np.ndarray]
#: ``loss_grad(W)``: the loss of each row of ``W`` (``(K,)``) and its gradient (``(K, P)``).
LossGradFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: The row-wise Adam, under the name the demos use.
Adam = RowAdam


# --------------------------------------------------------------------------- problems


def whitened_normal(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """``n x d`` Gaussian sample rescaled so that ``Z^T Z / n`` is exactly the identity."""
    Z = rng.standard_normal((n, d))
    evals, evecs = np.linalg.eigh(Z.T @ Z / n)
    return Z @ (evecs / np.sqrt(evals)) @ evecs.T


def rotation(angle: float) -> np.ndarray:
    """The 2-D rotation matrix by ``angle`` radians (columns are the rotated axes)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


@dataclass(frozen=True)
class LeastSquares:
    """``f(w) = 1/(2n) ||X w - y||^2`` with its exact Hessian, optimum and gradients."""

    X: np.ndarray
    y: np.ndarray

    @classmethod
    def from_spectrum(
        cls,
        rng: np.random.Generator,
        n: int,
        eigvals: Sequence[float],
        *,
        noise: float,
        w_true: Sequence[float] | None = None,
        basis: np.ndarray | None = None,
    ) -> LeastSquares:
        """A problem whose Hessian has exactly the eigenvalues ``eigvals``.

        Features are ``X = Z diag(sqrt(eigvals)) basis^T`` with ``Z^T Z / n = I`` (so
        ``H = basis diag(eigvals) basis^T``); targets are ``y = X w_true + noise * N(0, 1)``.
        ``basis`` (orthogonal, columns = eigenvectors) defaults to the identity, ``w_true`` to
        standard normal draws.
        """
        lam = np.asarray(eigvals, float)
        d = lam.size
        Q = np.eye(d) if basis is None else np.asarray(basis, float)
        w = rng.standard_normal(d) if w_true is None else np.asarray(w_true, float)
        X = whitened_normal(rng, n, d) * np.sqrt(lam) @ Q.T
        y = X @ w + noise * rng.standard_normal(n)
        return cls(X, y)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @cached_property
    def hessian(self) -> np.ndarray:
        return self.X.T @ self.X / self.n

    @cached_property
    def eigvals(self) -> np.ndarray:
        """Eigenvalues of the Hessian, ascending."""
        return np.linalg.eigvalsh(self.hessian)

    @property
    def lam_min(self) -> float:
        return float(self.eigvals[0])

    @property
    def lam_max(self) -> float:
        return float(self.eigvals[-1])

    @cached_property
    def w_star(self) -> np.ndarray:
        return np.linalg.solve(self.hessian, self.xty)

    @cached_property
    def residuals(self) -> np.ndarray:
        """``y - X w*``: what no weight vector can fit."""
        return self.y - self.X @ self.w_star

    @cached_property
    def loss_star(self) -> float:
        r = self.residuals
        return float(r @ r) / (2 * self.n)

    def loss(self, W: np.ndarray) -> np.ndarray:
        """``f`` at each row of ``W`` (shape ``(..., d)`` -> ``(...)``), computed directly."""
        R = W @ self.X.T - self.y
        return 0.5 * np.mean(R * R, axis=-1)

    def excess(self, W: np.ndarray) -> np.ndarray:
        """``f(w) - f(w*) = 1/2 (w - w*)^T H (w - w*)`` at each row of ``W``."""
        E = W - self.w_star
        return 0.5 * np.einsum("...i,ij,...j->...", E, self.hessian, E)

    @cached_property
    def xty(self) -> np.ndarray:
        """``X^T y / n``."""
        return self.X.T @ self.y / self.n

    def grad(self, W: np.ndarray, t: int = 0) -> np.ndarray:
        """Full-batch gradient ``X^T (X w - y) / n = H w - X^T y / n`` at each row of ``W``
        (``t`` is unused); the Hessian form costs ``d^2`` per row instead of ``n d``."""
        return W @ self.hessian - self.xty

    def batch_grad(self, W: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Mini-batch gradients: row ``k`` of ``W`` uses the examples ``idx[k]`` (shape ``(K, B)``)."""
        Xb = self.X[idx]  # (K, B, d)
        r = np.einsum("kbd,kd->kb", Xb, W) - self.y[idx]
        return np.einsum("kbd,kb->kd", Xb, r) / idx.shape[1]

    def per_example_grads(self, w: np.ndarray) -> np.ndarray:
        """``(n, d)``: row ``i`` is the gradient of ``1/2 (x_i^T w - y_i)^2``; their mean is ``grad``."""
        return (self.X @ w - self.y)[:, None] * self.X

    def sgd_grad(self, rng: np.random.Generator, batch_size: int) -> GradFn:
        """A stochastic gradient: each row gets its own ``batch_size`` examples drawn uniformly
        with replacement at every step (the sampling ``sgd_stationary_excess`` assumes)."""

        def grad(W: np.ndarray, t: int) -> np.ndarray:
            return self.batch_grad(W, rng.integers(0, self.n, size=(W.shape[0], batch_size)))

        return grad

    def gd_rate(self, lr: LearningRate) -> np.ndarray | float:
        """Per-step contraction of ``||w - w*||`` under full-batch GD: ``max_i |1 - lr * lam_i|``."""
        lr_arr = np.asarray(lr, float)
        rate = np.max(np.abs(1.0 - lr_arr[..., None] * self.eigvals), axis=-1)
        return float(rate) if rate.ndim == 0 else rate


def sgd_stationary_excess(problem: LeastSquares, lr: float, batch_size: int = 1) -> float:
    """Expected excess loss that constant-step SGD settles at (``problem.sgd_grad`` sampling).

    With ``e = w - w*``, residuals ``r_i = y_i - x_i^T w*`` and ``A = mean of x_b x_b^T`` over the
    batch, one step is ``e <- (I - lr A) e + lr * mean(r_b x_b)``. Because ``sum_i r_i x_i = 0``
    the mean of ``e`` decays like full-batch GD, and the stationary second moment ``S`` solves the
    linear equation ``S = E[(I - lr A) S (I - lr A)] + lr^2 / B * mean(r_i^2 x_i x_i^T)``, where
    ``E[A S A] = (1 - 1/B) H S H + 1/B * mean((x_i^T S x_i) x_i x_i^T)``. Returns
    ``1/2 tr(H S)``, or ``inf`` if the second moment does not settle (the step is too large).
    """
    X, r, H = problem.X, problem.residuals, problem.hessian
    n, d = X.shape
    B = float(batch_size)
    eye = np.eye(d)
    outer = np.einsum("ni,nj->nij", X, X).reshape(n, d * d)  # rows vec(x_i x_i^T)
    fourth = outer.T @ outer / n  # vec(S) -> vec(mean (x^T S x) x x^T)
    # vec(M S N) = kron(M, N^T) vec(S) for row-major vec; H is symmetric.
    op = (
        np.kron(eye, eye)
        - lr * (np.kron(H, eye) + np.kron(eye, H))
        + lr**2 * ((1.0 - 1.0 / B) * np.kron(H, H) + fourth / B)
    )
    noise = (lr**2 / B) * (X.T * (r * r)) @ X / n
    if np.max(np.abs(np.linalg.eigvals(op))) >= 1.0:
        return float("inf")
    S = np.linalg.solve(np.eye(d * d) - op, noise.reshape(-1)).reshape(d, d)
    return 0.5 * float(np.trace(H @ S))


class SGDMoments:
    """The exact expected excess loss of constant-step SGD on a least-squares problem, step by step,
    for many learning rates at once (sampling as in ``LeastSquares.sgd_grad``: ``B`` examples drawn
    uniformly with replacement at every step).

    With ``e = w - w*`` and residuals ``r_i = y_i - x_i^T w*``, a step is
    ``e <- (I - lr A) e + lr xi`` with ``A = mean_b x_b x_b^T`` and ``xi = mean_b r_b x_b``. The
    mean ``m = E[e]`` and second moment ``S = E[e e^T]`` then evolve linearly:

    * ``m <- (I - lr H) m``
    * ``S <- S - lr (H S + S H) + lr^2 ((1 - 1/B) H S H + 1/B mean_i (x_i^T S x_i) x_i x_i^T)
      - 2 lr^2 / B * mean_i r_i (x_i^T m) x_i x_i^T + lr^2 / B * mean_i r_i^2 x_i x_i^T``

    and the expected excess loss is ``1/2 tr(H S)``. Costs ``O(d^4)`` per step and rate, so it
    suits problems with a few weights.
    """

    def __init__(self, problem: LeastSquares) -> None:
        X, r, H = problem.X, problem.residuals, problem.hessian
        n, d = X.shape
        outer = np.einsum("ni,nj->nij", X, X).reshape(n, d * d)
        eye = np.eye(d)
        self.d = d
        self.H = H
        self.first = np.kron(H, eye) + np.kron(eye, H)  # vec(HS + SH)
        self.hsh = np.kron(H, H)  # vec(H S H)
        self.fourth = outer.T @ outer / n  # vec(mean (x^T S x) x x^T)
        self.third = outer.T @ (r[:, None] * X) / n  # m -> vec(mean r (x^T m) x x^T)
        self.noise = outer.T @ (r * r) / n  # vec(mean r^2 x x^T)
        self.h_vec = H.reshape(-1)

    def excess(self, lrs: np.ndarray, batch_size: int, e0: np.ndarray, steps: int,
               stop_below: float | None = None) -> np.ndarray:
        """Expected excess loss for every rate in ``lrs`` (``(L,)``) after ``0..steps`` steps from
        ``w0 = w* + e0``: shape ``(steps + 1, L)``. With ``stop_below`` the run ends at the first
        step where some rate's expected excess is below that value (later rows are NaN)."""
        lr = np.asarray(lrs, float)[:, None]
        B = float(batch_size)
        dd = self.d * self.d
        op = (np.eye(dd)[None] - lr[:, :, None] * self.first[None]
              + (lr**2)[:, :, None] * ((1.0 - 1.0 / B) * self.hsh + self.fourth / B)[None])
        m = np.tile(np.asarray(e0, float), (lr.shape[0], 1))
        S = np.tile(np.outer(e0, e0).reshape(-1), (lr.shape[0], 1))
        out = np.full((steps + 1, lr.shape[0]), np.nan)
        out[0] = 0.5 * S @ self.h_vec
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(1, steps + 1):
                S = (op @ S[:, :, None])[:, :, 0] + (lr**2 / B) * (self.noise - 2.0 * m @ self.third.T)
                m = m - lr * (m @ self.H)
                out[k] = 0.5 * S @ self.h_vec
                if stop_below is not None and np.any(out[k] < stop_below):
                    break
        return out




def trajectory(opt: Optimizer, grad: GradFn, W0: np.ndarray, steps: int) -> np.ndarray:
    """Run ``steps`` updates from ``W0`` (``(K, d)`` or ``(d,)``); returns all iterates, shape
    ``(steps + 1,) + W0.shape``. Overflow in a diverging run gives inf/nan rows, not warnings."""
    W = np.array(W0, float)
    single = W.ndim == 1
    if single:
        W = W[None, :]
    path = np.empty((steps + 1,) + W.shape)
    path[0] = W
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            W = opt.step(W, grad(W, t), t)
            path[t] = W
    return path[:, 0] if single else path


def minimize(opt: Optimizer, loss_grad: LossGradFn, W0: np.ndarray, steps: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Run ``steps`` updates on the rows of ``W0`` (``(K, P)``) with ``loss_grad(W) -> (loss (K,),
    grad (K, P))``. Returns the final ``W`` and the losses before each step and after the last,
    shape ``(steps + 1, K)``. Diverging rows turn into inf/nan without warnings."""
    W = np.array(W0, float)
    losses = np.empty((steps + 1, W.shape[0]))
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            losses[t - 1], G = loss_grad(W)
            W = opt.step(W, G, t)
        losses[steps] = loss_grad(W)[0]
    return W, losses


def sharpness(grad: Callable[[np.ndarray], np.ndarray], w: np.ndarray, rng: np.random.Generator,
              *, iters: int = 50, h: float = 1e-4) -> float:
    """Largest eigenvalue of the Hessian at ``w`` (``(P,)``) by power iteration, with
    Hessian-vector products from central differences of ``grad`` (``(K, P) -> (K, P)``, called on
    the two rows ``w ± h v`` at once). Assumes the top eigenvalue is the largest in magnitude."""
    v = rng.standard_normal(w.shape)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(iters):
        g = grad(np.stack([w + h * v, w - h * v]))
        hv = (g[0] - g[1]) / (2.0 * h)
        lam = float(v @ hv)
        v = hv / np.linalg.norm(hv)
    return lam


def adam_step_ratio(t: np.ndarray, beta1: float = 0.9, beta2: float = 0.999) -> np.ndarray:
    """Size of Adam's step without bias correction, in units of ``lr``, for a constant gradient:
    ``(1 - beta1^t) / sqrt(1 - beta2^t)`` (with correction it is exactly 1)."""
    t = np.asarray(t, float)
    return (1.0 - beta1**t) / np.sqrt(1.0 - beta2**t)


def linear_rate(errors: np.ndarray, tail: int) -> float:
    """Measured per-step contraction factor: the geometric mean of ``errors[k+1] / errors[k]``
    over the last ``tail`` steps."""
    e = np.asarray(errors, float)
    return float(np.exp(np.mean(np.diff(np.log(e[-(tail + 1) :])))))


# --------------------------------------------------------------------------- ONNX

def export_loss_surface(problem: LeastSquares, *, name: str = "least_squares_loss") -> GraphProto:
    """The loss as a function of the weights: input ``x`` of shape ``(K, d)`` holds ``K`` weight
    vectors, output ``y`` of shape ``(K,)`` is ``1/(2n) ||X w_k - y||^2`` for each; the data are
    stored in the graph. Nodes: ``MatMul -> Sub -> Mul -> ReduceMean -> Mul``."""
    g = Graph()
    X_T, y, half = g.const("data_X_T", problem.X.T), g.const("data_y", problem.y), g.const("half", 0.5)
    r = g.op("Sub", [g.op("MatMul", ["x", X_T], "predictions"), y], "residuals")
    mse = g.op("ReduceMean", [g.op("Mul", [r, r], "squares")], "mse", axes=[1], keepdims=0)
    g.op("Mul", [mse, half], "y")
    doc = f"least-squares loss of {problem.n} examples as a function of {problem.d} weights"
    return g.build(name, [tensor("x", ["K", problem.d])], [tensor("y", ["K"])], doc)


def diverged(losses: np.ndarray) -> np.ndarray:
    """Runs (columns of a (steps + 1, runs) loss history) that ended non-finite or above where
    they started."""
    final = losses[-1]
    return ~np.isfinite(final) | (final > losses[0])


def blowup_step(curve: np.ndarray) -> int:
    """Where a run blew up: the first step its loss passed its starting value."""
    return int(np.argmax(~np.isfinite(curve) | (curve > curve[0])))
