"""Key-value lookup: a single attention layer that learns to retrieve the value stored under a
queried key; and softmax saturation (how peaked attention weights get, and how small their
gradient, for growing width, with and without the ``1/sqrt(d)`` scale)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from onnx import GraphProto

from demolib import nets
from demolib.attention.common import _onnx_attention, _t, attention, attention_backward, cross_entropy
from demolib.graph import Graph, tensor
from demolib.nets import softmax

# --------------------------------------------------------------------------- key-value lookup


@dataclass
class LookupData:
    """A batch of the lookup task.

    Each example stores ``L`` (key, value) pairs with distinct keys out of ``n_keys`` symbols and
    values out of ``n_values``; it asks ``L`` queries, the same keys in another order. The answer
    to query ``i`` is ``labels[:, i]``, stored at position ``match[:, i]``.
    """

    queries: np.ndarray  # (B, L, n_keys) one-hot queried keys
    pairs: np.ndarray  # (B, L, n_keys + n_values) one-hot key ‖ one-hot value
    labels: np.ndarray  # (B, L) value asked for by each query
    match: np.ndarray  # (B, L) position of the queried key among the pairs
    keys: np.ndarray  # (B, L) key symbol at each position
    values: np.ndarray  # (B, L) value symbol at each position


def lookup_batch(rng: np.random.Generator, n: int, length: int, n_keys: int, n_values: int) -> LookupData:
    """``n`` random lookup examples with ``length`` pairs each (see ``LookupData``)."""
    if length > n_keys:
        raise ValueError("need at least as many key symbols as pairs")
    keys = np.argsort(rng.random((n, n_keys)), axis=1)[:, :length]  # distinct keys per example
    values = rng.integers(0, n_values, (n, length))
    match = np.argsort(rng.random((n, length)), axis=1)  # query i asks for the key at match[i]
    rows = np.arange(n)[:, None]
    asked = keys[rows, match]
    eye_k, eye_v = np.eye(n_keys), np.eye(n_values)
    pairs = np.concatenate([eye_k[keys], eye_v[values]], axis=-1)
    return LookupData(eye_k[asked], pairs, values[rows, match], match, keys, values)


@dataclass
class Lookup:
    """One attention layer plus a linear readout: ``logits = attention(q Wq, x Wk, x Wv) Wo + bo``."""

    Wq: np.ndarray
    Wk: np.ndarray
    Wv: np.ndarray
    Wo: np.ndarray
    bo: np.ndarray
    scale: float

    def params(self) -> list[np.ndarray]:
        return [self.Wq, self.Wk, self.Wv, self.Wo, self.bo]


def init_lookup(rng: np.random.Generator, n_keys: int, n_values: int, d: int, *, scaled: bool = True) -> Lookup:
    """Random weights; query/key/value width ``d``; ``scaled`` uses ``1/sqrt(d)`` (else 1)."""
    d_in = n_keys + n_values
    return Lookup(
        Wq=rng.normal(0.0, 1.0, (n_keys, d)),
        Wk=rng.normal(0.0, 1.0 / np.sqrt(2.0), (d_in, d)),  # two one-hot parts: unit-variance keys
        Wv=rng.normal(0.0, 1.0 / np.sqrt(2.0), (d_in, d)),
        Wo=rng.normal(0.0, 1.0 / np.sqrt(d), (d, n_values)),
        bo=np.zeros(n_values),
        scale=1.0 / np.sqrt(d) if scaled else 1.0,
    )


def lookup_forward(model: Lookup, data: LookupData) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Logits ``(B, L, n_values)`` and the cache (including the weights ``P``)."""
    Q, K, V = data.queries @ model.Wq, data.pairs @ model.Wk, data.pairs @ model.Wv
    Z, P = attention(Q, K, V, model.scale)
    return Z @ model.Wo + model.bo, {"Q": Q, "K": K, "V": V, "Z": Z, "P": P}


