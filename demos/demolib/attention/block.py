"""A one-block pre-LayerNorm transformer (self-attention + ReLU MLP with residuals) on token
vectors, with its LayerNorm, hand-written backward pass, training loop and ONNX export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from onnx import GraphProto

from demolib import nets
from demolib.attention.common import _onnx_attention, _outer, _rows, attention, attention_backward, cross_entropy
from demolib.graph import Graph, tensor

# --------------------------------------------------------------------------- layer norm


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
               ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Normalise the last axis (biased variance, as ONNX LayerNormalization); returns the output
    and the cache ``(x_hat, 1/sigma)``."""
    inv_n = 1.0 / x.shape[-1]
    xc = x - x.sum(axis=-1, keepdims=True) * inv_n
    inv = 1.0 / np.sqrt(np.einsum("...i,...i->...", xc, xc)[..., None] * inv_n + eps)
    xhat = xc * inv
    return xhat * gamma + beta, (xhat, inv)


def layer_norm_backward(dy: np.ndarray, gamma: np.ndarray, cache: tuple[np.ndarray, np.ndarray]
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dgamma, dbeta)`` of ``layer_norm``."""
    xhat, inv = cache
    inv_n = 1.0 / dy.shape[-1]
    dxhat = dy * gamma
    proj = np.einsum("...i,...i->...", dxhat, xhat)[..., None] * inv_n
    dx = inv * (dxhat - dxhat.sum(axis=-1, keepdims=True) * inv_n - xhat * proj)
    flat_dy, flat_xhat = dy.reshape(-1, dy.shape[-1]), xhat.reshape(-1, dy.shape[-1])
    return dx, np.einsum("ni,ni->i", flat_dy, flat_xhat), flat_dy.sum(axis=0)


# --------------------------------------------------------------------------- transformer block


@dataclass
class Block:
    """A one-block pre-LayerNorm transformer on ``L`` input vectors of width ``d_in``.

    ``x0 = x We + pos``; ``x1 = x0 + attention(LN1(x0)) Wo``; ``x2 = x1 + MLP(LN2(x1))`` with
    ``MLP(c) = relu(c W1 + b1) W2 + b2``; then (mean over tokens if ``pool``) ``LNf`` and
    ``logits = . Wout + bout``. ``use_pos`` / ``use_attention`` switch the positional embedding /
    the attention sub-layer off for ablations (their parameters are then unused).
    """

    We: np.ndarray
    pos: np.ndarray
    g1: np.ndarray
    b1: np.ndarray
    Wq: np.ndarray
    Wk: np.ndarray
    Wv: np.ndarray
    Wo: np.ndarray
    g2: np.ndarray
    b2: np.ndarray
    W1: np.ndarray
    c1: np.ndarray
    W2: np.ndarray
    c2: np.ndarray
    gf: np.ndarray
    bf: np.ndarray
    Wout: np.ndarray
    bout: np.ndarray
    pool: bool = False
    use_pos: bool = True
    use_attention: bool = True

    NAMES = ("We", "pos", "g1", "b1", "Wq", "Wk", "Wv", "Wo", "g2", "b2", "W1", "c1", "W2", "c2",
             "gf", "bf", "Wout", "bout")

    def params(self) -> list[np.ndarray]:
        return [getattr(self, n) for n in self.NAMES]

    def copy(self) -> Block:
        return Block(*(p.copy() for p in self.params()), pool=self.pool, use_pos=self.use_pos,
                     use_attention=self.use_attention)

    @property
    def scale(self) -> float:
        return 1.0 / np.sqrt(self.Wq.shape[1])


def init_block(rng: np.random.Generator, d_in: int, length: int, d: int, d_mlp: int, n_out: int, *,
               pool: bool = False, use_pos: bool = True, use_attention: bool = True) -> Block:
    """Random weights (normal, variance 1/fan-in; embeddings std 1), LayerNorms at identity."""

    def w(fan_in: int, fan_out: int) -> np.ndarray:
        return rng.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_in, fan_out))

    ones, zeros = np.ones(d), np.zeros(d)
    return Block(
        We=w(d_in, d), pos=rng.normal(0.0, 1.0, (length, d)),
        g1=ones.copy(), b1=zeros.copy(), Wq=w(d, d), Wk=w(d, d), Wv=w(d, d), Wo=w(d, d),
        g2=ones.copy(), b2=zeros.copy(), W1=w(d, d_mlp), c1=np.zeros(d_mlp), W2=w(d_mlp, d), c2=zeros.copy(),
        gf=ones.copy(), bf=zeros.copy(), Wout=w(d, n_out), bout=np.zeros(n_out),
        pool=pool, use_pos=use_pos, use_attention=use_attention,
    )


def block_forward(m: Block, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Logits (``(B, n_out)`` if pooled, else ``(B, L, n_out)``) and the cache; ``cache["P"]``
    holds the attention weights ``(B, L, L)`` (absent without attention)."""
    c: dict = {"x": x}
    x0 = x @ m.We + (m.pos if m.use_pos else 0.0)
    x1 = x0
    if m.use_attention:
        a, c["ln1"] = layer_norm(x0, m.g1, m.b1)
        Q, K, V = a @ m.Wq, a @ m.Wk, a @ m.Wv
        Z, P = attention(Q, K, V, m.scale)
        x1 = x0 + Z @ m.Wo
        c.update(a=a, Q=Q, K=K, V=V, Z=Z, P=P)
    h, c["ln2"] = layer_norm(x1, m.g2, m.b2)
    pre = h @ m.W1 + m.c1
    r = np.maximum(pre, 0.0)
    x2 = x1 + r @ m.W2 + m.c2
    pooled = x2.mean(axis=1) if m.pool else x2
    f, c["lnf"] = layer_norm(pooled, m.gf, m.bf)
    c.update(h=h, pre=pre, r=r, f=f)
    return f @ m.Wout + m.bout, c


