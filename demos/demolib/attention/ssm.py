"""A selective state space layer (Mamba's S6) and its linear time-invariant special case: diagonal
state, zero-order-hold discretisation, hand-written backward pass, the LTI convolution kernel, and
ONNX exports (an unrolled scan, or one depthwise causal ``Conv``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import GraphProto

from demolib import nets
from demolib.attention.common import _outer
from demolib.graph import Graph, tensor

# --------------------------------------------------------------------------- selective state space model


def softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def marked_recall(rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The marked-recall task: inputs ``x (n, length, 2)`` with channel 0 a N(0, 1) value at every
    step and channel 1 a flag that is 1 at exactly one random step ``pos``; the target is the value
    at the flagged step. Returns ``(x, target, pos)``."""
    u = rng.normal(size=(n, length))
    pos = rng.integers(0, length, n)
    flag = np.zeros((n, length))
    flag[np.arange(n), pos] = 1.0
    return np.stack([u, flag], axis=-1), u[np.arange(n), pos], pos


@dataclass
class SSM:
    """A diagonal state space layer on ``D`` input channels with ``N`` states each, read out at the
    last step (zero-order-hold discretisation, as in S4/Mamba)::

        Δ_t = softplus(x_t W_dt + b_dt)            (D,)    step size per channel
        B_t = x_t W_B + b_B,  C_t = x_t W_C + b_C  (N,)    shared by the channels
        A = -exp(a_log)                            (D, N)  fixed decay rates
        Ā_t = exp(Δ_t A),   B̄_t = (Ā_t - 1) / A * B_t
        h_t = Ā_t * h_{t-1} + B̄_t * x_t            (D, N)  per channel and state
        y_t = C_t · h_t + skip * x_t               (D,)
        prediction = y_T · w_out + b_out

    ``selective=False`` keeps ``W_dt, W_B, W_C`` at zero (they get no gradient): Δ, B and C are then
    constants and the layer is linear time-invariant (LTI), i.e. a convolution with a fixed kernel.
    With ``selective=True`` they depend on the input, as in Mamba's S6 layer.
    """

    W_dt: np.ndarray
    b_dt: np.ndarray
    W_B: np.ndarray
    b_B: np.ndarray
    W_C: np.ndarray
    b_C: np.ndarray
    a_log: np.ndarray
    skip: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    selective: bool = True

    NAMES = ("W_dt", "b_dt", "W_B", "b_B", "W_C", "b_C", "a_log", "skip", "w_out", "b_out")

    def params(self) -> list[np.ndarray]:
        return [getattr(self, n) for n in self.NAMES]

    def copy(self) -> SSM:
        return SSM(*(p.copy() for p in self.params()), selective=self.selective)

    @property
    def A(self) -> np.ndarray:
        return -np.exp(self.a_log)


def init_ssm(rng: np.random.Generator, d_in: int, n_state: int, *, selective: bool = True) -> SSM:
    """Mamba-style start: ``A_n = -(n + 1)`` (S4D-real), step sizes log-uniform in [0.001, 0.1],
    skip 1; input-dependent weights small (zero for an LTI layer)."""
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), d_in))
    sel = 1.0 if selective else 0.0
    return SSM(
        W_dt=sel * rng.normal(0.0, 0.1, (d_in, d_in)),
        b_dt=dt + np.log(-np.expm1(-dt)),  # softplus^-1(dt)
        W_B=sel * rng.normal(0.0, 1.0 / np.sqrt(d_in), (d_in, n_state)),
        b_B=rng.normal(0.0, 1.0, n_state),
        W_C=sel * rng.normal(0.0, 1.0 / np.sqrt(d_in), (d_in, n_state)),
        b_C=rng.normal(0.0, 1.0, n_state),
        a_log=np.log(np.tile(np.arange(1.0, n_state + 1), (d_in, 1))),
        skip=np.ones(d_in),
        w_out=rng.normal(0.0, 1.0 / np.sqrt(d_in), d_in),
        b_out=np.zeros(1),
        selective=selective,
    )