def lookup_backward(model: Lookup, data: LookupData, cache: dict[str, np.ndarray], dlogits: np.ndarray
                    ) -> list[np.ndarray]:
    """Gradients in ``Lookup.params()`` order."""
    d = cache["Z"].shape[-1]
    dWo = cache["Z"].reshape(-1, d).T @ dlogits.reshape(-1, dlogits.shape[-1])
    dbo = dlogits.reshape(-1, dlogits.shape[-1]).sum(axis=0)
    dQ, dK, dV = attention_backward(dlogits @ model.Wo.T, cache["Q"], cache["K"], cache["V"], cache["P"],
                                    model.scale)

    def outer(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return x.reshape(-1, x.shape[-1]).T @ g.reshape(-1, g.shape[-1])

    return [outer(data.queries, dQ), outer(data.pairs, dK), outer(data.pairs, dV), dWo, dbo]


def train_lookup(model: Lookup, rng: np.random.Generator, *, steps: int, batch: int, length: int,
                 lr: float = 0.02) -> list[float]:
    """Adam on fresh batches of the lookup task; returns the training loss per step."""
    n_keys, n_values = model.Wq.shape[0], model.Wo.shape[1]
    opt = nets.Adam(lr=lr)
    params = model.params()
    losses = []
    for _ in range(steps):
        data = lookup_batch(rng, batch, length, n_keys, n_values)
        logits, cache = lookup_forward(model, data)
        loss, dlogits = cross_entropy(logits, data.labels)
        opt.step(params, lookup_backward(model, data, cache, dlogits))
        losses.append(loss)
    return losses


def export_lookup(model: Lookup, name: str = "lookup_attention") -> GraphProto:
    """Inputs ``queries (N, L, n_keys)`` and ``pairs (N, L, n_keys + n_values)``; outputs ``logits
    (N, L, n_values)`` and the attention ``weights (N, L, L)``: MatMul, Transpose, Softmax nodes."""
    g = Graph()
    q = g.op("MatMul", ["queries", g.const("W_query", model.Wq)], "Q")
    k = g.op("MatMul", ["pairs", g.const("W_key", model.Wk)], "K")
    v = g.op("MatMul", ["pairs", g.const("W_value", model.Wv)], "V")
    o, w = _onnx_attention(g, q, k, v, model.scale, "attn_")
    g.op("Identity", [w], "weights")
    z = g.op("MatMul", [o, g.const("W_out", model.Wo)], "readout")
    g.op("Add", [z, g.const("b_out", model.bo)], "logits")
    n_keys, d_in, n_values = model.Wq.shape[0], model.Wk.shape[0], model.Wo.shape[1]
    return g.build(
        name,
        [tensor("queries", ["N", "L", n_keys]), tensor("pairs", ["N", "L", d_in])],
        [tensor("logits", ["N", "L", n_values]), tensor("weights", ["N", "L", "L"])],
        f"single-head attention lookup, d={model.Wq.shape[1]}, scale={model.scale:.6g}",
    )


# --------------------------------------------------------------------------- softmax saturation


def softmax_jacobian_norm(p: np.ndarray) -> np.ndarray:
    """Frobenius norm of the softmax Jacobian ``diag(p) - p p^T`` for each row of ``p``.

    ``||J||_F^2 = sum p_i^2 - 2 sum p_i^3 + (sum p_i^2)^2``.
    """
    s2 = np.sum(p * p, axis=-1)
    return np.sqrt(np.maximum(s2 - 2.0 * np.sum(p**3, axis=-1) + s2 * s2, 0.0))


@dataclass
class Saturation:
    """Per width ``d``: mean largest weight and mean softmax-Jacobian norm, scaled or not."""

    dims: np.ndarray
    max_weight: dict[str, np.ndarray]  # "scaled" / "unscaled" -> (len(dims),)
    jacobian: dict[str, np.ndarray]
    score_std: dict[str, np.ndarray]


def saturation(rng: np.random.Generator, dims: Sequence[int], n_keys: int = 16, trials: int = 200) -> Saturation:
    """Queries and keys with independent N(0, 1) entries, ``trials`` queries against ``n_keys``
    keys each, for every width in ``dims``; the same draws are used with and without scaling."""
    dims_arr = np.asarray(dims, int)
    out: dict[str, dict[str, list[float]]] = {k: {"scaled": [], "unscaled": []} for k in ("max", "jac", "std")}
    for d in dims_arr:
        q = rng.normal(size=(trials, 1, d))
        k = rng.normal(size=(trials, n_keys, d))
        raw = (q @ _t(k))[:, 0, :]
        for name, s in (("scaled", raw / np.sqrt(d)), ("unscaled", raw)):
            p = softmax(s)
            out["max"][name].append(float(p.max(axis=-1).mean()))
            out["jac"][name].append(float(softmax_jacobian_norm(p).mean()))
            out["std"][name].append(float(s.std()))
    arr = {k: {n: np.array(v) for n, v in d.items()} for k, d in out.items()}
    return Saturation(dims_arr, arr["max"], arr["jac"], arr["std"])
