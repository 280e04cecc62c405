"""Small generative models in NumPy: autoencoders, PCA and a GAN, with ONNX export.

The building block is a ``Stack`` of dense layers with one activation each (``demolib.stack``,
re-exported here: ``Stack``, ``init_stack``, ``member``, ``layers``, ``forward``, ``predict``,
``backward``, ``mse``, ``export_stack``).

Also here: PCA (``pca``, ``pca_reconstruction_mse``), linear autoencoders for several bottleneck
sizes trained together (``train_linear_autoencoders``), principal angles between subspaces, the
exact 1-D Wasserstein-1 distance between two samples, the non-saturating GAN losses with their
gradients (``discriminator_grads``, ``generator_grads``), two toy data sets (a noisy arc in the
plane with its position along the curve, and a 1-D Gaussian mixture).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from demolib.activations import sigmoid
from demolib.stack import LEAKY_SLOPE as LEAKY_SLOPE
from demolib.stack import Act as Act
from demolib.stack import Stack as Stack
from demolib.stack import StackCache as StackCache
from demolib.stack import backward as backward
from demolib.stack import export_stack as export_stack
from demolib.stack import forward as forward
from demolib.stack import init_stack as init_stack
from demolib.stack import layers as layers
from demolib.stack import member as member
from demolib.stack import mse as mse
from demolib.stack import predict as predict

# --------------------------------------------------------------------------- PCA and linear AEs


@dataclass(frozen=True)
class PCA:
    """Principal components of a data set: ``components[j]`` is the unit direction of the j-th
    largest variance ``variances[j]`` (biased, 1/n); ``mean`` is the data mean."""

    mean: np.ndarray
    components: np.ndarray  # (d, d), rows
    variances: np.ndarray  # (d,), descending

    def reconstruct(self, X: np.ndarray, k: int) -> np.ndarray:
        """Project onto the first ``k`` components and map back."""
        V = self.components[:k]
        return self.mean + (X - self.mean) @ V.T @ V


def pca(X: np.ndarray) -> PCA:
    """PCA by an eigendecomposition of the (biased) covariance matrix."""
    mean = X.mean(axis=0)
    Xc = X - mean
    cov = Xc.T @ Xc / len(X)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    return PCA(mean, vecs[:, order].T, np.clip(vals[order], 0.0, None))


def pca_reconstruction_mse(p: PCA, k: int) -> float:
    """Mean squared error per entry of the best rank-``k`` reconstruction of the data ``p`` was
    fitted on: the discarded variance divided by the dimension (Eckart–Young)."""
    return float(p.variances[k:].sum() / p.variances.size)


def principal_angles(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between the row spaces of ``A`` (k, d) and ``B``."""
    qa, _ = np.linalg.qr(np.asarray(A, float).T)
    qb, _ = np.linalg.qr(np.asarray(B, float).T)
    cos = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.sort(np.arccos(np.clip(cos, -1.0, 1.0)))


@dataclass
class LinearAutoencoders:
    """Linear autoencoders ``x -> code = x @ enc + enc_bias -> code @ dec + dec_bias``, one per
    bottleneck size ``ks[i]``. They are stored padded to the largest size (``enc[i]`` is
    ``(d, kmax)``, ``dec[i]`` is ``(kmax, d)``); columns/rows beyond ``ks[i]`` stay zero."""

    ks: list[int]
    enc: np.ndarray  # (K, d, kmax)
    enc_bias: np.ndarray  # (K, 1, kmax)
    dec: np.ndarray  # (K, kmax, d)
    dec_bias: np.ndarray  # (K, 1, d)
    mask: np.ndarray  # (K, 1, kmax): 1 for the units a model has
    loss_history: list[np.ndarray] = field(default_factory=list)  # per step, (K,) MSE

    def params(self) -> list[np.ndarray]:
        return [self.enc, self.enc_bias, self.dec, self.dec_bias]

    def member(self, i: int) -> Stack:
        """Model ``i`` as a two-layer linear stack ``d -> ks[i] -> d`` (for export)."""
        k = self.ks[i]
        return Stack(
            [self.enc[i][:, :k].copy(), self.dec[i][:k].copy()],
            [self.enc_bias[i, 0, :k].copy(), self.dec_bias[i, 0].copy()],
            ["linear", "linear"],
        )

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """(K, n, d): every model's reconstruction of ``X``."""
        return ((X @ self.enc + self.enc_bias) * self.mask) @ self.dec + self.dec_bias