def ssm_forward(m: SSM, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Prediction ``(n,)`` for inputs ``x (n, T, D)`` by the recurrent scan; the cache holds every
    state ``h (n, T + 1, D, N)`` (``h[:, 0] = 0``) and the outputs ``y (n, T, D)`` at every step."""
    A = m.A
    z = x @ m.W_dt + m.b_dt
    dt = softplus(z)  # (n, T, D)
    Bt = x @ m.W_B + m.b_B  # (n, T, N)
    Ct = x @ m.W_C + m.b_C
    Abar = np.exp(dt[..., None] * A)  # (n, T, D, N)
    coef = (Abar - 1.0) / A
    bx = coef * Bt[:, :, None, :] * x[..., None]
    n, T, D = x.shape
    h = np.zeros((n, T + 1, D, A.shape[1]))
    for t in range(T):
        h[:, t + 1] = Abar[:, t] * h[:, t] + bx[:, t]
    y = np.sum(Ct[:, :, None, :] * h[:, 1:], axis=-1) + m.skip * x
    pred = y[:, -1] @ m.w_out + m.b_out[0]
    return pred, dict(x=x, z=z, dt=dt, Bt=Bt, Ct=Ct, Abar=Abar, coef=coef, h=h, y=y)


def ssm_backward(m: SSM, c: dict, dpred: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Gradients in ``SSM.params()`` order (zero for ``W_dt, W_B, W_C`` when not selective) and the
    gradient w.r.t. the input ``x``, by backpropagation through the scan."""
    x, h, Abar, coef, Bt, Ct, dt = c["x"], c["h"], c["Abar"], c["coef"], c["Bt"], c["Ct"], c["dt"]
    A = m.A
    n, T, D = x.shape
    g = {k: np.zeros_like(getattr(m, k)) for k in SSM.NAMES}
    yT = c["y"][:, -1]
    g["w_out"], g["b_out"] = dpred @ yT, np.array([dpred.sum()])
    dyT = dpred[:, None] * m.w_out  # (n, D)
    g["skip"] = np.sum(dyT * x[:, -1], axis=0)
    dx = np.zeros_like(x)
    dx[:, -1] += dyT * m.skip
    dCt = np.zeros_like(Ct)
    dCt[:, -1] = np.sum(dyT[..., None] * h[:, -1], axis=1)
    dh = dyT[..., None] * Ct[:, -1, None, :]  # dL/dh_T (n, D, N)
    dh_all = np.empty_like(Abar)  # dL/dh_{t+1} for t = 0..T-1
    for t in range(T - 1, -1, -1):
        dh_all[:, t] = dh
        dh = dh * Abar[:, t]
    dAbar = dh_all * h[:, :-1]
    dbx_coef = dh_all * coef
    dcoef = dh_all * Bt[:, :, None, :] * x[..., None]
    dBt = np.sum(dbx_coef * x[..., None], axis=2)
    dx += np.sum(dbx_coef * Bt[:, :, None, :], axis=-1)
    # Abar = exp(dt A); coef = (Abar - 1) / A  =>  d coef/d dt = Abar, d coef/d A = (dt Abar - coef) / A
    ddt = np.sum((dAbar * Abar * A) + dcoef * Abar, axis=-1)
    dA = np.sum(dAbar * Abar * dt[..., None] + dcoef * (dt[..., None] * Abar - coef) / A, axis=(0, 1))
    g["a_log"] = dA * A
    dz = ddt / (1.0 + np.exp(-c["z"]))  # softplus' = sigmoid
    g["b_dt"] = dz.sum(axis=(0, 1))
    g["b_B"] = dBt.sum(axis=(0, 1))
    g["b_C"] = dCt.sum(axis=(0, 1))
    dx += dz @ m.W_dt.T + dBt @ m.W_B.T + dCt @ m.W_C.T
    if m.selective:
        g["W_dt"], g["W_B"], g["W_C"] = _outer(x, dz), _outer(x, dBt), _outer(x, dCt)
    return [g[k] for k in SSM.NAMES], dx


def train_ssm(m: SSM, rng: np.random.Generator, *, steps: int, batch: int, length: int,
              lr: float = 0.02, final_lr: float | None = None) -> list[float]:
    """Adam on fresh batches of ``marked_recall``; mean squared error; returns the loss per step."""
    opt = nets.Adam(lr=lr)
    params = m.params()
    end = lr if final_lr is None else final_lr
    losses = []
    for s in range(steps):
        opt.lr = lr + (end - lr) * s / max(steps - 1, 1)
        x, target, _ = marked_recall(rng, batch, length)
        pred, cache = ssm_forward(m, x)
        r = pred - target
        losses.append(float(np.mean(r * r)))
        grads, _ = ssm_backward(m, cache, 2.0 * r / len(r))
        opt.step(params, grads)
    return losses


def lti_kernel(m: SSM, length: int) -> np.ndarray:
    """The convolution kernel ``K (length, D)`` of an LTI layer: ``K_k = sum_n C_n Ā_n^k B̄_n``
    (plus ``skip`` at lag 0), so that ``y_t = sum_k K_k * x_{t-k}``."""
    if m.selective:
        raise ValueError("only a linear time-invariant layer has a fixed kernel")
    A = m.A
    Abar = np.exp(softplus(m.b_dt)[:, None] * A)  # (D, N)
    Bbar = (Abar - 1.0) / A * m.b_B
    lags = np.arange(length)[:, None, None]
    K = np.sum(m.b_C * Abar**lags * Bbar, axis=-1)  # (length, D, N) summed over N
    K[0] += m.skip
    return K


def lti_convolve(m: SSM, x: np.ndarray) -> np.ndarray:
    """All outputs ``y (n, T, D)`` of an LTI layer as a causal convolution with ``lti_kernel``."""
    T = x.shape[1]
    K = lti_kernel(m, T)
    y = np.zeros_like(x)
    for k in range(T):
        y[:, k:] += K[k] * x[:, : T - k]
    return y


def lti_expected_mse(m: SSM, length: int) -> float:
    """Exact expected squared error of an LTI layer on ``marked_recall`` with 2 channels (value,
    flag): the prediction is ``sum_s k_s u_s + c_p`` with ``k_s`` the value channel's kernel times
    ``w_out[0]`` and ``c_p`` the flag channel's response to a mark at ``p`` (plus ``b_out``), so
    ``E[(pred - u_p)^2] = sum_s k_s^2 - 2 mean_p k_p + 1 + mean_p c_p^2``. By Cauchy-Schwarz this
    is at least ``1 - 1/length`` whatever the weights."""
    K = lti_kernel(m, length)  # K[j] multiplies the input j steps before the last one
    k = m.w_out[0] * K[::-1, 0]  # weight of u_s in the prediction, s = 0..T-1
    c = m.w_out[1] * K[::-1, 1] + m.b_out[0]
    return float(np.sum(k * k) - 2.0 * np.mean(k) + 1.0 + np.mean(c * c))


def export_ssm(m: SSM, length: int, name: str = "selective_ssm") -> GraphProto:
    """The selective layer as an unrolled scan over ``length`` steps: input ``x (N, length, D)``,
    outputs ``y`` (the prediction, ``(N,)``) and ``step_size`` (Δ, ``(N, length, D)``). Nodes:
    MatMul, Softplus, Exp, Mul, Div, Gather (one step at a time), Add, ReduceSum."""
    g = Graph()
    D, n_state = m.a_log.shape
    A = g.const("A", m.A)
    dt = g.op("Softplus", [g.op("Add", [g.op("MatMul", ["x", g.const("W_dt", m.W_dt)]), g.const("b_dt", m.b_dt)])],
              "step_size")
    Bt = g.op("Add", [g.op("MatMul", ["x", g.const("W_B", m.W_B)]), g.const("b_B", m.b_B)], "B_t")
    Ct = g.op("Add", [g.op("MatMul", ["x", g.const("W_C", m.W_C)]), g.const("b_C", m.b_C)], "C_t")
    ax2, ax3 = g.const("axis2", np.array([2])), g.const("axis3", np.array([3]))
    abar = g.op("Exp", [g.op("Mul", [g.op("Unsqueeze", [dt, ax3]), A])], "A_bar")
    coef = g.op("Div", [g.op("Sub", [abar, g.const("one", np.float32(1.0))]), A], "zoh_coef")
    bx = g.op("Mul", [g.op("Mul", [coef, g.op("Unsqueeze", [Bt, ax2])]), g.op("Unsqueeze", ["x", ax3])], "B_bar_x")
    h = ""
    for t in range(length):
        idx = g.const(f"t{t}", np.array(t))
        inp = g.op("Gather", [bx, idx], f"B_bar_x_{t}", axis=1)
        h = inp if t == 0 else g.op("Add", [g.op("Mul", [g.op("Gather", [abar, idx], f"A_bar_{t}", axis=1), h]), inp],
                                    f"h_{t + 1}")
    last = g.const("t_last", np.array(length - 1))
    c_last = g.op("Unsqueeze", [g.op("Gather", [Ct, last], "C_last", axis=1), g.const("axis1", np.array([1]))])
    y = g.op("ReduceSum", [g.op("Mul", [c_last, h]), g.const("axis_state", np.array([2]))], "y_state", keepdims=0)
    x_last = g.op("Gather", ["x", last], "x_last", axis=1)
    y = g.op("Add", [y, g.op("Mul", [x_last, g.const("skip", m.skip)])], "y_last")
    g.op("Add", [g.op("MatMul", [y, g.const("w_out", m.w_out)]), g.const("b_out", m.b_out)], "y")
    return g.build(name, [tensor("x", ["N", length, D])],
                   [tensor("y", ["N"]), tensor("step_size", ["N", length, D])],
                   f"selective SSM (S6), {D} channels x {n_state} states, scan unrolled over {length} steps")


def export_lti_conv(m: SSM, length: int, name: str = "lti_ssm_conv") -> GraphProto:
    """An LTI layer in its convolutional form: one depthwise causal ``Conv`` with the kernel
    ``lti_kernel`` (reversed, left padding ``length - 1``). Input ``x (N, length, D)``; outputs
    ``y`` (prediction ``(N,)``) and ``y_seq`` (every step's output, ``(N, D, length)``)."""
    D = m.a_log.shape[0]
    K = lti_kernel(m, length)  # (length, D)
    weight = K[::-1].T[:, None, :]  # (D, 1, length): Conv correlates, so the kernel is reversed
    g = Graph()
    xt = g.op("Transpose", ["x"], "x_channels_first", perm=[0, 2, 1])
    y_seq = g.op("Conv", [xt, g.const("kernel", weight)], "y_seq", group=D, pads=[length - 1, 0],
                 kernel_shape=[length])
    y_last = g.op("Gather", [y_seq, g.const("t_last", np.array(length - 1))], "y_last", axis=2)
    g.op("Add", [g.op("MatMul", [y_last, g.const("w_out", m.w_out)]), g.const("b_out", m.b_out)], "y")
    return g.build(name, [tensor("x", ["N", length, D])], [tensor("y", ["N"]), tensor("y_seq", ["N", D, length])],
                   f"LTI SSM as a depthwise causal convolution, kernel length {length}")
