"""Tests for demos/demolib: NumPy nets and linear models agree with their ONNX Runtime exports."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"
if str(DEMOS) not in sys.path:
    sys.path.insert(0, str(DEMOS))

from demolib import datasets, linear, nets, onnx_export  # noqa: E402

ATOL = 1e-5


def _run(graph: onnx.GraphProto, X: np.ndarray, **feeds: np.ndarray) -> np.ndarray:
    model = onnx_export.make_model(graph)
    onnx.checker.check_model(model, full_check=True)
    sess = onnx_export.session(model)
    return sess.run(None, {"x": X.astype(np.float32), **feeds})[0]


def _trained_net(rng: np.random.Generator, **kw) -> tuple[nets.MLP, np.ndarray]:
    """A small net trained a few steps so weights, biases and BN stats are non-trivial."""
    X, y = datasets.moons(rng, 64, noise=0.15)
    net = nets.init_mlp(rng, [2, 16, 12, 3], **kw)
    nets.fit(net, X, y, nets.softmax_cross_entropy, nets.Adam(lr=0.01), steps=30, rng=rng)
    return net, X


def test_make_model_versions() -> None:
    net = nets.init_mlp(np.random.default_rng(0), [3, 4, 2])
    model = onnx_export.make_model(onnx_export.export_mlp(net))
    assert model.ir_version == 10
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == ["y"]
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == "N"  # dynamic batch


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("head", ["identity", "sigmoid", "softmax"])
def test_mlp_export_matches_numpy(activation: str, head: str) -> None:
    rng = np.random.default_rng(1)
    net, X = _trained_net(rng, activation=activation)
    logits = nets.predict(net, X)
    expected = {
        "identity": logits,
        "sigmoid": nets.sigmoid(logits),
        "softmax": nets.softmax(logits),
    }[head]
    got = _run(onnx_export.export_mlp(net, head=head), X)
    np.testing.assert_allclose(got, expected, atol=ATOL)


def test_dropout_is_identity_at_inference() -> None:
    rng = np.random.default_rng(2)
    net, X = _trained_net(rng, dropout=0.5)
    graph = onnx_export.export_mlp(net)
    assert [n.op_type for n in graph.node].count("Dropout") == 2
    # training_mode absent: the numpy inference forward has no dropout and no rescaling
    np.testing.assert_allclose(_run(graph, X), nets.predict(net, X), atol=ATOL)
    # training_mode wired in but False: still the identity
    graph_tm = onnx_export.export_mlp(net, training_mode_input=True, seed=0)
    got = _run(graph_tm, X, training_mode=np.array(False))
    np.testing.assert_allclose(got, nets.predict(net, X), atol=ATOL)


def test_dropout_training_mode_in_ort() -> None:
    p = 0.3
    x = np.ones((400, 250), np.float32)
    graph = onnx_export.export_dropout(p, 250, seed=5)
    y_eval = _run(graph, x, training_mode=np.array(False))
    assert np.array_equal(y_eval, x)
    y = _run(graph, x, training_mode=np.array(True))
    assert abs(np.mean(y == 0.0) - p) < 0.01
    np.testing.assert_allclose(np.unique(y[y != 0.0]), [1.0 / (1.0 - p)], rtol=1e-6)
    # a fresh session with the same seed gives the same first-run mask
    assert np.array_equal(y, _run(graph, x, training_mode=np.array(True)))


def test_batchnorm_inference_uses_running_stats() -> None:
    rng = np.random.default_rng(3)
    net, X = _trained_net(rng, batchnorm=True)
    assert net.batchnorm is not None
    bn = net.batchnorm[0]
    assert not np.allclose(bn.running_mean, 0.0)  # stats were actually updated
    assert not np.allclose(bn.running_var, 1.0)
    X_shift = X[:7] * 2.0 + 1.0  # a batch whose own statistics differ from the running ones
    got = _run(onnx_export.export_mlp(net, head="softmax"), X_shift)
    expected = nets.softmax(nets.predict(net, X_shift))
    np.testing.assert_allclose(got, expected, atol=ATOL)
    batch_stats = nets.softmax(nets.forward(net, X_shift, train=True)[0])
    assert not np.allclose(got, batch_stats, atol=1e-3)


def test_export_mlps_concatenates_members() -> None:
    rng = np.random.default_rng(4)
    members = [nets.init_mlp(rng, [1, 8, 1], activation="tanh") for _ in range(3)]
    X = rng.uniform(-1, 1, (20, 1))
    got = _run(onnx_export.export_mlps(members), X)
    expected = np.hstack([nets.predict(m, X) for m in members])
    np.testing.assert_allclose(got, expected, atol=ATOL)


def test_export_linear_and_polynomial() -> None:
    rng = np.random.default_rng(5)
    X, y, _ = datasets.sparse_linear(rng, 50, 6)
    model = linear.ridge(X, y, 0.1)
    np.testing.assert_allclose(_run(onnx_export.export_linear(model), X), model.predict(X), atol=ATOL)
    x, t = datasets.regression_1d(rng, 40)
    poly = linear.ridge(linear.poly_features(x, 5), t, 1e-3)
    got = _run(onnx_export.export_linear(poly, degree=5), x)
    np.testing.assert_allclose(got, poly.predict(linear.poly_features(x, 5)), atol=ATOL)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_backward_matches_numerical_gradient(activation: str) -> None:
    rng = np.random.default_rng(6)
    net = nets.init_mlp(rng, [3, 5, 4, 2], activation=activation, dropout=0.25, batchnorm=True)
    for bn in net.batchnorm or []:
        bn.gamma += rng.normal(0, 0.2, bn.gamma.shape)
        bn.beta += rng.normal(0, 0.2, bn.beta.shape)
    for b in net.biases:
        b += rng.normal(0, 0.1, b.shape)
    X = rng.standard_normal((7, 3))
    labels = rng.integers(0, 2, 7)
    masks = [nets.dropout_mask(rng, (7, w), net.dropout) for w in net.sizes[1:-1]]

    def loss_value() -> float:
        out = nets.forward(net, X, train=True, masks=masks)[0]
        return nets.softmax_cross_entropy(out, labels)[0]

    out, cache = nets.forward(net, X, train=True, masks=masks)
    grads = nets.backward(net, cache, nets.softmax_cross_entropy(out, labels)[1])
    params = net.params()
    assert [g.shape for g in grads] == [p.shape for p in params]
    h = 1e-6
    for p, g in zip(params, grads, strict=True):
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            up = loss_value()
            p[idx] = old - h
            down = loss_value()
            p[idx] = old
            num[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    ("loss", "target"),
    [
        (nets.mse, lambda rng: rng.standard_normal((5, 2))),
        (nets.logistic_cross_entropy, lambda rng: rng.integers(0, 2, (5, 2))),
    ],
)
def test_loss_gradients(loss, target) -> None:
    rng = np.random.default_rng(7)
    z = rng.standard_normal((5, 2))
    y = target(rng)
    _, g = loss(z, y)
    h = 1e-6
    num = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        num[idx] = (loss(zp, y)[0] - loss(zm, y)[0]) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-9)


def test_lasso_gives_exact_zeros() -> None:
    rng = np.random.default_rng(8)
    X, y, w_true = datasets.sparse_linear(rng, 100, 20, k=3, noise=0.3)
    model = linear.lasso(X, y, 0.1)
    zeros = model.coef == 0.0
    assert zeros.sum() >= 10  # many coefficients exactly zero, not merely small
    assert np.all(model.coef[w_true != 0.0] != 0.0)  # the true features survive
    # KKT: |x_j^T r / n| <= lam for zero coefficients, == lam * sign(w_j) otherwise
    r = y - model.predict(X)
    corr = (X - X.mean(axis=0)).T @ r / len(y)
    assert np.all(np.abs(corr[zeros]) <= 0.1 + 1e-6)
    np.testing.assert_allclose(corr[~zeros], 0.1 * np.sign(model.coef[~zeros]), atol=1e-6)


def test_ridge_matches_normal_equations() -> None:
    rng = np.random.default_rng(9)
    X, y, _ = datasets.sparse_linear(rng, 60, 5)
    model = linear.ridge(X, y, 0.5)
    grad = -(X.T @ (y - model.predict(X))) / len(y) + 0.5 * model.coef
    np.testing.assert_allclose(grad, 0.0, atol=1e-10)
    assert abs(np.mean(y - model.predict(X))) < 1e-10


def test_robust_fits_resist_outliers() -> None:
    rng = np.random.default_rng(10)
    x = rng.uniform(-1, 1, (80, 1))
    y = 2.0 * x[:, 0] + 0.5 + 0.05 * rng.standard_normal(80)
    y[:8] += 10.0  # gross outliers
    ols = linear.ridge(x, y, 0.0)
    for model in (linear.huber(x, y, delta=0.2), linear.mae(x, y)):
        assert abs(model.coef[0] - 2.0) < 0.15
        assert abs(model.coef[0] - 2.0) < abs(ols.coef[0] - 2.0)
        assert abs(model.intercept - 0.5) < abs(ols.intercept - 0.5)


def _train_with(opt: nets.SGD | nets.Adam, steps: int = 200) -> nets.MLP:
    rng = np.random.default_rng(11)
    X, y = datasets.regression_1d(rng, 30)
    net = nets.init_mlp(rng, [1, 16, 16, 1], activation="tanh")
    nets.fit(net, X, y, nets.mse, opt, steps=steps)
    return net


def test_sgd_coupled_l2_equals_decoupled_weight_decay() -> None:
    coupled = _train_with(nets.SGD(lr=0.05, l2=0.01))
    decoupled = _train_with(nets.SGD(lr=0.05, weight_decay=0.01))
    plain = _train_with(nets.SGD(lr=0.05))
    for a, b in zip(coupled.params(), decoupled.params(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert coupled.weight_norm() < plain.weight_norm()


def test_adam_l2_differs_from_adamw() -> None:
    adam_l2 = _train_with(nets.Adam(lr=0.01, l2=0.05))
    adamw = _train_with(nets.AdamW(lr=0.01, weight_decay=0.05))
    pairs = zip(adam_l2.params(), adamw.params(), strict=True)
    diff = max(float(np.max(np.abs(a - b))) for a, b in pairs)
    assert diff > 1e-3


def test_fit_reduces_loss_and_is_deterministic() -> None:
    def run() -> tuple[nets.History, nets.MLP]:
        rng = np.random.default_rng(12)
        data = datasets.split(rng, *datasets.circles(rng, 200, noise=0.1))
        net = nets.init_mlp(rng, [2, 32, 2], dropout=0.2)
        hist = nets.fit(
            net,
            data.X_train,
            data.y_train,
            nets.softmax_cross_entropy,
            nets.Adam(lr=0.02),
            steps=150,
            rng=rng,
            batch_size=32,
            X_val=data.X_val,
            y_val=data.y_val,
            eval_every=50,
        )
        return hist, net

    (h1, n1), (h2, n2) = run(), run()
    assert h1.step == [50, 100, 150]
    assert h1.train_loss[-1] < 0.3 and h1.val_loss[-1] < 0.4
    assert h1.train_loss == h2.train_loss
    assert all(np.array_equal(a, b) for a, b in zip(n1.params(), n2.params(), strict=True))


def test_datasets_are_seeded_and_split() -> None:
    a = datasets.moons(np.random.default_rng(0), 50)
    b = datasets.moons(np.random.default_rng(0), 50)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert a[0].shape == (50, 2) and set(np.unique(a[1])) == {0, 1}
    X, y = datasets.regression_1d(np.random.default_rng(1), 100)
    s = datasets.split(np.random.default_rng(2), X, y, val=0.2, test=0.1)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (70, 20, 10)
    assert np.all(np.diff(s.X_train[:, 0]) >= 0)  # order kept within a part
    joined = np.sort(np.concatenate([s.y_train, s.y_val, s.y_test]))
    assert np.array_equal(joined, np.sort(y))
