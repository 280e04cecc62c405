"""Transfer learning on tiny models: related source and target tasks, fine-tuning with frozen
parts, residual bottleneck adapters, and a one-layer attention classifier with learned prefix
keys and values. Used by the fine-tuning, adapter-layers and prefix-tuning demos.

Everything is float64 NumPy with hand-written backward passes (the tests check them against
finite differences) and ONNX exports (the tests check ONNX Runtime against the NumPy forward):

* **Related tasks** (``related_tasks``, ``make_setup``): random "teacher" networks label
  ``x ~ N(0, I)`` by ``argmax(tanh(tanh(x A) C) B)``. Source and target share the low-level
  features ``tanh(x A)``; the target's high-level weights are rotated away from the source's by
  ``shift`` and it has its own readout and number of classes. ``make_setup`` draws the data and
  pretrains a ReLU MLP on plenty of source examples.
* **Training with frozen parts** (``fit``): Adam/SGD on softmax cross-entropy where only the
  arrays flagged in ``trainable`` move (``top_layers``, ``head_only``,
  ``AdapterMLP.adapter_tuning``, ``AttentionClassifier.prefix_tuning``), with optional
  mini-batches and early stopping that restores the best checkpoint. ``with_new_head`` and
  ``with_head_of`` swap output layers.
* **Adapters** (``AdapterMLP``): a frozen ``nets.MLP`` with a residual bottleneck
  ``h + relu(h Wd + bd) Wu + bu`` after each hidden layer; ``Wu`` starts at zero, so the adapted
  net starts as exactly the pretrained one. ``export_adapter_mlp`` writes it with ``Gemm``,
  ``Relu`` and ``Add`` nodes.
* **Prefix attention** (``AttentionClassifier``, ``polarity_lexicons``, ``sample_sequences``):
  token embeddings, one single-head self-attention layer with a residual connection, mean
  pooling and a linear readout. ``k`` learned prefix keys and values are put in front of every
  sequence's keys and values (the tokens attend to them; they are not tokens themselves).
  ``export_attention`` writes it with ``Gather``, ``MatMul``, ``Expand`` + ``Concat`` for the
  prefix, ``Softmax`` and ``ReduceMean``; a second output returns the attention weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from onnx import GraphProto, TensorProto

from demolib import nets
from demolib.graph import Graph, tensor

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


# --------------------------------------------------------------------------- adapters


@dataclass
class Adapter:
    """A residual bottleneck ``h + relu(h @ Wd + bd) @ Wu + bu`` (``width -> rank -> width``)."""

    Wd: np.ndarray  # (width, rank) down-projection
    bd: np.ndarray  # (rank,)
    Wu: np.ndarray  # (rank, width) up-projection
    bu: np.ndarray  # (width,)

    @classmethod
    def near_identity(cls, rng: np.random.Generator, width: int, rank: int, *,
                      scale: float = 0.01) -> Adapter:
        """A small random down-projection (standard deviation ``scale``) and a zero
        up-projection: the adapter starts as exactly the identity and its bottleneck starts small."""
        return cls(rng.standard_normal((width, rank)) * scale, np.zeros(rank),
                   np.zeros((rank, width)), np.zeros(width))

    def params(self) -> list[np.ndarray]:
        return [self.Wd, self.bd, self.Wu, self.bu]

    def copy(self) -> Adapter:
        return Adapter(*(p.copy() for p in self.params()))


@dataclass
class AdapterMLP:
    """A ReLU ``nets.MLP`` with an ``Adapter`` after every hidden layer.

    ``params()`` lists the MLP's arrays first (``W0, b0, ..., W_out, b_out``), then each adapter's
    ``Wd, bd, Wu, bu``; ``adapter_tuning()`` gives the ``trainable`` flags for training only the
    adapters and the output layer.
    """

    net: nets.MLP
    adapters: list[Adapter]

    @classmethod
    def wrap(cls, net: nets.MLP, rank: int, rng: np.random.Generator, *,
             scale: float = 0.01) -> AdapterMLP:
        """A copy of ``net`` with a near-identity adapter of bottleneck ``rank`` per hidden layer."""
        if net.activation != "relu" or net.batchnorm is not None or net.dropout:
            raise ValueError("adapters are implemented for plain ReLU MLPs")
        return cls(net.copy(), [Adapter.near_identity(rng, w, rank, scale=scale)
                                for w in net.sizes[1:-1]])

    def params(self) -> list[np.ndarray]:
        return self.net.params() + [p for a in self.adapters for p in a.params()]

    def adapter_tuning(self) -> list[bool]:
        n_base = len(self.net.params())
        return [False] * (n_base - 2) + [True, True] + [True] * (4 * len(self.adapters))

    def adapter_params(self) -> list[np.ndarray]:
        return [p for a in self.adapters for p in a.params()]

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, ...]]]:
        """Logits and, per hidden layer, ``(layer input, h, bottleneck u)`` for ``backward``."""
        cache = []
        a = X
        for i, ad in enumerate(self.adapters):
            h = np.maximum(a @ self.net.weights[i] + self.net.biases[i], 0.0)
            u = np.maximum(h @ ad.Wd + ad.bd, 0.0)
            cache.append((a, h, u))
            a = h + u @ ad.Wu + ad.bu
        cache.append((a,))
        return a @ self.net.weights[-1] + self.net.biases[-1], cache

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)[0]

    def backward(self, cache: list[tuple[np.ndarray, ...]], dout: np.ndarray,
                 backbone: bool = True) -> list[np.ndarray | None]:
        """Gradients w.r.t. ``params()`` given ``dout = dLoss/dLogits``. With ``backbone=False``
        the hidden layers' weight and bias gradients are skipped (``None``): adapter tuning
        does not need them."""
        a_last = cache[-1][0]
        net_grads: list[list[np.ndarray | None]] = [[None, None] for _ in self.net.weights]
        ad_grads: list[list[np.ndarray]] = [[] for _ in self.adapters]
        net_grads[-1] = [a_last.T @ dout, dout.sum(axis=0)]
        da = dout @ self.net.weights[-1].T
        for i in reversed(range(len(self.adapters))):
            ad = self.adapters[i]
            a_in, h, u = cache[i]
            du = (da @ ad.Wu.T) * (u > 0.0)
            ad_grads[i] = [h.T @ du, du.sum(axis=0), u.T @ da, da.sum(axis=0)]
            dz = (da + du @ ad.Wd.T) * (h > 0.0)
            if backbone:
                net_grads[i] = [a_in.T @ dz, dz.sum(axis=0)]
            if i > 0:
                da = dz @ self.net.weights[i].T
        return [g for pair in net_grads for g in pair] + [g for quad in ad_grads for g in quad]

    def loss_grads(self, X: np.ndarray, y: np.ndarray,
                   trainable: Sequence[bool] | None = None) -> tuple[float, list[np.ndarray | None]]:
        """Cross-entropy and its gradients (backbone ones only if some backbone array trains)."""
        out, cache = self.forward(X)
        loss, dout = nets.softmax_cross_entropy(out, y)
        n_body = len(self.net.params()) - 2
        backbone = trainable is None or any(trainable[:n_body])
        return loss, self.backward(cache, dout, backbone=backbone)

    def copy(self) -> AdapterMLP:
        return AdapterMLP(self.net.copy(), [a.copy() for a in self.adapters])


# --------------------------------------------------------------------------- lexicon tasks


def polarity_lexicons(
    rng: np.random.Generator, vocab: int = 16, *, n_positive: int = 5, n_negative: int = 5,
    n_changed: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Word scores (+1, -1 or 0) for a source and a target "domain" over the same vocabulary.

    The source has ``n_positive`` positive and ``n_negative`` negative words (the rest neutral);
    in the target, ``n_changed`` randomly chosen words get a different score.
    """
    source = np.zeros(vocab)
    words = rng.permutation(vocab)
    source[words[:n_positive]] = 1.0
    source[words[n_positive : n_positive + n_negative]] = -1.0
    target = source.copy()
    for w in rng.choice(vocab, size=n_changed, replace=False):
        target[w] = rng.choice([s for s in (-1.0, 0.0, 1.0) if s != source[w]])
    return source, target


