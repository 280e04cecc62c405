"""Tests for demos/demolib/attention/: forward passes against plain loops, every hand-written
backward pass against central finite differences, and every ONNX export against ONNX Runtime."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"
if str(DEMOS) not in sys.path:
    sys.path.insert(0, str(DEMOS))

from demolib import attention as att  # noqa: E402
from demolib import onnx_export  # noqa: E402

ATOL = 1e-5  # float32 ORT against float64 NumPy


def _session(graph: onnx.GraphProto):
    model = onnx_export.make_model(graph)
    onnx.checker.check_model(model, full_check=True)
    return onnx_export.session(model)


def _fd_check(params: Sequence[np.ndarray], grads: Sequence[np.ndarray], loss: Callable[[], float],
              eps: float = 1e-6, rtol: float = 1e-6) -> None:
    """Compare analytic gradients with central differences, entry by entry (float64)."""
    assert len(params) == len(grads)
    for k, (p, g) in enumerate(zip(params, grads, strict=True)):
        assert g.shape == p.shape, f"parameter {k}: gradient shape {g.shape} != {p.shape}"
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            up = loss()
            p[idx] = old - eps
            down = loss()
            p[idx] = old
            num[idx] = (up - down) / (2 * eps)
        scale = max(float(np.max(np.abs(num))), 1e-3)
        err = float(np.max(np.abs(num - g))) / scale
        assert err < rtol, f"parameter {k}: relative gradient error {err:.2e}"


# --------------------------------------------------------------------------- attention core


def _naive_attention(Q, K, V, scale, causal=False):
    n, m = Q.shape[0], K.shape[0]
    out = np.zeros((n, V.shape[1]))
    for i in range(n):
        s = np.array([Q[i] @ K[j] * scale for j in range(m)])
        if causal:
            s[i + 1:] = -np.inf
        w = np.exp(s - s.max())
        w /= w.sum()
        out[i] = sum(w[j] * V[j] for j in range(m))
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_loops(causal: bool) -> None:
    rng = np.random.default_rng(0)
    Q, K, V = rng.normal(size=(7, 5)), rng.normal(size=(7, 5)), rng.normal(size=(7, 3))
    out, P = att.attention(Q, K, V, causal=causal)
    np.testing.assert_allclose(out, _naive_attention(Q, K, V, 1 / np.sqrt(5), causal), atol=1e-12)
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, atol=1e-12)
    if causal:
        assert np.all(P[np.triu_indices(7, 1)] == 0.0)
    # batched leading axes give the same as one at a time
    Qb, Kb, Vb = (rng.normal(size=(3, 2, 4, 6)) for _ in range(3))
    ob, _ = att.attention(Qb, Kb, Vb, 0.7)
    np.testing.assert_allclose(ob[2, 1], _naive_attention(Qb[2, 1], Kb[2, 1], Vb[2, 1], 0.7), atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_backward_matches_finite_differences(causal: bool) -> None:
    rng = np.random.default_rng(1)
    Q, K, V = rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 6 if not causal else 5, 4)), None
    V = rng.normal(size=(2, K.shape[1], 3))
    R = rng.normal(size=(2, 5, 3))  # loss = sum(R * O)

    def loss() -> float:
        return float(np.sum(R * att.attention(Q, K, V, 0.8, causal=causal)[0]))

    _, P = att.attention(Q, K, V, 0.8, causal=causal)
    _fd_check([Q, K, V], att.attention_backward(R, Q, K, V, P, 0.8), loss)


def test_softmax_jacobian_norm_formula() -> None:
    rng = np.random.default_rng(2)
    p = att.softmax(rng.normal(size=(5, 9)) * 3)
    explicit = [np.linalg.norm(np.diag(row) - np.outer(row, row)) for row in p]
    np.testing.assert_allclose(att.softmax_jacobian_norm(p), explicit, rtol=1e-12)
    one_hot = np.eye(4)[:1]
    assert att.softmax_jacobian_norm(one_hot)[0] == pytest.approx(0.0, abs=1e-12)


def test_saturation_with_and_without_scaling() -> None:
    sat = att.saturation(np.random.default_rng(3), [4, 256], n_keys=16, trials=300)
    np.testing.assert_allclose(sat.score_std["scaled"], 1.0, atol=0.1)
    np.testing.assert_allclose(sat.score_std["unscaled"], [2.0, 16.0], rtol=0.1)
    assert sat.max_weight["unscaled"][1] > 0.85 > 0.3 > sat.max_weight["scaled"][1]
    assert sat.jacobian["unscaled"][1] < 0.5 * sat.jacobian["scaled"][1]


# --------------------------------------------------------------------------- lookup


def test_lookup_batch_is_consistent() -> None:
    data = att.lookup_batch(np.random.default_rng(4), 50, 6, 10, 5)
    rows = np.arange(50)[:, None]
    assert all(len(set(k)) == 6 for k in data.keys)  # distinct keys per example
    asked = data.queries.argmax(-1)
    np.testing.assert_array_equal(asked, data.keys[rows, data.match])
    np.testing.assert_array_equal(data.labels, data.values[rows, data.match])
    np.testing.assert_array_equal(data.pairs[..., :10].argmax(-1), data.keys)


def test_lookup_backward_matches_finite_differences() -> None:
    rng = np.random.default_rng(5)
    model = att.init_lookup(rng, 6, 3, 4)
    data = att.lookup_batch(rng, 3, 4, 6, 3)

    def loss() -> float:
        return att.cross_entropy(att.lookup_forward(model, data)[0], data.labels)[0]

    logits, cache = att.lookup_forward(model, data)
    grads = att.lookup_backward(model, data, cache, att.cross_entropy(logits, data.labels)[1])
    _fd_check(model.params(), grads, loss)


def test_lookup_learns_and_export_matches_numpy() -> None:
    rng = np.random.default_rng(6)
    model = att.init_lookup(rng, 12, 5, 8)
    losses = att.train_lookup(model, rng, steps=120, batch=32, length=6)
    assert losses[-1] < 0.1 * losses[0]
    data = att.lookup_batch(rng, 40, 6, 12, 5)
    logits, cache = att.lookup_forward(model, data)
    sess = _session(att.export_lookup(model))
    got_logits, got_w = sess.run(["logits", "weights"], {"queries": data.queries.astype(np.float32),
                                                         "pairs": data.pairs.astype(np.float32)})
    np.testing.assert_allclose(got_logits, logits, atol=ATOL)
    np.testing.assert_allclose(got_w, cache["P"], atol=ATOL)
    assert np.mean(got_logits.argmax(-1) == data.labels) > 0.95


# --------------------------------------------------------------------------- layer norm & block


def test_layer_norm_backward_matches_finite_differences() -> None:
    rng = np.random.default_rng(7)
    x, gamma, beta = rng.normal(size=(3, 4, 6)), rng.normal(size=6), rng.normal(size=6)
    R = rng.normal(size=(3, 4, 6))
    y, cache = att.layer_norm(x, gamma, beta)
    np.testing.assert_allclose(((y - beta) / gamma).mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(((y - beta) / gamma).var(-1), 1.0, atol=1e-4)  # eps = 1e-5

    def loss() -> float:
        return float(np.sum(R * att.layer_norm(x, gamma, beta)[0]))

    _fd_check([x, gamma, beta], att.layer_norm_backward(R, gamma, cache), loss)


BLOCK_VARIANTS = [
    dict(pool=False),
    dict(pool=True),
    dict(pool=True, use_pos=False),
    dict(pool=False, use_attention=False),
]


@pytest.mark.parametrize("kw", BLOCK_VARIANTS, ids=["tokens", "pooled", "no-pos", "no-attention"])
def test_block_backward_matches_finite_differences(kw: dict) -> None:
    rng = np.random.default_rng(8)
    m = att.init_block(rng, 5, 4, 6, 7, 3, **kw)
    for p in m.params():  # move LayerNorms and biases off their initial values
        p += rng.normal(0.0, 0.2, p.shape)
    x = rng.normal(size=(3, 4, 5))
    y = rng.integers(0, 3, (3,) if kw.get("pool") else (3, 4))

    def loss() -> float:
        return att.cross_entropy(att.block_forward(m, x)[0], y)[0]

    logits, cache = att.block_forward(m, x)
    _fd_check(m.params(), att.block_backward(m, cache, att.cross_entropy(logits, y)[1]), loss)


@pytest.mark.parametrize("kw", BLOCK_VARIANTS, ids=["tokens", "pooled", "no-pos", "no-attention"])
def test_block_export_matches_numpy(kw: dict) -> None:
    rng = np.random.default_rng(9)
    m = att.init_block(rng, 5, 6, 8, 12, 3, **kw)
    for p in m.params():
        p += rng.normal(0.0, 0.2, p.shape)
    x = rng.normal(size=(10, 6, 5))
    logits, cache = att.block_forward(m, x)
    sess = _session(att.export_block(m))
    outs = sess.run(None, {"x": x.astype(np.float32)})
    np.testing.assert_allclose(outs[0], logits, atol=ATOL)
    if m.use_attention:
        np.testing.assert_allclose(outs[1], cache["P"], atol=ATOL)
    else:
        assert len(outs) == 1


def test_block_without_positions_is_permutation_equivariant() -> None:
    rng = np.random.default_rng(10)
    m = att.init_block(rng, 4, 6, 8, 12, 4)
    x = rng.normal(size=(5, 6, 4))
    perm = rng.permutation(6)
    blind = replace(m.copy(), use_pos=False)
    np.testing.assert_allclose(att.block_forward(blind, x[:, perm])[0], att.block_forward(blind, x)[0][:, perm],
                               atol=1e-12)
    assert not np.allclose(att.block_forward(m, x[:, perm])[0], att.block_forward(m, x)[0][:, perm], atol=1e-3)


def test_block_learns_reversal() -> None:
    rng = np.random.default_rng(11)
    eye = np.eye(4)
    m = att.init_block(rng, 4, 5, 12, 16, 4)

    def batch(_s: int) -> tuple[np.ndarray, np.ndarray]:
        seq = rng.integers(0, 4, (32, 5))
        return eye[seq], seq[:, ::-1]

    att.train_block(m, batch, steps=250, lr=0.01, final_lr=0.001)
    seq = rng.integers(0, 4, (200, 5))
    assert np.mean(att.block_forward(m, eye[seq])[0].argmax(-1) == seq[:, ::-1]) > 0.95


# --------------------------------------------------------------------------- tiled attention


SHAPES = [(16, 16, 4, 4), (37, 37, 8, 5), (10, 23, 3, 7), (9, 9, 64, 64)]


@pytest.mark.parametrize(("n", "m", "bq", "bk", "causal"),  # causal needs as many keys as queries
                         [(*shape, False) for shape in SHAPES]
                         + [(*shape, True) for shape in SHAPES if shape[0] == shape[1]])
def test_tiled_attention_is_exact(n: int, m: int, bq: int, bk: int, causal: bool) -> None:
    rng = np.random.default_rng(12)
    Q, K, V = rng.normal(size=(n, 6)) * 3, rng.normal(size=(m, 6)) * 3, rng.normal(size=(m, 4))
    ref = att.standard_attention(Q, K, V, causal=causal)
    out, lse, _ = att.tiled_attention(Q, K, V, block_q=bq, block_k=bk, causal=causal)
    np.testing.assert_allclose(out, ref, atol=1e-12)
    S = (Q @ K.T) / np.sqrt(6)
    if causal:
        S = np.where(att.causal_mask(n, m), S, -np.inf)
    np.testing.assert_allclose(lse, np.log(np.sum(np.exp(S), axis=1)), atol=1e-12)


def test_ledgers_count_blocks_not_matrices() -> None:
    rng = np.random.default_rng(13)
    n, d, b = 96, 8, 32
    Q, K, V = (rng.normal(size=(n, d)) for _ in range(3))
    std, tiled, causal = att.Ledger(), att.Ledger(), att.Ledger()
    att.standard_attention(Q, K, V, ledger=std)
    att.tiled_attention(Q, K, V, block_q=b, block_k=b, ledger=tiled)
    att.tiled_attention(Q, K, V, block_q=b, block_k=b, causal=True, ledger=causal)
    assert std.largest == n * n and std.largest_name == "score matrix"
    assert tiled.largest == b * b and tiled.largest_name == "score block"
    assert std.moved == 4 * n * d + 4 * n * n  # Q, K, V, O once; S and P written and read back
    t = n // b
    assert tiled.reads == n * d + t * 2 * n * d  # each query block reads all of K and V
    assert tiled.writes == n * d + n  # the output and one log-sum-exp per row
    assert tiled.tiles == t * t and causal.tiles == t * (t + 1) // 2
    assert tiled.exps == n * n + n * t  # scores plus one rescaling factor per row and block


def test_online_softmax_trace_ends_exact() -> None:
    rng = np.random.default_rng(14)
    Q, K, V = (rng.normal(size=(12, 4)) for _ in range(3))
    out, _, trace = att.tiled_attention(Q, K, V, block_q=4, block_k=3, trace_row=5)
    assert len(trace.running_max) == 4
    assert np.all(np.diff(trace.running_max) >= 0)  # the running max never decreases
    np.testing.assert_allclose(trace.output[-1], out[5], atol=1e-14)
    s = Q[5] @ K.T / 2.0
    assert trace.running_max[-1] == pytest.approx(s.max())
    assert trace.running_sum[-1] == pytest.approx(np.exp(s - s.max()).sum())


# --------------------------------------------------------------------------- state space layers


def _ssm(selective: bool, seed: int = 15) -> att.SSM:
    rng = np.random.default_rng(seed)
    m = att.init_ssm(rng, 2, 3, selective=selective)
    for name, p in zip(att.SSM.NAMES, m.params(), strict=True):
        if selective or name not in ("W_dt", "W_B", "W_C"):
            p += rng.normal(0.0, 0.3, p.shape)
    return m


def test_marked_recall_targets() -> None:
    x, target, pos = att.marked_recall(np.random.default_rng(16), 40, 9)
    np.testing.assert_array_equal(x[..., 1].sum(axis=1), 1.0)
    np.testing.assert_array_equal(x[..., 1].argmax(axis=1), pos)
    np.testing.assert_array_equal(target, x[np.arange(40), pos, 0])


@pytest.mark.parametrize("selective", [True, False], ids=["selective", "lti"])
def test_ssm_scan_matches_plain_loop(selective: bool) -> None:
    m = _ssm(selective)
    x, _, _ = att.marked_recall(np.random.default_rng(17), 3, 6)
    pred, cache = att.ssm_forward(m, x)
    A = m.A
    for b in range(3):
        h = np.zeros_like(A)
        for t in range(6):
            xt = x[b, t]
            dt = np.log1p(np.exp(xt @ m.W_dt + m.b_dt))
            B, C = xt @ m.W_B + m.b_B, xt @ m.W_C + m.b_C
            Abar = np.exp(dt[:, None] * A)
            h = Abar * h + (Abar - 1.0) / A * B[None, :] * xt[:, None]
            y = h @ C + m.skip * xt
            np.testing.assert_allclose(cache["y"][b, t], y, atol=1e-13)
        assert pred[b] == pytest.approx(y @ m.w_out + m.b_out[0], abs=1e-13)


@pytest.mark.parametrize("selective", [True, False], ids=["selective", "lti"])
def test_ssm_backward_matches_finite_differences(selective: bool) -> None:
    m = _ssm(selective)
    x, target, _ = att.marked_recall(np.random.default_rng(18), 4, 5)

    def loss() -> float:
        return float(np.mean((att.ssm_forward(m, x)[0] - target) ** 2))

    pred, cache = att.ssm_forward(m, x)
    grads, dx = att.ssm_backward(m, cache, 2.0 * (pred - target) / len(pred))
    frozen = set() if selective else {"W_dt", "W_B", "W_C"}  # an LTI layer keeps these at zero
    trained = [(p, g) for name, p, g in zip(att.SSM.NAMES, m.params(), grads, strict=True) if name not in frozen]
    _fd_check([p for p, _ in trained] + [x], [g for _, g in trained] + [dx], loss)
    for name, g in zip(att.SSM.NAMES, grads, strict=True):
        if name in frozen:
            assert not np.any(g)


def test_lti_scan_is_a_convolution_and_selective_is_not() -> None:
    lti = _ssm(False)
    x, _, _ = att.marked_recall(np.random.default_rng(19), 5, 12)
    np.testing.assert_allclose(att.lti_convolve(lti, x), att.ssm_forward(lti, x)[1]["y"], atol=1e-13)
    with pytest.raises(ValueError):
        att.lti_kernel(_ssm(True), 12)


def test_lti_expected_mse_is_exact_and_above_the_floor() -> None:
    lti = _ssm(False, seed=20)
    T = 6
    # probe the prediction: with u = 0 it is c_p; adding u = e_s adds k_s
    flags = np.zeros((T, T, 2))
    flags[np.arange(T), np.arange(T), 1] = 1.0
    c = att.ssm_forward(lti, flags)[0]
    unit_values = np.repeat(flags[:1], T, axis=0)  # mark at step 0 and u = e_s
    unit_values[np.arange(T), np.arange(T), 0] = 1.0
    k = att.ssm_forward(lti, unit_values)[0] - c[0]
    expected = np.mean([np.sum(k**2) - 2 * k[p] + 1 + c[p] ** 2 for p in range(T)])
    assert att.lti_expected_mse(lti, T) == pytest.approx(expected, rel=1e-12)
    assert att.lti_expected_mse(lti, T) >= 1.0 - 1.0 / T


def test_selective_layer_learns_what_lti_cannot() -> None:
    rng = np.random.default_rng(21)
    sel = att.init_ssm(rng, 2, 4)
    lti = sel.copy()
    lti.selective = False
    for w in (lti.W_dt, lti.W_B, lti.W_C):
        w[...] = 0.0
    for m in (sel, lti):
        att.train_ssm(m, np.random.default_rng(22), steps=250, batch=32, length=10, lr=0.05, final_lr=0.002)
    x, target, _ = att.marked_recall(rng, 1000, 10)
    assert np.mean((att.ssm_forward(sel, x)[0] - target) ** 2) < 0.1
    assert att.lti_expected_mse(lti, 10) >= 0.9


@pytest.mark.parametrize("selective", [True, False], ids=["scan", "conv"])
def test_ssm_exports_match_numpy(selective: bool) -> None:
    m = _ssm(selective)
    T = 7
    x, _, _ = att.marked_recall(np.random.default_rng(23), 30, T)
    pred, cache = att.ssm_forward(m, x)
    if selective:
        sess = _session(att.export_ssm(m, T))
        y, dt = sess.run(["y", "step_size"], {"x": x.astype(np.float32)})
        np.testing.assert_allclose(dt, cache["dt"], atol=ATOL)
    else:
        sess = _session(att.export_lti_conv(m, T))
        y, y_seq = sess.run(["y", "y_seq"], {"x": x.astype(np.float32)})
        np.testing.assert_allclose(y_seq, cache["y"].transpose(0, 2, 1), atol=ATOL)
    np.testing.assert_allclose(y, pred, atol=ATOL)
