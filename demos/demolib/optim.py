"""Optimisation helpers for the optimiser demos: least-squares problems with a known Hessian,
first-order optimisers that run many parameter vectors side by side, the exact noise floor of
constant-step SGD on least squares, and ONNX graphs of a least-squares loss surface.

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
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
from onnx import GraphProto

from demolib import nets
from demolib.activations import activate, output_derivative
from demolib.graph import Graph, tensor

#: ``grad(W, t)``: the (possibly stochastic) gradient at the rows of ``W`` for step ``t`` (1-based).
GradFn = Callable[[np.ndarray, int], np.ndarray]
#: ``loss_grad(W)``: the loss of each row of ``W`` (``(K,)``) and its gradient (``(K, P)``).
LossGradFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
LearningRate = float | np.ndarray


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


# --------------------------------------------------------------------------- optimisers


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
class Adam:
    """Adam (Kingma & Ba) on rows of parameters; ``bias_correction=False`` drops the division of
    ``m`` and ``v`` by ``1 - beta^t`` (a ``(K,)`` bool array sets it per row). ``last_step`` keeps
    the most recent update ``w_new - w``.

    The same algorithm as ``demolib.nets.Adam`` (equal to rounding), but not the same code: the
    float operations run in a different order (``v`` gets ``((1 - beta2) g) g``, the step is
    ``-lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)`` with the corrections as
    multiplied reciprocals), and sharing ``nets.Adam``'s order changes the last bits of the adam
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


Optimizer = GD | Momentum | Adam


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


# --------------------------------------------------------------------------- many MLPs at once


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
