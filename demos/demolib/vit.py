"""A one-block vision transformer in NumPy: images cut into patches, a learnable class token,
pre-LayerNorm single-head attention and MLP, the class token's output read by a linear head;
hand-written backward pass, Adam training loop and ONNX export.

Used by the demo of the vision-transformer term::

    from demolib import vit

* ``patchify(images, p)``: ``(B, H, W)`` images to ``(B, (H/p)(W/p), p*p)`` patch vectors, row by
  row of patches, each patch flattened row by row.
* ``ViT``: ``tokens = [cls; patches We + be] (+ pos)``; ``a = LN1(tokens)``; the class token's query
  ``q = a_0 Wq`` attends over all tokens' keys ``a Wk`` and values ``a Wv``; ``h = cls + (p V) Wo``;
  ``h2 = h + MLP(LN2(h))``; ``logits = LNf(h2) Wout + bout``. With one block only the class
  token's output is read, so only its query is computed (the other tokens' outputs would change
  nothing). ``pool="mean"`` replaces the class token and its attention by the plain average of
  the patch tokens (the no-attention ablation); ``use_pos=False`` drops the position embeddings.

Everything trains in float64; the export takes whole images and cuts the patches itself
(Reshape + Transpose), IR 10 / opset 17.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from onnx import GraphProto

from demolib import nets
from demolib.attention import layer_norm, layer_norm_backward, softmax, softmax_backward
from demolib.graph import Graph, tensor


def patchify(images: np.ndarray, p: int) -> np.ndarray:
    """``(B, H, W)`` to ``(B, N, p*p)`` with ``N = (H/p)(W/p)`` patches in row-major order."""
    b, h, w = images.shape
    grid = images.reshape(b, h // p, p, w // p, p).transpose(0, 1, 3, 2, 4)
    return grid.reshape(b, (h // p) * (w // p), p * p)


@dataclass
class ViT:
    """Parameters of the one-block vision transformer (see the module docstring)."""

    We: np.ndarray
    be: np.ndarray
    cls: np.ndarray
    pos: np.ndarray  # (N + 1, d): row 0 for the class token
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
    pool: str = "cls"  # "cls" (class token + attention) or "mean" (average of patch tokens)
    use_pos: bool = True

    NAMES = ("We", "be", "cls", "pos", "g1", "b1", "Wq", "Wk", "Wv", "Wo", "g2", "b2", "W1", "c1",
             "W2", "c2", "gf", "bf", "Wout", "bout")

    def params(self) -> list[np.ndarray]:
        return [getattr(self, n) for n in self.NAMES]

    @property
    def scale(self) -> float:
        return 1.0 / np.sqrt(self.Wq.shape[1])

    def n_used(self) -> int:
        """Number of parameters this variant actually uses."""
        unused = set() if self.pool == "cls" else {"cls", "g1", "b1", "Wq", "Wk", "Wv", "Wo"}
        if not self.use_pos:
            unused.add("pos")
        return sum(getattr(self, n).size for n in self.NAMES if n not in unused)


def init_vit(rng: np.random.Generator, d_patch: int, n_patches: int, d: int, d_mlp: int, n_out: int, *,
             pool: str = "cls", use_pos: bool = True) -> ViT:
    """Random weights (normal, variance 1/fan-in; class token and positions std 1), LayerNorms at identity."""

    def w(fan_in: int, fan_out: int) -> np.ndarray:
        return rng.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_in, fan_out))

    ones, zeros = np.ones(d), np.zeros(d)
    return ViT(
        We=w(d_patch, d), be=zeros.copy(), cls=rng.normal(0.0, 1.0, d), pos=rng.normal(0.0, 1.0, (n_patches + 1, d)),
        g1=ones.copy(), b1=zeros.copy(), Wq=w(d, d), Wk=w(d, d), Wv=w(d, d), Wo=w(d, d),
        g2=ones.copy(), b2=zeros.copy(), W1=w(d, d_mlp), c1=np.zeros(d_mlp), W2=w(d_mlp, d), c2=zeros.copy(),
        gf=ones.copy(), bf=zeros.copy(), Wout=w(d, n_out), bout=np.zeros(n_out), pool=pool, use_pos=use_pos,
    )


def vit_forward(m: ViT, patches: np.ndarray) -> tuple[np.ndarray, dict]:
    """Logits ``(B, n_out)`` and the cache; ``cache["P"]`` holds the class token's attention
    weights ``(B, N + 1)`` over [class token, patch 1, ..., patch N] (absent for ``pool="mean"``)."""
    b = patches.shape[0]
    c: dict = {"x": patches}
    emb = patches @ m.We + m.be
    tokens = np.concatenate([np.broadcast_to(m.cls, (b, 1, m.cls.size)), emb], axis=1)
    if m.use_pos:
        tokens = tokens + m.pos
    if m.pool == "cls":
        a, c["ln1"] = layer_norm(tokens, m.g1, m.b1)
        q = a[:, 0] @ m.Wq
        K, V = a @ m.Wk, a @ m.Wv
        P = softmax((K @ q[:, :, None])[:, :, 0] * m.scale)
        z = (P[:, None, :] @ V)[:, 0]
        h = tokens[:, 0] + z @ m.Wo
        c.update(a=a, q=q, K=K, V=V, P=P, z=z)
    else:
        h = tokens[:, 1:].mean(axis=1)
    u, c["ln2"] = layer_norm(h, m.g2, m.b2)
    pre = u @ m.W1 + m.c1
    r = np.maximum(pre, 0.0)
    h2 = h + r @ m.W2 + m.c2
    f, c["lnf"] = layer_norm(h2, m.gf, m.bf)
    c.update(u=u, pre=pre, r=r, f=f)
    return f @ m.Wout + m.bout, c


def vit_backward(m: ViT, c: dict, dlogits: np.ndarray) -> list[np.ndarray]:
    """Gradients in ``ViT.params()`` order (zeros for unused parts)."""
    g = {n: np.zeros_like(getattr(m, n)) for n in ViT.NAMES}
    g["Wout"], g["bout"] = c["f"].T @ dlogits, dlogits.sum(axis=0)
    dh2, g["gf"], g["bf"] = layer_norm_backward(dlogits @ m.Wout.T, m.gf, c["lnf"])
    g["W2"], g["c2"] = c["r"].T @ dh2, dh2.sum(axis=0)
    dpre = (dh2 @ m.W2.T) * (c["pre"] > 0.0)
    g["W1"], g["c1"] = c["u"].T @ dpre, dpre.sum(axis=0)
    du, g["g2"], g["b2"] = layer_norm_backward(dpre @ m.W1.T, m.g2, c["ln2"])
    dh = dh2 + du
    x = c["x"]
    b, n, _ = x.shape
    dtokens = np.zeros((b, n + 1, m.cls.size))
    if m.pool == "cls":
        dtokens[:, 0] = dh
        g["Wo"] = c["z"].T @ dh
        dz = dh @ m.Wo.T
        P, V, K, q = c["P"], c["V"], c["K"], c["q"]
        dV = P[..., None] * dz[:, None, :]
        ds = softmax_backward(P, (V @ dz[:, :, None])[:, :, 0]) * m.scale
        dq = (ds[:, None, :] @ K)[:, 0]
        dK = ds[..., None] * q[:, None, :]
        a = c["a"]
        flat_a = a.reshape(-1, a.shape[-1])
        g["Wq"] = a[:, 0].T @ dq
        g["Wk"] = flat_a.T @ dK.reshape(flat_a.shape)
        g["Wv"] = flat_a.T @ dV.reshape(flat_a.shape)
        da = dK @ m.Wk.T + dV @ m.Wv.T
        da[:, 0] += dq @ m.Wq.T
        dln1, g["g1"], g["b1"] = layer_norm_backward(da, m.g1, c["ln1"])
        dtokens += dln1
        g["cls"] = dtokens[:, 0].sum(axis=0)
    else:
        dtokens[:, 1:] = dh[:, None, :] / n
    if m.use_pos:
        g["pos"] = dtokens.sum(axis=0)
    demb = dtokens[:, 1:]
    g["We"] = x.reshape(-1, x.shape[-1]).T @ demb.reshape(-1, demb.shape[-1])
    g["be"] = demb.sum(axis=(0, 1))
    return [g[k] for k in ViT.NAMES]


def train_vit(m: ViT, batches: Callable[[int], tuple[np.ndarray, np.ndarray]], *, steps: int,
              lr: float = 0.01, final_lr: float | None = None) -> list[float]:
    """Adam on ``batches(step) -> (patches, labels)``; cross-entropy; returns the loss per step.
    The learning rate falls linearly from ``lr`` to ``final_lr`` (default: stays at ``lr``)."""
    opt = nets.Adam(lr=lr)
    params = m.params()
    end = lr if final_lr is None else final_lr
    losses = []
    for s in range(steps):
        opt.lr = lr + (end - lr) * s / max(steps - 1, 1)
        x, y = batches(s)
        logits, cache = vit_forward(m, x)
        loss, dlogits = nets.softmax_cross_entropy(logits, y)
        opt.step(params, vit_backward(m, cache, dlogits))
        losses.append(loss)
    return losses


def export_vit(m: ViT, image_side: int, p: int, name: str = "vision_transformer") -> GraphProto:
    """Input ``image (N, H, W)`` (square, side ``image_side``); outputs ``logits (N, C)`` and the
    class token's attention ``weights (N, 1 + patches)``. Patches are cut by Reshape + Transpose;
    the class token enters as a zero token (Pad) plus a constant table ``pos + [cls; 0]``."""
    if m.pool != "cls":
        raise ValueError("export_vit exports the class-token model")
    g = Graph()
    k = image_side // p
    n, d = k * k, m.cls.size
    grid = g.op("Reshape", ["image", g.const("grid_shape", np.array([-1, k, p, k, p]))], "patch_grid")
    grid = g.op("Transpose", [grid], "patch_grid_t", perm=[0, 1, 3, 2, 4])
    patches = g.op("Reshape", [grid, g.const("patches_shape", np.array([-1, n, p * p]))], "patches")
    emb = g.op("Add", [g.op("MatMul", [patches, g.const("W_patch", m.We)]), g.const("b_patch", m.be)], "patch_tokens")
    padded = g.op("Pad", [emb, g.const("cls_slot", np.array([0, 1, 0, 0, 0, 0]))], "with_cls_slot")
    table = np.zeros((n + 1, d))
    table[0] = m.cls
    if m.use_pos:
        table = table + m.pos
    tokens = g.op("Add", [padded, g.const("cls_and_pos", table)], "tokens")

    def ln(x: str, gamma: np.ndarray, beta: np.ndarray, tag: str) -> str:
        return g.op("LayerNormalization", [x, g.const(f"{tag}_scale", gamma), g.const(f"{tag}_bias", beta)],
                    tag, axis=-1, epsilon=1e-5)

    def first(x: str, out: str) -> str:  # (N, T, d) -> (N, 1, d): the class token
        return g.op("Slice", [x, g.const(f"{out}_start", np.array([0])), g.const(f"{out}_end", np.array([1])),
                              g.const(f"{out}_axis", np.array([1]))], out)

    a = ln(tokens, m.g1, m.b1, "ln1")
    q = g.op("MatMul", [first(a, "a_cls"), g.const("W_query", m.Wq)], "Q_cls")
    keys = g.op("MatMul", [a, g.const("W_key", m.Wk)], "K")
    v = g.op("MatMul", [a, g.const("W_value", m.Wv)], "V")
    scores = g.op("MatMul", [q, g.op("Transpose", [keys], "K_t", perm=[0, 2, 1])], "scores_raw")
    scores = g.op("Mul", [scores, g.const("attn_scale", np.float32(m.scale))], "scores")
    w = g.op("Softmax", [scores], "attn_weights", axis=-1)
    z = g.op("MatMul", [g.op("MatMul", [w, v], "attended"), g.const("W_attn_out", m.Wo)], "attn_out")
    h = g.op("Add", [first(tokens, "cls_token"), z], "h")
    r = g.op("Relu", [g.op("Add", [g.op("MatMul", [ln(h, m.g2, m.b2, "ln2"), g.const("W_mlp1", m.W1)]),
                                   g.const("b_mlp1", m.c1)])])
    h2 = g.op("Add", [h, g.op("Add", [g.op("MatMul", [r, g.const("W_mlp2", m.W2)]), g.const("b_mlp2", m.c2)])], "h2")
    out = g.op("Add", [g.op("MatMul", [ln(h2, m.gf, m.bf, "lnf"), g.const("W_head", m.Wout)]),
                       g.const("b_head", m.bout)], "logits_3d")
    axis1 = g.const("squeeze_axis", np.array([1]))
    g.op("Squeeze", [out, axis1], "logits")
    g.op("Squeeze", [w, axis1], "weights")
    return g.build(name, [tensor("image", ["N", image_side, image_side])],
                   [tensor("logits", ["N", m.Wout.shape[1]]), tensor("weights", ["N", n + 1])],
                   f"one-block vision transformer, {p}x{p} patches, d={d}, pos={m.use_pos}")