def block_backward(m: Block, c: dict, dlogits: np.ndarray) -> list[np.ndarray]:
    """Gradients in ``Block.params()`` order (zeros for switched-off parts)."""
    g = {n: np.zeros_like(getattr(m, n)) for n in Block.NAMES}
    g["Wout"], g["bout"] = _outer(c["f"], dlogits), _rows(dlogits)
    df = dlogits @ m.Wout.T
    dpooled, g["gf"], g["bf"] = layer_norm_backward(df, m.gf, c["lnf"])
    L = c["x"].shape[1]
    dx2 = np.repeat(dpooled[:, None, :] / L, L, axis=1) if m.pool else dpooled
    # MLP sub-layer
    g["W2"], g["c2"] = _outer(c["r"], dx2), _rows(dx2)
    dpre = (dx2 @ m.W2.T) * (c["pre"] > 0.0)
    g["W1"], g["c1"] = _outer(c["h"], dpre), _rows(dpre)
    dh = dpre @ m.W1.T
    dln2, g["g2"], g["b2"] = layer_norm_backward(dh, m.g2, c["ln2"])
    dx1 = dx2 + dln2
    dx0 = dx1
    if m.use_attention:
        dZ = dx1 @ m.Wo.T
        g["Wo"] = _outer(c["Z"], dx1)
        dQ, dK, dV = attention_backward(dZ, c["Q"], c["K"], c["V"], c["P"], m.scale)
        g["Wq"], g["Wk"], g["Wv"] = _outer(c["a"], dQ), _outer(c["a"], dK), _outer(c["a"], dV)
        da = dQ @ m.Wq.T + dK @ m.Wk.T + dV @ m.Wv.T
        dln1, g["g1"], g["b1"] = layer_norm_backward(da, m.g1, c["ln1"])
        dx0 = dx1 + dln1
    g["We"] = _outer(c["x"], dx0)
    if m.use_pos:
        g["pos"] = dx0.sum(axis=0)
    return [g[n] for n in Block.NAMES]


def train_block(m: Block, batches: Callable[[int], tuple[np.ndarray, np.ndarray]], *, steps: int,
                lr: float = 0.01, final_lr: float | None = None) -> list[float]:
    """Adam on ``batches(step) -> (x, labels)``; cross-entropy; returns the loss per step. The
    learning rate falls linearly from ``lr`` to ``final_lr`` (default: stays at ``lr``)."""
    opt = nets.Adam(lr=lr)
    params = m.params()
    losses = []
    end = lr if final_lr is None else final_lr
    for s in range(steps):
        opt.lr = lr + (end - lr) * s / max(steps - 1, 1)
        x, y = batches(s)
        logits, cache = block_forward(m, x)
        loss, dlogits = cross_entropy(logits, y)
        opt.step(params, block_backward(m, cache, dlogits))
        losses.append(loss)
    return losses


def export_block(m: Block, name: str = "transformer_block") -> GraphProto:
    """Input ``x (N, L, d_in)``; outputs ``logits`` and the attention ``weights (N, L, L)`` (when
    attention is on). Nodes: MatMul/Add embedding, LayerNormalization (opset 17), MatMul,
    Transpose, Softmax, Relu, ReduceMean for pooling."""
    g = Graph()
    L, d_in, n_out = m.pos.shape[0], m.We.shape[0], m.Wout.shape[1]
    x0 = g.op("MatMul", ["x", g.const("W_embed", m.We)], "embedded")
    if m.use_pos:
        x0 = g.op("Add", [x0, g.const("pos_embed", m.pos)], "x0")

    def ln(x: str, gamma: np.ndarray, beta: np.ndarray, tag: str) -> str:
        return g.op("LayerNormalization", [x, g.const(f"{tag}_scale", gamma), g.const(f"{tag}_bias", beta)],
                    tag, axis=-1, epsilon=1e-5)

    outputs = []
    x1 = x0
    if m.use_attention:
        a = ln(x0, m.g1, m.b1, "ln1")
        q = g.op("MatMul", [a, g.const("W_query", m.Wq)], "Q")
        k = g.op("MatMul", [a, g.const("W_key", m.Wk)], "K")
        v = g.op("MatMul", [a, g.const("W_value", m.Wv)], "V")
        z, w = _onnx_attention(g, q, k, v, m.scale, "attn_")
        g.op("Identity", [w], "weights")
        outputs.append(tensor("weights", ["N", L, L]))
        x1 = g.op("Add", [x0, g.op("MatMul", [z, g.const("W_attn_out", m.Wo)], "attn_out")], "x1")
    h = ln(x1, m.g2, m.b2, "ln2")
    r = g.op("Relu", [g.op("Add", [g.op("MatMul", [h, g.const("W_mlp1", m.W1)]), g.const("b_mlp1", m.c1)])])
    mlp = g.op("Add", [g.op("MatMul", [r, g.const("W_mlp2", m.W2)]), g.const("b_mlp2", m.c2)], "mlp_out")
    x2 = g.op("Add", [x1, mlp], "x2")
    if m.pool:
        x2 = g.op("ReduceMean", [x2], "pooled", axes=[1], keepdims=0)
    f = ln(x2, m.gf, m.bf, "lnf")
    g.op("Add", [g.op("MatMul", [f, g.const("W_head", m.Wout)]), g.const("b_head", m.bout)], "logits")
    shape = ["N", n_out] if m.pool else ["N", L, n_out]
    return g.build(name, [tensor("x", ["N", L, d_in])], [tensor("logits", shape), *outputs],
                   f"one pre-LN transformer block, d={m.Wq.shape[1]}, pos={m.use_pos}, attention={m.use_attention}")
