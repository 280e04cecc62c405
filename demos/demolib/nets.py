"""A tiny multilayer perceptron in NumPy: forward, manual backprop, losses and optimisers.

Layout of one hidden layer: ``Gemm -> [BatchNorm] -> ReLU|tanh -> [Dropout]``; the output layer is
a plain ``Gemm`` producing logits / predictions. Weights are ``(fan_in, fan_out)`` so a layer is
``a @ W + b`` (the same as ONNX ``Gemm`` without transposes). Training runs in float64.

Conventions (chosen to match ONNX / ONNX Runtime so exported models agree):

* Dropout is *inverted*: in training a unit is kept with probability ``1 - p`` and scaled by
  ``1 / (1 - p)``; at inference it is the identity.
* BatchNorm uses batch statistics in training and running statistics at inference. Running stats
  follow ONNX: ``running = momentum * running + (1 - momentum) * batch`` with the *biased* batch
  variance.
* ``SGD(l2=...)`` and ``Adam(l2=...)`` add ``l2 * w`` to the gradient (coupled L2);
  ``weight_decay=...`` shrinks ``w *= 1 - lr * weight_decay`` outside the gradient (decoupled, as
  in PyTorch's AdamW). Only weight matrices are decayed, not biases or BatchNorm parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from demolib.activations import activate, output_derivative
from demolib.activations import sigmoid as sigmoid  # re-exported
from demolib.dense import DenseLayers, init_dense
from demolib.optimizers import SGD as SGD  # re-exported: nets.SGD / Adam / AdamW are the demos' names
from demolib.optimizers import Adam as Adam
from demolib.optimizers import AdamW as AdamW
from demolib.optimizers import Optimizer

Activation = Literal["relu", "tanh"]
LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


# --------------------------------------------------------------------------- model


@dataclass
class BatchNorm:
    """Per-feature batch normalisation parameters and running statistics."""

    gamma: np.ndarray
    beta: np.ndarray
    running_mean: np.ndarray
    running_var: np.ndarray
    momentum: float = 0.9
    eps: float = 1e-5

    @classmethod
    def identity(cls, width: int, *, momentum: float = 0.9, eps: float = 1e-5) -> BatchNorm:
        """gamma=1, beta=0, running mean 0 and variance 1."""
        return cls(np.ones(width), np.zeros(width), np.zeros(width), np.ones(width), momentum, eps)

    def copy(self) -> BatchNorm:
        return replace(
            self,
            gamma=self.gamma.copy(),
            beta=self.beta.copy(),
            running_mean=self.running_mean.copy(),
            running_var=self.running_var.copy(),
        )


@dataclass
class MLP(DenseLayers):
    """Weights of a fully connected net; ``weights[i]`` has shape ``(sizes[i], sizes[i+1])``."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: Activation = "relu"
    dropout: float = 0.0
    batchnorm: list[BatchNorm] | None = None

    def params(self) -> list[np.ndarray]:
        """Trainable arrays in a fixed order (W0, b0, [gamma0, beta0], W1, ...)."""
        out: list[np.ndarray] = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out += [w, b]
            if self.batchnorm is not None and i < self.n_hidden:
                out += [self.batchnorm[i].gamma, self.batchnorm[i].beta]
        return out

    def decay_mask(self) -> list[bool]:
        """True for the parameters weight decay / L2 applies to (the weight matrices)."""
        return [p.ndim == 2 for p in self.params()]

    def weight_norm(self) -> float:
        """Euclidean norm of all weight matrices together (biases excluded)."""
        return float(np.sqrt(sum(float(np.sum(w * w)) for w in self.weights)))

    def copy(self) -> MLP:
        return replace(
            self,
            weights=[w.copy() for w in self.weights],
            biases=[b.copy() for b in self.biases],
            batchnorm=None if self.batchnorm is None else [bn.copy() for bn in self.batchnorm],
        )


