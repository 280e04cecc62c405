"""Scaled dot-product attention with its backward pass, shared by every attention model here;
also the ONNX attention subgraph, weight-gradient helpers and the ``hinton`` diagram."""

from __future__ import annotations

import numpy as np

from demolib import nets
from demolib.graph import Graph
from demolib.nets import softmax

# --------------------------------------------------------------------------- softmax & attention


def softmax_backward(p: np.ndarray, dp: np.ndarray) -> np.ndarray:
    """Gradient w.r.t. the scores of a last-axis softmax with output ``p``, given ``dL/dp``."""
    return p * (dp - np.sum(dp * p, axis=-1, keepdims=True))


def _t(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def causal_mask(n: int, m: int | None = None) -> np.ndarray:
    """Boolean ``(n, m)`` mask, True where query ``i`` may see key ``j`` (``j <= i``)."""
    m = n if m is None else m
    return np.arange(m)[None, :] <= np.arange(n)[:, None]


def attention(
    Q: np.ndarray, K: np.ndarray, V: np.ndarray, scale: float | None = None, *, causal: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``O = softmax(Q K^T * scale) V`` and the weights ``P``.

    ``Q`` is ``(..., n, d)``, ``K`` ``(..., m, d)``, ``V`` ``(..., m, dv)``; ``scale`` defaults to
    ``1/sqrt(d)``. With ``causal`` query ``i`` only sees keys ``j <= i``.
    """
    scale = 1.0 / np.sqrt(Q.shape[-1]) if scale is None else scale
    S = (Q @ _t(K)) * scale
    if causal:
        S = np.where(causal_mask(S.shape[-2], S.shape[-1]), S, -np.inf)
    P = softmax(S)
    return P @ V, P


def attention_backward(
    dO: np.ndarray, Q: np.ndarray, K: np.ndarray, V: np.ndarray, P: np.ndarray, scale: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dQ, dK, dV)`` of ``attention`` given ``dL/dO`` and its weights ``P``.

    Masked weights are exactly 0, so the same formula covers the causal case.
    """
    scale = 1.0 / np.sqrt(Q.shape[-1]) if scale is None else scale
    dV = _t(P) @ dO
    dS = softmax_backward(P, dO @ _t(V)) * scale
    return dS @ K, _t(dS) @ Q, dV


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over all leading axes of ``logits (..., C)`` and its gradient."""
    flat = logits.reshape(-1, logits.shape[-1])
    loss, grad = nets.softmax_cross_entropy(flat, labels.reshape(-1))
    return loss, grad.reshape(logits.shape)


def hinton(ax, w: np.ndarray, color: str = "C0", vmax: float = 1.0) -> None:
    """Draw non-negative ``w`` on matplotlib axes ``ax`` as squares with area proportional to
    ``w / vmax`` (row 0 at the top). Vector shapes in a theme colour, so one drawing serves both
    themes (a colour-mapped image would be drawn again for the dark one)."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    n, m = w.shape
    side = np.sqrt(np.clip(w / vmax, 0.0, 1.0)) * 0.92
    squares = [Rectangle((j - s / 2, i - s / 2), s, s) for (i, j), s in np.ndenumerate(side) if s > 0]
    ax.add_collection(PatchCollection(squares, facecolor=color, edgecolor="none"))
    ax.set_xlim(-0.5, m - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.grid(False)


# --------------------------------------------------------------------------- ONNX building


def _onnx_attention(g: Graph, q: str, k: str, v: str, scale: float, prefix: str) -> tuple[str, str]:
    """MatMul(Q, K^T) -> Mul(scale) -> Softmax -> MatMul(V); returns (output, weights)."""
    kt = g.op("Transpose", [k], f"{prefix}keys_t", perm=[0, 2, 1])
    scores = g.op("MatMul", [q, kt], f"{prefix}scores_raw")
    scores = g.op("Mul", [scores, g.const(f"{prefix}scale", np.float32(scale))], f"{prefix}scores")
    weights = g.op("Softmax", [scores], f"{prefix}weights", axis=-1)
    return g.op("MatMul", [weights, v], f"{prefix}attended"), weights


# --------------------------------------------------------------------------- weight gradients


def _outer(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Sum over all leading axes of ``x^T g`` (a weight gradient)."""
    return x.reshape(-1, x.shape[-1]).T @ g.reshape(-1, g.shape[-1])


def _rows(g: np.ndarray) -> np.ndarray:
    return g.reshape(-1, g.shape[-1]).sum(axis=0)