def sample_sequences(
    rng: np.random.Generator, scores: np.ndarray, n: int, length: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of ``length`` uniform random words with label 1 if their scores sum to
    more than 0 and 0 if less (ties are drawn again): ids ``(n, length)`` int64, labels ``(n,)``."""
    out_ids, out_y, have = [], [], 0
    while have < n:
        ids = rng.integers(0, len(scores), size=(2 * n, length))
        total = scores[ids].sum(axis=1)
        keep = total != 0
        out_ids.append(ids[keep])
        out_y.append((total[keep] > 0).astype(np.int64))
        have += int(keep.sum())
    return np.concatenate(out_ids)[:n], np.concatenate(out_y)[:n]


# --------------------------------------------------------------------------- prefix attention


@dataclass
class AttentionClassifier:
    """Embeddings, one self-attention layer with prefix keys/values, residual, mean pool, readout.

    For token ids ``(N, T)``: ``X = E[ids]``, ``Q, K, V = X Wq, X Wk, X Wv``; the keys and values
    get the ``k`` prefix rows in front, ``K' = [Pk; K]``, ``V' = [Pv; V]`` (shared by all
    sequences); ``A = softmax(Q K'^T / sqrt(d))`` (each token attends to the prefix and to all
    tokens), ``H = X + A V'``, ``logits = mean_t(H) Wr + br``. With ``k = 0`` it is the plain model.
    """

    E: np.ndarray  # (vocab, d)
    Wq: np.ndarray  # (d, d)
    Wk: np.ndarray
    Wv: np.ndarray
    Wr: np.ndarray  # (d, classes)
    br: np.ndarray  # (classes,)
    Pk: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (k, d)
    Pv: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self) -> None:
        if self.Pk.size == 0:
            self.Pk = np.zeros((0, self.d))
            self.Pv = np.zeros((0, self.d))

    @classmethod
    def init(cls, rng: np.random.Generator, vocab: int, d: int, classes: int = 2) -> AttentionClassifier:
        s = 1.0 / np.sqrt(d)
        return cls(rng.standard_normal((vocab, d)), *(rng.standard_normal((d, d)) * s for _ in range(3)),
                   rng.standard_normal((d, classes)) * s, np.zeros(classes))

    @property
    def d(self) -> int:
        return self.E.shape[1]

    @property
    def k(self) -> int:
        return self.Pk.shape[0]

    def params(self) -> list[np.ndarray]:
        return [self.E, self.Wq, self.Wk, self.Wv, self.Wr, self.br, self.Pk, self.Pv]

    def model_params(self) -> list[np.ndarray]:
        """The pretrained model's own arrays (everything but the prefix)."""
        return self.params()[:6]

    def prefix_tuning(self) -> list[bool]:
        """``trainable`` flags for training only the prefix keys and values."""
        return [False] * 6 + [True, True]

    def full_tuning(self) -> list[bool]:
        """``trainable`` flags for training the model's own arrays (and a prefix if present)."""
        return [True] * 8

    def with_prefix(self, Pk: np.ndarray, Pv: np.ndarray) -> AttentionClassifier:
        return replace(self.copy(), Pk=np.array(Pk, float), Pv=np.array(Pv, float))

    def prefix_from_tokens(self, ids: np.ndarray) -> AttentionClassifier:
        """A copy with a prefix initialised to the keys and values of real tokens ``ids``."""
        X = self.E[np.asarray(ids)]
        return self.with_prefix(X @ self.Wk, X @ self.Wv)

    def copy(self) -> AttentionClassifier:
        return AttentionClassifier(*(p.copy() for p in self.params()))

    def forward(self, ids: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Logits ``(N, classes)`` and the cache for ``backward`` (``cache['A']`` holds the
        attention weights ``(N, T, k + T)``, prefix columns first).

        Mean pooling makes the pooled vector ``mean_t(X) + sum_m abar_m V'_m`` with
        ``abar = mean_t(A)``, so ``A V'`` is never formed for every token.
        """
        ids = np.asarray(ids)
        n, T = ids.shape
        d, k = self.d, self.k
        X = self.E[ids]
        QKV = X.reshape(-1, d) @ np.hstack([self.Wq, self.Wk, self.Wv])
        Q = QKV[:, :d].reshape(n, T, d)
        Kc = np.empty((n, k + T, d))
        Vc = np.empty((n, k + T, d))
        Kc[:, :k], Vc[:, :k] = self.Pk, self.Pv
        Kc[:, k:] = QKV[:, d : 2 * d].reshape(n, T, d)
        Vc[:, k:] = QKV[:, 2 * d :].reshape(n, T, d)
        S = Q @ Kc.transpose(0, 2, 1)
        S *= 1.0 / np.sqrt(d)
        S -= S.max(axis=2, keepdims=True)
        A = np.exp(S, out=S)
        A /= A.sum(axis=2, keepdims=True)
        abar = A.mean(axis=1)
        pooled = X.mean(axis=1) + np.einsum("nm,nmd->nd", abar, Vc)
        cache = {"ids": ids, "X": X, "Q": Q, "Kc": Kc, "Vc": Vc, "A": A, "abar": abar,
                 "pooled": pooled}
        return pooled @ self.Wr + self.br, cache

    def predict(self, ids: np.ndarray) -> np.ndarray:
        return self.forward(ids)[0]

    def backward(self, cache: dict[str, np.ndarray], dout: np.ndarray,
                 model: bool = True) -> list[np.ndarray | None]:
        """Gradients w.r.t. ``params()`` given ``dout = dLoss/dLogits``. With ``model=False``
        only the prefix gradients are computed (the others are ``None``): prefix tuning needs
        nothing else.

        With ``g = dLoss/dpooled``, every token's output gets the same gradient ``g / T``, so
        ``dA[n, t, m] = g_n . V'_nm / T`` does not depend on ``t`` and
        ``dV'_nm = abar_nm g_n``.
        """
        ids, X, Q, Kc, Vc, A, abar = (cache[key] for key in ("ids", "X", "Q", "Kc", "Vc", "A", "abar"))
        n, T, d = X.shape
        k = self.k
        g = dout @ self.Wr.T  # (n, d)
        dA = np.einsum("nmd,nd->nm", Vc, g) / T  # (n, k + T), the same for every query token
        dS = A * (dA[:, None, :] - (A @ dA[:, :, None]))  # (n, T, k + T)
        dS *= 1.0 / np.sqrt(d)
        dPk = dS[:, :, :k].reshape(n * T, k).T @ Q.reshape(n * T, d)
        dPv = abar[:, :k].T @ g
        if not model:
            return [None] * 6 + [dPk, dPv]
        dQ = dS @ Kc
        dK = dS[:, :, k:].transpose(0, 2, 1) @ Q
        dV = abar[:, k:, None] * g[:, None, :]
        flat = X.reshape(-1, d)
        dY = np.hstack([dQ.reshape(-1, d), dK.reshape(-1, d), dV.reshape(-1, d)])
        dW = flat.T @ dY
        dX = (dY @ np.vstack([self.Wq.T, self.Wk.T, self.Wv.T])).reshape(n, T, d)
        dX += g[:, None, :] / T
        dE = np.zeros_like(self.E)
        np.add.at(dE, ids.reshape(-1), dX.reshape(-1, d))
        return [dE, dW[:, :d], dW[:, d : 2 * d], dW[:, 2 * d :], cache["pooled"].T @ dout,
                dout.sum(axis=0), dPk, dPv]

    def loss_grads(self, ids: np.ndarray, y: np.ndarray,
                   trainable: Sequence[bool] | None = None) -> tuple[float, list[np.ndarray | None]]:
        """Cross-entropy and its gradients (only the prefix's if nothing else trains)."""
        out, cache = self.forward(ids)
        loss, dout = nets.softmax_cross_entropy(out, y)
        model = trainable is None or any(trainable[:6])
        return loss, self.backward(cache, dout, model=model)


# --------------------------------------------------------------------------- ONNX export


def export_adapter_mlp(model: AdapterMLP, *, name: str = "adapter_mlp") -> GraphProto:
    """The adapted network: per hidden layer ``Gemm -> Relu`` (frozen), then the adapter
    ``Gemm (down) -> Relu -> Gemm (up) -> Add`` (residual); a final ``Gemm`` gives logits ``y``."""
    g = Graph()
    net = model.net
    a = "x"
    for i, ad in enumerate(model.adapters):
        z = g.op("Gemm", [a, g.const(f"W{i}", net.weights[i]), g.const(f"b{i}", net.biases[i])],
                 f"layer{i}")
        h = g.op("Relu", [z], f"h{i}")
        d = g.op("Gemm", [h, g.const(f"adapter{i}_Wd", ad.Wd), g.const(f"adapter{i}_bd", ad.bd)],
                 f"adapter{i}_down")
        u = g.op("Relu", [d], f"adapter{i}_bottleneck")
        r = g.op("Gemm", [u, g.const(f"adapter{i}_Wu", ad.Wu), g.const(f"adapter{i}_bu", ad.bu)],
                 f"adapter{i}_up")
        a = g.op("Add", [h, r], f"adapted{i}")
    n = len(model.adapters)
    g.op("Gemm", [a, g.const(f"W{n}", net.weights[-1]), g.const(f"b{n}", net.biases[-1])], "y")
    sizes = net.sizes
    rank = model.adapters[0].Wd.shape[1] if model.adapters else 0
    return g.build(name, [tensor("x", ["N", sizes[0]])], [tensor("y", ["N", sizes[-1]])],
                   f"MLP {sizes} with bottleneck-{rank} residual adapters")


def export_attention(model: AttentionClassifier, *, name: str = "prefix_attention") -> GraphProto:
    """The attention classifier with its prefix, for int64 token ids ``tokens (N, T)``.

    Outputs ``logits (N, classes)`` and ``attention (N, T, k + T)`` (prefix columns first). The
    prefix keys and values are ``(1, k, d)`` initializers, broadcast to the batch with ``Expand``
    and put in front of the tokens' keys and values with ``Concat`` on axis 1.
    """
    g = Graph()
    d, k = model.d, model.k
    X = g.op("Gather", [g.const("embedding", model.E), "tokens"], "embedded", axis=0)
    Q = g.op("MatMul", [X, g.const("Wq", model.Wq)], "queries")
    K = g.op("MatMul", [X, g.const("Wk", model.Wk)], "token_keys")
    V = g.op("MatMul", [X, g.const("Wv", model.Wv)], "token_values")
    if k:
        batch = g.op("Shape", ["tokens"], "batch_size", start=0, end=1)
        shape = g.op("Concat", [batch, g.const("prefix_shape", np.array([k, d], np.int64))],
                     "prefix_batch_shape", axis=0)
        pk = g.op("Expand", [g.const("prefix_keys", model.Pk[None]), shape], "prefix_keys_batch")
        pv = g.op("Expand", [g.const("prefix_values", model.Pv[None]), shape], "prefix_values_batch")
        K = g.op("Concat", [pk, K], "keys", axis=1)
        V = g.op("Concat", [pv, V], "values", axis=1)
    Kt = g.op("Transpose", [K], "keys_t", perm=[0, 2, 1])
    S = g.op("MatMul", [Q, Kt], "scores_raw")
    S = g.op("Mul", [S, g.const("inv_sqrt_d", np.float32(1.0 / np.sqrt(d)))], "scores")
    A = g.op("Softmax", [S], "attention", axis=-1)
    attended = g.op("MatMul", [A, V], "attended")
    H = g.op("Add", [X, attended], "residual")
    pooled = g.op("ReduceMean", [H], "pooled", axes=[1], keepdims=0)
    g.op("Gemm", [pooled, g.const("Wr", model.Wr), g.const("br", model.br)], "logits")
    n_classes = model.Wr.shape[1]
    inputs = [tensor("tokens", ["N", "T"], TensorProto.INT64)]
    outputs = [tensor("logits", ["N", n_classes]), tensor("attention", ["N", "T", "K"])]
    return g.build(name, inputs, outputs, f"one-layer attention classifier, d={d}, {k} prefix vectors")