def init_mlp(
    rng: np.random.Generator,
    sizes: Sequence[int],
    *,
    activation: Activation = "relu",
    dropout: float = 0.0,
    batchnorm: bool = False,
) -> MLP:
    """Random MLP: He init for ReLU, Glorot-style ``1/fan_in`` variance for tanh; zero biases."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    gain = 2.0 if activation == "relu" else 1.0
    weights, biases = init_dense(rng, sizes, [gain] * (len(sizes) - 1))
    bns = [BatchNorm.identity(n) for n in sizes[1:-1]] if batchnorm else None
    return MLP(weights, biases, activation, dropout, bns)


# --------------------------------------------------------------------------- forward / backward


@dataclass
class Cache:
    """What ``backward`` needs from a forward pass (one entry per hidden layer)."""

    inputs: list[np.ndarray] = field(default_factory=list)  # input to each Gemm
    acts: list[np.ndarray] = field(default_factory=list)  # activation output, before dropout
    masks: list[np.ndarray | None] = field(default_factory=list)
    xhat: list[np.ndarray | None] = field(default_factory=list)  # BN normalised pre-activation
    inv_std: list[np.ndarray | None] = field(default_factory=list)
    batch_mean: list[np.ndarray | None] = field(default_factory=list)
    batch_var: list[np.ndarray | None] = field(default_factory=list)


def dropout_mask(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
    """Inverted-dropout mask: 0 with probability ``p``, else ``1 / (1 - p)``."""
    return (rng.random(shape) >= p) / (1.0 - p)


def forward(
    net: MLP,
    X: np.ndarray,
    *,
    train: bool = False,
    rng: np.random.Generator | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, Cache]:
    """Run the net. ``train=True`` uses batch statistics and dropout.

    Dropout masks come from ``masks`` (one per hidden layer, already scaled) if given, otherwise
    from ``rng``. The forward pass is pure: BatchNorm running stats are updated separately by
    ``update_running_stats``.
    """
    cache = Cache()
    a = X
    for i in range(net.n_hidden):
        cache.inputs.append(a)
        z = a @ net.weights[i] + net.biases[i]
        xhat = inv_std = mean = var = None
        if net.batchnorm is not None:
            bn = net.batchnorm[i]
            if train:
                mean = z.mean(axis=0)
                var = z.var(axis=0)
            else:
                mean, var = bn.running_mean, bn.running_var
            inv_std = 1.0 / np.sqrt(var + bn.eps)
            xhat = (z - mean) * inv_std
            z = xhat * bn.gamma + bn.beta
        h = activate(net.activation, z)
        mask = None
        if train and net.dropout > 0.0:
            if masks is not None:
                mask = masks[i]
            elif rng is not None:
                mask = dropout_mask(rng, h.shape, net.dropout)
            else:
                raise ValueError("training with dropout needs rng or masks")
        cache.acts.append(h)
        cache.masks.append(mask)
        cache.xhat.append(xhat)
        cache.inv_std.append(inv_std)
        cache.batch_mean.append(mean if train else None)
        cache.batch_var.append(var if train else None)
        a = h if mask is None else h * mask
    cache.inputs.append(a)
    return a @ net.weights[-1] + net.biases[-1], cache


def predict(net: MLP, X: np.ndarray) -> np.ndarray:
    """Inference-mode output (running BN stats, no dropout)."""
    return forward(net, X)[0]


def backward(net: MLP, cache: Cache, dout: np.ndarray) -> list[np.ndarray]:
    """Gradients of the loss w.r.t. ``net.params()`` given ``dout = dLoss/dOutput``."""
    grads: list[list[np.ndarray]] = [[] for _ in net.weights]
    a = cache.inputs[-1]
    grads[-1] = [a.T @ dout, dout.sum(axis=0)]
    da = dout @ net.weights[-1].T
    for i in reversed(range(net.n_hidden)):
        mask = cache.masks[i]
        dh = da if mask is None else da * mask
        h = cache.acts[i]
        dz = dh * output_derivative(net.activation, h)
        layer: list[np.ndarray] = []
        if net.batchnorm is not None:
            bn = net.batchnorm[i]
            xhat, inv_std = cache.xhat[i], cache.inv_std[i]
            assert xhat is not None and inv_std is not None
            dgamma = (dz * xhat).sum(axis=0)
            dbeta = dz.sum(axis=0)
            dxhat = dz * bn.gamma
            if cache.batch_mean[i] is not None:  # training mode: stats depend on the batch
                n = dz.shape[0]
                dz = inv_std / n * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
            else:
                dz = dxhat * inv_std
            layer = [dgamma, dbeta]
        x_in = cache.inputs[i]
        grads[i] = [x_in.T @ dz, dz.sum(axis=0), *layer]
        if i > 0:
            da = dz @ net.weights[i].T
    return [g for layer_grads in grads for g in layer_grads]


def update_running_stats(net: MLP, cache: Cache) -> None:
    """Fold a training-mode forward's batch statistics into the BatchNorm running stats."""
    if net.batchnorm is None:
        return
    for bn, mean, var in zip(net.batchnorm, cache.batch_mean, cache.batch_var, strict=True):
        if mean is None or var is None:
            continue
        bn.running_mean *= bn.momentum
        bn.running_mean += (1.0 - bn.momentum) * mean
        bn.running_var *= bn.momentum
        bn.running_var += (1.0 - bn.momentum) * var


