"""Tests for demos/demolib/transfer/: hand-written backward passes against finite differences,
ONNX Runtime against the NumPy forward passes, and the training helpers' freezing rules."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"
if str(DEMOS) not in sys.path:
    sys.path.insert(0, str(DEMOS))

from demolib import nets, onnx_export, transfer  # noqa: E402

ATOL = 1e-5


def _session(graph: onnx.GraphProto):
    model = onnx_export.make_model(graph)
    onnx.checker.check_model(model, full_check=True)
    return onnx_export.session(model)


def _numerical_grads(model, X: np.ndarray, y: np.ndarray, h: float = 1e-6) -> list[np.ndarray]:
    out = []
    for p in model.params():
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            up = model.loss_grads(X, y)[0]
            p[idx] = old - h
            down = model.loss_grads(X, y)[0]
            p[idx] = old
            num[idx] = (up - down) / (2 * h)
        out.append(num)
    return out


def _adapter_mlp(rng: np.random.Generator, rank: int = 2) -> transfer.AdapterMLP:
    """A small adapted net with non-trivial adapters (trained ones are not near the identity)."""
    net = nets.init_mlp(rng, [5, 7, 6, 3])
    for b in net.biases:
        b += rng.normal(0.0, 0.3, b.shape)
    model = transfer.AdapterMLP.wrap(net, rank, rng, scale=0.5)
    for ad in model.adapters:
        ad.Wu += rng.normal(0.0, 0.5, ad.Wu.shape)
        ad.bd += rng.normal(0.0, 0.3, ad.bd.shape)
        ad.bu += rng.normal(0.0, 0.3, ad.bu.shape)
    return model


def _attention(rng: np.random.Generator, k: int) -> transfer.AttentionClassifier:
    model = transfer.AttentionClassifier.init(rng, vocab=6, d=4, classes=3)
    model.br += rng.normal(0.0, 0.3, model.br.shape)
    if k:
        model = model.prefix_from_tokens(rng.integers(0, 6, k))
        model.Pk += rng.normal(0.0, 0.5, model.Pk.shape)
        model.Pv += rng.normal(0.0, 0.5, model.Pv.shape)
    return model


# --------------------------------------------------------------------------- backward passes


def _assert_gradients_match(model, inputs: np.ndarray, y: np.ndarray) -> None:
    """The hand-written backward pass agrees with central differences, parameter by parameter."""
    grads = model.loss_grads(inputs, y)[1]
    num = _numerical_grads(model, inputs, y)
    assert [g.shape for g in grads] == [p.shape for p in model.params()]
    for g, n in zip(grads, num, strict=True):
        np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-8)


def test_adapter_backward_matches_numerical_gradient() -> None:
    rng = np.random.default_rng(0)
    model = _adapter_mlp(rng)
    X = rng.standard_normal((9, 5))
    y = rng.integers(0, 3, 9)
    _assert_gradients_match(model, X, y)


def test_adapter_backward_can_skip_the_frozen_backbone() -> None:
    rng = np.random.default_rng(1)
    model = _adapter_mlp(rng)
    X = rng.standard_normal((8, 5))
    y = rng.integers(0, 3, 8)
    full = model.loss_grads(X, y)[1]
    flags = model.adapter_tuning()
    part = model.loss_grads(X, y, flags)[1]
    for f, g_full, g_part in zip(flags, full, part, strict=True):
        if f:
            np.testing.assert_allclose(g_part, g_full, rtol=1e-12, atol=1e-14)
    n_body = len(model.net.params()) - 2
    assert all(g is None for g in part[:n_body])


@pytest.mark.parametrize("k", [0, 3])
def test_attention_backward_matches_numerical_gradient(k: int) -> None:
    rng = np.random.default_rng(2 + k)
    model = _attention(rng, k)
    ids = rng.integers(0, 6, (5, 4))
    y = rng.integers(0, 3, 5)
    _assert_gradients_match(model, ids, y)


def test_attention_prefix_only_gradients_equal_the_full_ones() -> None:
    rng = np.random.default_rng(5)
    model = _attention(rng, 2)
    ids = rng.integers(0, 6, (7, 5))
    y = rng.integers(0, 3, 7)
    full = model.loss_grads(ids, y)[1]
    part = model.loss_grads(ids, y, model.prefix_tuning())[1]
    assert all(g is None for g in part[:6])
    np.testing.assert_allclose(part[6], full[6], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(part[7], full[7], rtol=1e-12, atol=1e-14)


def test_attention_forward_is_softmax_attention() -> None:
    """The pooled shortcut in ``forward`` equals attention written out token by token."""
    rng = np.random.default_rng(6)
    model = _attention(rng, 2)
    ids = rng.integers(0, 6, (3, 5))
    logits, cache = model.forward(ids)
    for n in range(3):
        X = model.E[ids[n]]
        K = np.vstack([model.Pk, X @ model.Wk])
        V = np.vstack([model.Pv, X @ model.Wv])
        S = (X @ model.Wq) @ K.T / np.sqrt(model.d)
        A = np.exp(S - S.max(axis=1, keepdims=True))
        A /= A.sum(axis=1, keepdims=True)
        H = X + A @ V
        np.testing.assert_allclose(cache["A"][n], A, rtol=1e-12)
        np.testing.assert_allclose(logits[n], H.mean(axis=0) @ model.Wr + model.br, rtol=1e-12)
    np.testing.assert_allclose(cache["A"].sum(axis=2), 1.0, rtol=1e-12)


# --------------------------------------------------------------------------- ONNX exports


def test_adapter_export_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    model = _adapter_mlp(rng, rank=3)
    graph = transfer.export_adapter_mlp(model)
    types = [n.op_type for n in graph.node]
    assert types.count("Add") == 2 and types.count("Gemm") == 7 and types.count("Relu") == 4
    X = rng.standard_normal((11, 5))
    got = _session(graph).run(None, {"x": X.astype(np.float32)})[0]
    np.testing.assert_allclose(got, model.predict(X), atol=ATOL)


@pytest.mark.parametrize("k", [0, 3])
def test_attention_export_matches_numpy(k: int) -> None:
    rng = np.random.default_rng(8 + k)
    model = _attention(rng, k)
    graph = transfer.export_attention(model)
    types = [n.op_type for n in graph.node]
    assert ("Concat" in types and "Expand" in types) == bool(k)
    sess = _session(graph)
    for n, t in ((1, 4), (6, 7)):  # batch and sequence length are both dynamic
        ids = rng.integers(0, 6, (n, t))
        logits, attention = sess.run(None, {"tokens": ids.astype(np.int64)})
        expected, cache = model.forward(ids)
        assert attention.shape == (n, t, k + t)
        np.testing.assert_allclose(logits, expected, atol=ATOL)
        np.testing.assert_allclose(attention, cache["A"], atol=ATOL)


# --------------------------------------------------------------------------- training helpers


def test_adapters_start_as_the_identity() -> None:
    rng = np.random.default_rng(10)
    net = nets.init_mlp(rng, [4, 8, 8, 2])
    model = transfer.AdapterMLP.wrap(net, 2, rng)
    X = rng.standard_normal((20, 4))
    assert np.array_equal(model.predict(X), nets.predict(net, X))
    assert transfer.n_params(model.adapter_params()) == 2 * (8 * 2 + 2 + 2 * 8 + 8)


def test_fit_moves_only_trainable_arrays() -> None:
    rng = np.random.default_rng(11)
    X = rng.standard_normal((40, 4))
    y = rng.integers(0, 2, 40)
    net = nets.init_mlp(rng, [4, 8, 8, 2])
    model = transfer.AdapterMLP.wrap(net, 2, rng)
    before = [p.copy() for p in model.params()]
    flags = model.adapter_tuning()
    transfer.fit(model, X, y, nets.Adam(lr=0.01), steps=20, trainable=flags)
    for f, old, new in zip(flags, before, model.params(), strict=True):
        assert np.array_equal(old, new) != f  # frozen: identical; trainable: changed
    mlp = nets.init_mlp(rng, [4, 8, 8, 2])
    before = [p.copy() for p in mlp.params()]
    flags = transfer.top_layers(mlp, 2)
    assert flags == [False, False, True, True, True, True]
    transfer.fit(mlp, X, y, nets.Adam(lr=0.01), steps=10, trainable=flags, rng=rng, batch_size=16)
    for f, old, new in zip(flags, before, mlp.params(), strict=True):
        assert np.array_equal(old, new) != f


def test_head_only_fast_path_equals_full_backprop() -> None:
    rng = np.random.default_rng(12)
    X = rng.standard_normal((30, 4))
    y = rng.integers(0, 3, 30)
    net = nets.init_mlp(rng, [4, 8, 8, 3])
    fast = net.copy()
    transfer.fit(fast, X, y, nets.Adam(lr=0.01), steps=25, trainable=transfer.head_only(net))
    slow = net.copy()
    opt = nets.Adam(lr=0.01)
    head = slow.params()[-2:]
    for _ in range(25):
        grads = transfer.mlp_loss_grads(slow, X, y)[1]
        opt.step(head, grads[-2:], [True, False])
    for a, b in zip(fast.params(), slow.params(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_restore_best_keeps_the_best_checkpoint() -> None:
    rng = np.random.default_rng(13)
    X = rng.standard_normal((30, 3))
    y = rng.integers(0, 2, 30)
    net = nets.init_mlp(rng, [3, 6, 2])
    seen: list[np.ndarray] = []

    def evaluate(model: nets.MLP) -> float:
        seen.append(model.weights[0].copy())
        return [5.0, 1.0, 3.0, 4.0][len(seen) - 1]  # the checkpoint after step 10 is "best"

    curve = transfer.fit(net, X, y, nets.SGD(lr=0.1), steps=30, evaluate=evaluate, eval_every=10,
                         restore_best=True)
    assert [s for s, _ in curve] == [0, 10, 20, 30]
    assert np.array_equal(net.weights[0], seen[1])
    assert not np.array_equal(seen[1], seen[3])


def test_fine_tuning_beats_scratch_on_a_related_task() -> None:
    rng = np.random.default_rng(14)
    setup = transfer.make_setup(rng, n_source=3000, n_target=100, pretrain_steps=300)
    assert transfer.accuracy(nets.predict(setup.pretrained, setup.X_source_val),
                             setup.y_source_val) > 0.7

    def val_loss(model: nets.MLP) -> float:
        return transfer.cross_entropy(nets.predict(model, setup.X_val), setup.y_val)

    tuned = transfer.with_new_head(setup.pretrained, 3, rng)
    scratch = nets.init_mlp(rng, [16, 64, 64, 3])
    for model, lr in ((tuned, 3e-4), (scratch, 1e-3)):
        transfer.fit(model, setup.X_train, setup.y_train, nets.Adam(lr=lr), steps=200,
                     evaluate=val_loss, eval_every=20, restore_best=True)
    loss = {name: transfer.cross_entropy(nets.predict(m, setup.X_test), setup.y_test)
            for name, m in (("tuned", tuned), ("scratch", scratch))}
    assert loss["tuned"] < loss["scratch"]


def test_related_tasks_share_low_level_features() -> None:
    rng = np.random.default_rng(15)
    same_s, same_t = transfer.related_tasks(rng, shift=0.0)
    assert np.array_equal(same_s.A, same_t.A) and np.allclose(same_s.C, same_t.C)
    source, target = transfer.related_tasks(rng, shift=0.8)
    assert np.array_equal(source.A, target.A) and not np.allclose(source.C, target.C)
    X, y = target.sample(rng, 200)
    assert X.shape == (200, 16) and set(np.unique(y)) <= {0, 1, 2}


def test_lexicons_and_sequences() -> None:
    rng = np.random.default_rng(16)
    src, tgt = transfer.polarity_lexicons(rng, 20, n_positive=4, n_negative=3, n_changed=6)
    assert (src == 1).sum() == 4 and (src == -1).sum() == 3
    assert (src != tgt).sum() == 6
    ids, y = transfer.sample_sequences(rng, tgt, 150, 7)
    assert ids.shape == (150, 7) and ids.dtype == np.int64
    totals = tgt[ids].sum(axis=1)
    assert np.all(totals != 0) and np.array_equal(y, (totals > 0).astype(np.int64))


def test_prefix_from_tokens_uses_their_keys_and_values() -> None:
    rng = np.random.default_rng(17)
    model = transfer.AttentionClassifier.init(rng, vocab=6, d=4)
    prefixed = model.prefix_from_tokens([2, 5])
    np.testing.assert_allclose(prefixed.Pk, model.E[[2, 5]] @ model.Wk)
    np.testing.assert_allclose(prefixed.Pv, model.E[[2, 5]] @ model.Wv)
    assert prefixed.k == 2 and model.k == 0
    assert prefixed.prefix_tuning() == [False] * 6 + [True, True]
