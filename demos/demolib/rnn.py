"""Tanh recurrent networks in NumPy, many side by side: forward, backpropagation through time,
global-norm gradient clipping per net, and export of one net as an ONNX ``RNN`` node.

A net reads a sequence ``x_1 .. x_T`` (``X`` of shape ``(T, N, d)``, time first as ONNX wants)
and keeps a hidden state ``h_t = tanh(x_t @ W + h_{t-1} @ R + b)`` with ``h_0 = 0``; its output
is the linear read-out ``z = h_T @ V + c`` of the last state (a logit). ``K`` nets are stored
stacked: ``W (K, d, H)``, ``R (K, H, H)``, ``b (K, 1, H)``, ``V (K, H, 1)``, ``c (K, 1, 1)``, so
one batched matrix product steps them all, which is what keeps a demo with a dozen nets fast.
Weights are ``(fan_in, fan_out)``; the ONNX node gets their transposes. Training runs in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from onnx import GraphProto, helper

from demolib.graph import Graph, tensor


@dataclass
class RNNs:
    """``K`` tanh RNNs with a linear read-out of the last hidden state, stacked on axis 0."""

    W: np.ndarray  # (K, d, H) input to hidden
    R: np.ndarray  # (K, H, H) hidden to hidden
    b: np.ndarray  # (K, 1, H)
    V: np.ndarray  # (K, H, 1) read-out
    c: np.ndarray  # (K, 1, 1)

    def params(self) -> list[np.ndarray]:
        """The stacked arrays in a fixed order; updating them in place updates the nets."""
        return [self.W, self.R, self.b, self.V, self.c]

    @property
    def members(self) -> int:
        return self.W.shape[0]

    def copy(self) -> RNNs:
        return replace(self, W=self.W.copy(), R=self.R.copy(), b=self.b.copy(), V=self.V.copy(), c=self.c.copy())

    def tile(self, times: int) -> RNNs:
        """``times`` copies of every net, one block after the other (net ``k`` of copy ``j`` is
        member ``j * K + k``)."""
        return RNNs(*(np.concatenate([p] * times) for p in self.params()))


def init_rnns(rng: np.random.Generator, members: int, d: int, hidden: int, *, gain: float = 1.0) -> RNNs:
    """``W ~ N(0, 1/d)``, ``R ~ N(0, gain² / H)`` (its largest eigenvalues have modulus about
    ``gain``), ``V ~ N(0, 1/H)``, zero biases."""
    return RNNs(
        W=rng.standard_normal((members, d, hidden)) / np.sqrt(d),
        R=rng.standard_normal((members, hidden, hidden)) * gain / np.sqrt(hidden),
        b=np.zeros((members, 1, hidden)),
        V=rng.standard_normal((members, hidden, 1)) / np.sqrt(hidden),
        c=np.zeros((members, 1, 1)),
    )


def forward(nets: RNNs, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``(K, N, 1)`` and the hidden states ``(T + 1, K, N, H)`` (``h_0 = 0`` first)."""
    T, N, _ = X.shape
    K, H = nets.members, nets.R.shape[-1]
    # Every input's contribution at once, as (T, K, N, H).
    drive = (X.reshape(T * N, -1) @ nets.W + nets.b).reshape(K, T, N, H).transpose(1, 0, 2, 3)
    states = np.zeros((T + 1, K, N, H))
    for t in range(T):
        states[t + 1] = np.tanh(drive[t] + states[t] @ nets.R)
    return states[-1] @ nets.V + nets.c, states