# --------------------------------------------------------------------------- losses


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (rows of a 2-D array by default)."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def mse(pred: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error and its gradient w.r.t. ``pred`` (``y`` is reshaped to ``pred``)."""
    r = pred - y.reshape(pred.shape)
    flat = r.ravel()
    return float(flat @ flat) / r.size, (2.0 / r.size) * r


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer ``labels`` under ``softmax(logits)``, and its gradient."""
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    grad = np.exp(logp)
    grad[rows, labels] -= 1.0
    return float(-logp[rows, labels].mean()), grad / n


def logistic_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Binary cross-entropy with logits (labels 0/1, same size as ``logits``) and its gradient."""
    y = labels.reshape(logits.shape).astype(float)
    loss = np.logaddexp(0.0, logits) - y * logits
    return float(loss.mean()), (sigmoid(logits) - y) / logits.size


# --------------------------------------------------------------------------- training loop


@dataclass
class History:
    """Losses recorded during ``fit`` (inference mode: no dropout, running BN stats)."""

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)


def fit(
    net: MLP,
    X: np.ndarray,
    y: np.ndarray,
    loss: LossFn,
    opt: Optimizer,
    *,
    steps: int,
    rng: np.random.Generator | None = None,
    batch_size: int | None = None,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    eval_every: int = 0,
) -> History:
    """Train ``net`` in place for ``steps`` updates (full batch unless ``batch_size``).

    Mini-batches walk through a fresh permutation each epoch. If ``eval_every > 0`` the
    inference-mode training (and validation) loss is recorded every ``eval_every`` steps and at
    the end. ``rng`` is needed for dropout or mini-batches.
    """
    hist = History()
    n = len(X)
    params = net.params()
    mask = net.decay_mask()
    order = np.arange(n)
    pos = n
    for s in range(1, steps + 1):
        if batch_size is None or batch_size >= n:
            xb, yb = X, y
        else:
            if pos + batch_size > n:
                if rng is None:
                    raise ValueError("mini-batches need rng")
                order = rng.permutation(n)
                pos = 0
            idx = order[pos : pos + batch_size]
            pos += batch_size
            xb, yb = X[idx], y[idx]
        out, cache = forward(net, xb, train=True, rng=rng)
        _, dout = loss(out, yb)
        opt.step(params, backward(net, cache, dout), mask)
        update_running_stats(net, cache)
        if eval_every and (s % eval_every == 0 or s == steps):
            hist.step.append(s)
            hist.train_loss.append(loss(predict(net, X), y)[0])
            if X_val is not None and y_val is not None:
                hist.val_loss.append(loss(predict(net, X_val), y_val)[0])
    return hist
