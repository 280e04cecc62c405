"""Related source and target tasks, and training with frozen parts: ``related_tasks``,
``make_setup``, ``fit`` (only the arrays flagged in ``trainable`` move), ``top_layers``,
``head_only``, ``with_new_head``, ``with_head_of`` and small metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from demolib import nets

if TYPE_CHECKING:
    from demolib.transfer.adapters import AdapterMLP
    from demolib.transfer.prefix import AttentionClassifier

# --------------------------------------------------------------------------- related tasks


@dataclass(frozen=True)
class Teacher:
    """Labels ``argmax(tanh(tanh(x @ A) @ C) @ B)`` for inputs ``x ~ N(0, I)``: low-level
    features ``tanh(x @ A)``, high-level features built from them, and a class readout."""

    A: np.ndarray  # (d_in, n_low)
    C: np.ndarray  # (n_low, n_high)
    B: np.ndarray  # (n_high, n_classes)

    @property
    def n_classes(self) -> int:
        return self.B.shape[1]

    def labels(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(np.tanh(np.tanh(X @ self.A) @ self.C) @ self.B, axis=1).astype(np.int64)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        X = rng.standard_normal((n, self.A.shape[0]))
        return X, self.labels(X)


def related_tasks(
    rng: np.random.Generator,
    *,
    d_in: int = 16,
    n_low: int = 8,
    n_high: int = 6,
    source_classes: int = 8,
    target_classes: int = 3,
    shift: float = 0.8,
    gain: float = 1.5,
) -> tuple[Teacher, Teacher]:
    """A source and a target teacher with the same low-level features and related high-level ones.

    Both use ``tanh(x @ A)``. The target's high-level weights are
    ``C_t = cos(shift) C + sin(shift) R`` (``R`` an independent draw of the same scale):
    ``shift = 0`` gives identical high-level features, ``pi/2`` unrelated ones. Each task has its
    own random class readout (and number of classes).
    """
    A = rng.standard_normal((d_in, n_low)) * (gain / np.sqrt(d_in))
    C = rng.standard_normal((n_low, n_high)) * (gain / np.sqrt(n_low))
    R = rng.standard_normal((n_low, n_high)) * (gain / np.sqrt(n_low))
    C_t = np.cos(shift) * C + np.sin(shift) * R
    B_s = rng.standard_normal((n_high, source_classes))
    B_t = rng.standard_normal((n_high, target_classes))
    return Teacher(A, C, B_s), Teacher(A, C_t, B_t)


@dataclass
class TransferSetup:
    """Data for a source and a related target task, and an MLP pretrained on the source.

    The source has plenty of training data; the target has few training examples, a validation
    set (for early stopping) and a test set (for the numbers a demo reports).
    """

    source: Teacher
    target: Teacher
    X_source: np.ndarray
    y_source: np.ndarray
    X_source_val: np.ndarray
    y_source_val: np.ndarray
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    pretrained: nets.MLP
    pretrain_steps: int


def make_setup(
    rng: np.random.Generator,
    *,
    n_source: int = 10000,
    n_target: int = 100,
    n_eval: int = 500,
    width: int = 64,
    shift: float = 0.8,
    pretrain_steps: int = 600,
) -> TransferSetup:
    """Related tasks (``related_tasks`` with its defaults: 16 inputs, 8 source and 3 target
    classes) and a ``16-width-width-8`` ReLU MLP pretrained on ``n_source`` source
    examples (Adam, learning rate 0.01, ``pretrain_steps`` mini-batches of 128)."""
    source, target = related_tasks(rng, shift=shift)
    Xs, ys = source.sample(rng, n_source)
    Xsv, ysv = source.sample(rng, n_eval)
    Xt, yt = target.sample(rng, n_target)
    Xv, yv = target.sample(rng, n_eval)
    Xte, yte = target.sample(rng, n_eval)
    net = nets.init_mlp(rng, [16, width, width, source.n_classes])
    fit(net, Xs, ys, nets.Adam(lr=0.01), steps=pretrain_steps, rng=rng, batch_size=128)
    return TransferSetup(source, target, Xs, ys, Xsv, ysv, Xt, yt, Xv, yv, Xte, yte, net,
                         pretrain_steps)


# --------------------------------------------------------------------------- MLP fine-tuning


def mlp_loss_grads(net: nets.MLP, X: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """Softmax cross-entropy of ``net`` on ``(X, y)`` and its gradients w.r.t. ``net.params()``."""
    out, cache = nets.forward(net, X, train=True)
    loss, dout = nets.softmax_cross_entropy(out, y)
    return loss, nets.backward(net, cache, dout)


def fit(
    model: nets.MLP | AdapterMLP | AttentionClassifier,
    X: np.ndarray,
    y: np.ndarray,
    opt: nets.Optimizer,
    *,
    steps: int,
    trainable: Sequence[bool] | None = None,
    rng: np.random.Generator | None = None,
    batch_size: int | None = None,
    evaluate: Callable[[object], float] | None = None,
    eval_every: int = 0,
    restore_best: bool = False,
) -> list[tuple[int, float]]:
    """Train ``model`` in place with softmax cross-entropy; only ``trainable`` parameters move.

    ``model`` is a ``nets.MLP`` or anything with ``params()`` and ``loss_grads(X, y, trainable)``
    (which may skip, and return ``None`` for, the gradients of frozen arrays).
    ``trainable`` has one flag per array of ``model.params()`` (all ``True`` if omitted); frozen
    arrays get no update at all (not even weight decay). Mini-batches (``batch_size``) walk
    through a fresh permutation of the data each epoch and need ``rng``. Every ``eval_every``
    steps (and at step 0 and the end) ``evaluate(model)`` is recorded as ``(step, value)``; with
    ``restore_best`` the parameters of the evaluation with the lowest value are put back at the
    end (early stopping with the best checkpoint, judged on whatever ``evaluate`` measures).
    """
    params = model.params()
    flags = [True] * len(params) if trainable is None else list(trainable)
    if len(flags) != len(params):
        raise ValueError(f"{len(flags)} trainable flags for {len(params)} parameter arrays")
    if isinstance(model, nets.MLP) and model.batchnorm is None and not model.dropout \
            and flags == head_only(model):
        # Only the output layer trains: its inputs never change, so compute them once.
        X = nets.forward(model, X)[1].inputs[-1]
        W, b = model.weights[-1], model.biases[-1]

        def loss_grads(fb: np.ndarray, yb: np.ndarray, _flags: Sequence[bool]) -> tuple[float, list]:
            loss, dout = nets.softmax_cross_entropy(fb @ W + b, yb)
            return loss, [None] * (len(params) - 2) + [fb.T @ dout, dout.sum(axis=0)]
    elif isinstance(model, nets.MLP):
        def loss_grads(xb: np.ndarray, yb: np.ndarray, _flags: Sequence[bool]) -> tuple[float, list]:
            return mlp_loss_grads(model, xb, yb)
    else:
        loss_grads = model.loss_grads
    chosen = [p for p, f in zip(params, flags, strict=True) if f]
    mask = [p.ndim == 2 for p in chosen]
    curve: list[tuple[int, float]] = []
    best: tuple[float, list[np.ndarray]] | None = None

    def record(step: int) -> None:
        nonlocal best
        value = float(evaluate(model))
        curve.append((step, value))
        if restore_best and (best is None or value < best[0]):
            best = (value, [p.copy() for p in chosen])

    if evaluate is not None and eval_every:
        record(0)
    n = len(X)
    order, pos = np.arange(n), n
    for s in range(1, steps + 1):
        if batch_size is None or batch_size >= n:
            xb, yb = X, y
        else:
            if pos + batch_size > n:
                if rng is None:
                    raise ValueError("mini-batches need rng")
                order, pos = rng.permutation(n), 0
            idx = order[pos : pos + batch_size]
            pos += batch_size
            xb, yb = X[idx], y[idx]
        grads = loss_grads(xb, yb, flags)[1]
        opt.step(chosen, [g for g, f in zip(grads, flags, strict=True) if f], mask)
        if evaluate is not None and eval_every and (s % eval_every == 0 or s == steps):
            record(s)
    if best is not None:
        for p, saved in zip(chosen, best[1], strict=True):
            p[...] = saved
    return curve


def top_layers(net: nets.MLP, k: int) -> list[bool]:
    """``trainable`` flags for training only the last ``k`` layers (weights and biases); the
    layers below stay frozen. ``k = 1`` trains only the output layer (the head)."""
    if net.batchnorm is not None:
        raise ValueError("top_layers assumes an MLP without BatchNorm (two arrays per layer)")
    if not 1 <= k <= len(net.weights):
        raise ValueError(f"k must be in 1..{len(net.weights)}, got {k}")
    n_frozen = len(net.weights) - k
    return [i // 2 >= n_frozen for i in range(2 * len(net.weights))]


def head_only(net: nets.MLP) -> list[bool]:
    """``trainable`` flags for training only the output layer (the body stays frozen)."""
    return top_layers(net, 1)


def with_new_head(net: nets.MLP, n_out: int, rng: np.random.Generator, *, scale: float = 0.01) -> nets.MLP:
    """A copy of ``net`` whose output layer is replaced by a fresh small random one (``n_out``
    outputs): the usual start of fine-tuning a pretrained body on a task with its own labels."""
    new = net.copy()
    fan_in = new.weights[-1].shape[0]
    new.weights[-1] = rng.standard_normal((fan_in, n_out)) * scale
    new.biases[-1] = np.zeros(n_out)
    return new


def with_head_of(body: nets.MLP, head: nets.MLP) -> nets.MLP:
    """``body``'s hidden layers with ``head``'s output layer (e.g. to re-measure the source task
    on a body that was fine-tuned for the target)."""
    new = body.copy()
    new.weights[-1] = head.weights[-1].copy()
    new.biases[-1] = head.biases[-1].copy()
    return new


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy (float64)."""
    return nets.softmax_cross_entropy(np.asarray(logits, np.float64), labels)[0]


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def n_params(arrays: Sequence[np.ndarray]) -> int:
    return int(sum(a.size for a in arrays))