@dataclass(frozen=True)
class Moments:
    """Second moments of a data set ``X (n, d)`` with a column of ones appended (``Xa``):
    ``S = Xa.T @ Xa / n``, ``T = Xa.T @ X / n``, ``U = sum(X * X) / n``. A linear model's mean
    squared error and its gradient depend on the data only through these, so full-batch training
    of a linear autoencoder costs the same for any ``n``."""

    S: np.ndarray  # (d + 1, d + 1)
    T: np.ndarray  # (d + 1, d)
    U: float
    d: int


def moments(X: np.ndarray) -> Moments:
    n, d = X.shape
    Xa = np.hstack([X, np.ones((n, 1))])
    return Moments(Xa.T @ Xa / n, Xa.T @ X / n, float(np.sum(X * X) / n), d)


def linear_autoencoder_grads(
    aes: LinearAutoencoders, m: Moments
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-model MSE on the data ``m`` summarises (mean over all entries) and the gradients of
    their *sum* w.r.t. ``aes.params()`` (each model's loss depends only on its own slice, so this
    is every model's own gradient). Exactly full-batch gradient descent on the data.

    With ``P = [enc; enc_bias] @ dec + [0; dec_bias]`` the reconstruction is ``Xa @ P``, so
    ``MSE = (tr(P' S P) - 2 tr(P' T) + U) / d`` and ``dMSE/dP = 2 (S P - T) / d``."""
    enc_aug = np.concatenate([aes.enc, aes.enc_bias], axis=1) * aes.mask  # (K, d+1, kmax)
    P = enc_aug @ aes.dec
    P[:, -1:, :] += aes.dec_bias
    SP = m.S @ P
    loss = (np.einsum("kij,kij->k", P, SP) - 2.0 * np.einsum("kij,ij->k", P, m.T) + m.U) / m.d
    G = (2.0 / m.d) * (SP - m.T)  # (K, d+1, d)
    g_dec = np.swapaxes(enc_aug, 1, 2) @ G
    g_enc_aug = (G @ np.swapaxes(aes.dec, 1, 2)) * aes.mask
    return loss, [g_enc_aug[:, :-1], g_enc_aug[:, -1:], g_dec, G[:, -1:, :].copy()]


def init_linear_autoencoders(
    rng: np.random.Generator, d: int, ks: Sequence[int], *, scale: float = 0.1
) -> LinearAutoencoders:
    """Small random weights (``N(0, scale^2)``), zero biases, one model per bottleneck size."""
    ks = [int(k) for k in ks]
    K, kmax = len(ks), max(ks)
    mask = (np.arange(kmax)[None, None, :] < np.array(ks)[:, None, None]).astype(float)
    enc = rng.standard_normal((K, d, kmax)) * scale * mask
    dec = rng.standard_normal((K, kmax, d)) * scale * np.swapaxes(mask, 1, 2)
    return LinearAutoencoders(ks, enc, np.zeros((K, 1, kmax)), dec, np.zeros((K, 1, d)), mask)


def train_linear_autoencoders(aes: LinearAutoencoders, X: np.ndarray, opt, *, steps: int) -> None:
    """Full-batch training of all models at once with ``opt`` (a ``demolib.nets`` optimiser);
    records each step's per-model MSE in ``aes.loss_history``."""
    params = aes.params()
    m = moments(X)
    for _ in range(steps):
        loss, grads = linear_autoencoder_grads(aes, m)
        aes.loss_history.append(loss)
        opt.step(params, grads)


# --------------------------------------------------------------------------- distances


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Wasserstein-1 (earth mover's) distance between the empirical distributions of two
    1-D samples: the area between their empirical CDFs."""
    a = np.sort(np.ravel(a))
    b = np.sort(np.ravel(b))
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(a, grid[:-1], side="right") / a.size
    fb = np.searchsorted(b, grid[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * np.diff(grid)))


# --------------------------------------------------------------------------- GAN losses


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def discriminator_grads(
    disc: Stack, real: np.ndarray, fake: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The discriminator's loss ``mean softplus(-D(real)) + mean softplus(D(fake))`` (binary
    cross-entropy with real = 1, fake = 0; ``D`` outputs a logit) and its parameter gradients.

    Batches run along axis -2; real and fake go through the net as one batch. For an ensemble
    the loss is one value per member (an array of shape ``(S,)``; 0-d for a single stack) and
    the gradients are each member's own (those of the members' summed losses)."""
    n_r, n_f = real.shape[-2], fake.shape[-2]
    lead = np.broadcast_shapes(real.shape[:-2], fake.shape[:-2])
    both = np.concatenate([np.broadcast_to(real, (*lead, *real.shape[-2:])),
                           np.broadcast_to(fake, (*lead, *fake.shape[-2:]))], axis=-2)
    logit, cache = forward(disc, both)
    # softplus(-l) / n_r for real rows, softplus(l) / n_f for fake rows
    sign = np.concatenate([np.full((n_r, 1), -1.0), np.ones((n_f, 1))])
    weight = np.concatenate([np.full((n_r, 1), 1.0 / n_r), np.full((n_f, 1), 1.0 / n_f)])
    loss = np.sum(_softplus(sign * logit) * weight, axis=(-2, -1))
    grads, _ = backward(disc, cache, sign * sigmoid(sign * logit) * weight)
    return loss, grads


def generator_grads(
    gen: Stack,
    disc: Stack,
    z: np.ndarray,
    forward_cache: tuple[np.ndarray, StackCache] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The non-saturating generator loss ``mean softplus(-D(G(z)))`` (= ``-mean log D(G(z))``)
    and its gradients w.r.t. the generator's parameters, backpropagated through the
    discriminator (whose parameters are left alone). ``forward_cache`` may pass in a forward
    pass ``forward(gen, z)`` already made. Per member for ensembles, as in
    ``discriminator_grads``."""
    x, cache_g = forward_cache if forward_cache is not None else forward(gen, z)
    logit, cache_d = forward(disc, x)
    n = logit.shape[-2]
    loss = np.mean(_softplus(-logit), axis=(-2, -1))
    _, dx = backward(disc, cache_d, -sigmoid(-logit) / n, param_grads=False)
    grads, _ = backward(gen, cache_g, dx)
    return loss, grads


def gan_step(
    gen: Stack, disc: Stack, opt_g, opt_d, real: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One alternating GAN update: a discriminator step on ``real`` against ``G(z)``, then a
    generator step on the same ``z`` through the updated discriminator. Returns both losses
    (the generator's measured after the discriminator step). ``opt_g`` and ``opt_d`` are
    ``demolib.nets`` optimisers; Adam and SGD act elementwise, so one optimiser trains every
    member of an ensemble exactly as separate optimisers would."""
    fwd = forward(gen, z)
    loss_d, grads_d = discriminator_grads(disc, real, fwd[0])
    opt_d.step(disc.params(), grads_d)
    loss_g, grads_g = generator_grads(gen, disc, z, forward_cache=fwd)
    opt_g.step(gen.params(), grads_g)
    return loss_d, loss_g


# --------------------------------------------------------------------------- toy data


def arc(
    rng: np.random.Generator, n: int, *, noise: float = 0.05, span: float = 1.5 * np.pi
) -> tuple[np.ndarray, np.ndarray]:
    """Points near an arc of the unit circle that covers the angle ``span`` (centred at the
    bottom), with Gaussian noise; returns ``X (n, 2)`` and the position along the arc
    ``t (n,)`` in [0, 1]. The arc is a curved 1-D manifold in the plane."""
    t = rng.uniform(0.0, 1.0, n)
    angle = -0.5 * np.pi - 0.5 * span + span * t
    X = np.column_stack([np.cos(angle), np.sin(angle)]) + noise * rng.standard_normal((n, 2))
    return X, t


def gaussian_mixture_1d(
    rng: np.random.Generator,
    n: int,
    means: Sequence[float],
    std: float,
    weights: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` draws from a 1-D mixture of Gaussians with equal ``std``; returns ``x (n, 1)`` and
    the component of each draw."""
    m = np.asarray(means, float)
    w = np.full(m.size, 1.0 / m.size) if weights is None else np.asarray(weights, float)
    comp = rng.choice(m.size, size=n, p=w / w.sum())
    return (m[comp] + std * rng.standard_normal(n))[:, None], comp
