"""A one-layer attention classifier with learned prefix keys and values
(``AttentionClassifier``), its lexicon task (``polarity_lexicons``, ``sample_sequences``) and
``export_attention``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from onnx import GraphProto, TensorProto

from demolib import nets
from demolib.graph import Graph, tensor

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