def backward(nets: RNNs, X: np.ndarray, states: np.ndarray, dout: np.ndarray) -> list[np.ndarray]:
    """Gradients w.r.t. ``nets.params()`` (each net's own), by backpropagation through time,
    given ``dout = dLoss/dLogits`` of shape ``(K, N, 1)``."""
    T = len(X)
    hT = states[-1]
    dV, dc = hT.transpose(0, 2, 1) @ dout, dout.sum(axis=1, keepdims=True)
    dz = np.empty_like(states[1:])  # (T, K, N, H): gradient at each step's pre-activation
    dh = dout @ nets.V.transpose(0, 2, 1)
    Rt = nets.R.transpose(0, 2, 1)
    for t in range(T - 1, -1, -1):
        dz[t] = dh * (1.0 - states[t + 1] ** 2)
        dh = dz[t] @ Rt
    K, H = nets.members, nets.R.shape[-1]
    dz_k = dz.transpose(1, 0, 2, 3).reshape(K, -1, H)  # (K, T * N, H): all steps as one batch
    prev = states[:-1].transpose(1, 0, 2, 3).reshape(K, -1, H)
    dW = X.reshape(-1, X.shape[-1]).T @ dz_k
    dR = prev.transpose(0, 2, 1) @ dz_k
    db = dz_k.sum(axis=1, keepdims=True)
    return [dW, dR, db, dV, dc]


def logistic_loss(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each net's mean binary cross-entropy ``(K,)`` for 0/1 ``labels (N,)``, and its gradient
    w.r.t. the logits ``(K, N, 1)``."""
    y = labels.reshape(1, -1, 1).astype(float)
    loss = (np.logaddexp(0.0, logits) - y * logits).mean(axis=(1, 2))
    return loss, (0.5 * (1.0 + np.tanh(0.5 * logits)) - y) / logits.shape[1]


def global_norms(grads: list[np.ndarray]) -> np.ndarray:
    """Each net's gradient norm ``(K,)``: all its arrays taken together as one vector."""
    return np.sqrt(sum(np.sum(g * g, axis=tuple(range(1, g.ndim))) for g in grads))


def clip_by_global_norm(grads: list[np.ndarray], max_norm: np.ndarray | float) -> tuple[list[np.ndarray], np.ndarray]:
    """Scale each net's gradient by ``min(1, max_norm / norm)`` (``max_norm = inf`` never clips):
    same direction, norm at most ``max_norm``. Returns the clipped arrays and the norms before."""
    norms = global_norms(grads)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norms > max_norm, max_norm / norms, 1.0)
    return [g * scale.reshape(-1, *([1] * (g.ndim - 1))) for g in grads], norms


def export_rnn(nets: RNNs, member: int, *, name: str = "rnn") -> GraphProto:
    """Net ``member`` as ``x (T, N, d) -> RNN (tanh) -> last state (N, H) -> Gemm -> y (N, 1)``.

    The ONNX ``RNN`` node computes ``h_t = tanh(x_t W^T + h_{t-1} R^T + Wb + Rb)`` with ``W`` of
    shape ``(1, H, d)``, ``R`` of ``(1, H, H)`` and ``B = [Wb, Rb]`` of ``(1, 2H)``; its second
    output ``Y_h`` (``(1, N, H)``) is the last state, reshaped to ``(N, H)`` for the read-out.
    """
    d, hidden = nets.W.shape[1:]
    g = Graph()
    w = g.const("W", nets.W[member].T[None])
    r = g.const("R", nets.R[member].T[None])
    bias = g.const("B", np.concatenate([nets.b[member, 0], np.zeros(hidden)])[None])
    # Two outputs (all states, last state), so the node is made here rather than with Graph.op.
    g.nodes.append(helper.make_node("RNN", ["x", w, r, bias], ["Y", "Y_h"], name="rnn",
                                    hidden_size=hidden, activations=["Tanh"]))
    last = g.op("Reshape", ["Y_h", g.const("state_shape", np.array([-1, hidden]))], "last_state")
    g.op("Gemm", [last, g.const("V", nets.V[member]), g.const("c", nets.c[member, 0])], "y")
    out = tensor("y", ["N", 1])
    return g.build(name, [tensor("x", ["T", "N", d])], [out], f"tanh RNN, {hidden} hidden units")
