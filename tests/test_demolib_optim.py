"""Tests for demos/demolib/optim.py (with optimizers.py and mlp_stack.py): least-squares problems,
vectorised optimisers, the stacked MLP's hand-written backward pass, the SGD noise floor, and the
ONNX loss-surface graph."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"
if str(DEMOS) not in sys.path:
    sys.path.insert(0, str(DEMOS))

from demolib import datasets, nets, onnx_export, optim  # noqa: E402

ATOL = 1e-5


def _problem(seed: int = 0, eigvals=(0.5, 5.0), n: int = 200, noise: float = 0.5) -> optim.LeastSquares:
    rng = np.random.default_rng(seed)
    basis = optim.rotation(0.4) if len(eigvals) == 2 else None
    return optim.LeastSquares.from_spectrum(rng, n, eigvals, noise=noise, basis=basis)


def _numerical_grad(f, w: np.ndarray, h: float = 1e-6) -> np.ndarray:
    num = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        up, down = w.copy(), w.copy()
        up[idx] += h
        down[idx] -= h
        num[idx] = (f(up) - f(down)) / (2 * h)
    return num


def test_from_spectrum_has_exact_eigenvalues_and_optimum() -> None:
    P = _problem(eigvals=(0.1, 1.0, 7.0), n=300)
    np.testing.assert_allclose(P.eigvals, [0.1, 1.0, 7.0], rtol=1e-10)
    np.testing.assert_allclose(P.grad(P.w_star[None, :]), 0.0, atol=1e-12)
    np.testing.assert_allclose(P.X.T @ P.residuals, 0.0, atol=1e-9)  # normal equations
    rotated = _problem()
    np.testing.assert_allclose(rotated.eigvals, [0.5, 5.0], rtol=1e-10)
    assert abs(rotated.hessian[0, 1]) > 0.5  # the rotation really couples the two weights


def test_gradients_match_finite_differences() -> None:
    P = _problem(eigvals=(0.3, 2.0, 4.0))
    rng = np.random.default_rng(1)
    W = rng.standard_normal((3, 3))
    for w, g in zip(W, P.grad(W), strict=True):
        np.testing.assert_allclose(g, _numerical_grad(lambda v: float(P.loss(v)), w), rtol=1e-6, atol=1e-8)
    # every example once = the full gradient; per-example gradients average to it too
    idx = np.tile(np.arange(P.n), (3, 1))
    np.testing.assert_allclose(P.batch_grad(W, idx), P.grad(W), atol=1e-12)
    np.testing.assert_allclose(P.per_example_grads(W[0]).mean(axis=0), P.grad(W[:1])[0], atol=1e-12)
    # a batch of one example is that example's gradient
    np.testing.assert_allclose(P.batch_grad(W[:1], np.array([[7]]))[0], P.per_example_grads(W[0])[7])


def test_excess_equals_loss_minus_optimum() -> None:
    P = _problem()
    W = np.random.default_rng(2).standard_normal((5, 2)) * 3
    np.testing.assert_allclose(P.excess(W), P.loss(W) - P.loss_star, rtol=1e-10)
    assert P.excess(P.w_star) == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize("factor", [0.5, 1.0, 1.5])
def test_gd_contracts_at_the_rate_the_eigenvalues_predict(factor: float) -> None:
    P = _problem()
    lr = factor / P.lam_max
    path = optim.trajectory(optim.GD(lr), P.grad, np.array([-2.0, 2.5]), 60)
    err = np.linalg.norm(path - P.w_star, axis=1)
    rho = P.gd_rate(lr)
    assert rho == pytest.approx(max(abs(1 - lr * 0.5), abs(1 - lr * 5.0)))
    assert optim.linear_rate(err, 20) == pytest.approx(rho, rel=1e-6)
    assert np.all(err <= rho ** np.arange(61) * err[0] * (1 + 1e-9))
    assert np.all(np.diff(P.excess(path)) < 0)  # below 2/L: the loss falls at every step


def test_gd_diverges_above_two_over_lambda_max() -> None:
    P = _problem()
    lrs = np.array([1.95, 2.05]) / P.lam_max
    path = optim.trajectory(optim.GD(lrs), P.grad, np.tile([1.0, 1.0], (2, 1)), 200)
    final = P.excess(path[-1])
    assert final[0] < 1e-3 * P.excess(path[0])[0]
    assert final[1] > 1e3 * P.excess(path[0])[1]


def test_sgd_stationary_excess_matches_simulation() -> None:
    P = _problem()
    rng = np.random.default_rng(3)
    lr, batch = 0.05, 2
    theory = optim.sgd_stationary_excess(P, lr, batch)
    path = optim.trajectory(optim.GD(lr), P.sgd_grad(rng, batch), np.tile(P.w_star, (200, 1)), 1500)
    measured = float(P.excess(path[500:]).mean())
    assert measured == pytest.approx(theory, rel=0.1)
    # the floor grows with the step and shrinks with the batch; too large a step has none
    assert optim.sgd_stationary_excess(P, lr / 2, batch) < theory
    assert optim.sgd_stationary_excess(P, lr, 4 * batch) < theory
    assert optim.sgd_stationary_excess(P, 2.5 / P.lam_max, batch) == float("inf")


def test_momentum_and_adam_match_demolib_nets() -> None:
    """Fed the same gradients, the row-wise optimisers take the same steps as demolib.nets."""
    rng = np.random.default_rng(4)
    grads = rng.standard_normal((30, 6))
    w0 = rng.standard_normal(6)
    pairs = [
        (optim.Momentum(0.05, 0.9), nets.SGD(lr=0.05, momentum=0.9)),
        (optim.Adam(0.01), nets.Adam(lr=0.01)),
        (optim.GD(0.1), nets.SGD(lr=0.1)),
    ]
    for mine, theirs in pairs:
        W = w0[None, :].copy()
        ref = [w0.copy()]
        for t, g in enumerate(grads, 1):
            W = mine.step(W, g[None, :], t)
            theirs.step(ref, [g])
        np.testing.assert_allclose(W[0], ref[0], rtol=1e-12, atol=1e-14)


def test_adam_bias_correction_and_scale_invariance() -> None:
    g = np.array([[3.0, -0.002, 40.0]])
    lr = 0.01
    corrected = optim.Adam(lr)
    corrected.step(np.zeros((1, 3)), g, 1)
    np.testing.assert_allclose(corrected.last_step, -lr * g / (np.abs(g) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(corrected.last_step, -lr * np.sign(g), rtol=1e-4)
    raw = optim.Adam(lr, bias_correction=False)
    raw.step(np.zeros((1, 3)), g, 1)
    ratio = float(optim.adam_step_ratio(1))
    assert ratio == pytest.approx(0.1 / np.sqrt(0.001))
    np.testing.assert_allclose(raw.last_step, -lr * 0.1 * g / (np.sqrt(0.001) * np.abs(g) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(raw.last_step, -lr * ratio * np.sign(g), rtol=1e-3)
    # a constant gradient: the uncorrected step follows adam_step_ratio(t)
    raw = optim.Adam(lr, bias_correction=False)
    W = np.zeros((1, 1))
    sizes = []
    for t in range(1, 60):
        W = raw.step(W, np.array([[2.0]]), t)
        sizes.append(abs(raw.last_step[0, 0]) / lr)
    np.testing.assert_allclose(sizes, optim.adam_step_ratio(np.arange(1, 60)), rtol=1e-6)
    # per-row flags: row 0 corrected, row 1 not, fed the same gradients
    both = optim.Adam(lr, bias_correction=np.array([True, False]))
    W = both.step(np.zeros((2, 3)), np.vstack([g, g]), 1)
    np.testing.assert_allclose(W[0], corrected.last_step[0], rtol=1e-12)
    np.testing.assert_allclose(W[1], -lr * 0.1 * g[0] / (np.sqrt(0.001) * np.abs(g[0]) + 1e-8), rtol=1e-12)
    # multiplying the loss by 1000 leaves Adam's path unchanged (up to eps), unlike GD's
    P = _problem()
    w0 = np.array([-2.0, 2.5])
    paths = [optim.trajectory(optim.Adam(0.1), lambda W, t, c=c: c * P.grad(W), w0, 100) for c in (1.0, 1000.0)]
    np.testing.assert_allclose(paths[0], paths[1], rtol=1e-6, atol=1e-6)


def test_minimize_records_losses_and_survives_divergence() -> None:
    P = _problem()

    def loss_grad(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return P.loss(W), P.grad(W)

    lrs = np.array([0.5, 2.5]) / P.lam_max
    W, losses = optim.minimize(optim.GD(lrs), loss_grad, np.tile([1.0, -1.0], (2, 1)), 2000)
    assert losses.shape == (2001, 2)
    np.testing.assert_allclose(losses[-1, 0], P.loss_star, rtol=1e-10)
    np.testing.assert_allclose(W[0], P.w_star, atol=1e-8)
    assert not np.isfinite(losses[-1, 1])  # blew up, without raising


def test_sharpness_finds_the_top_eigenvalue() -> None:
    P = _problem(eigvals=(0.2, 1.0, 3.0, 9.0))
    lam = optim.sharpness(P.grad, np.zeros(4), np.random.default_rng(5), iters=80)
    assert lam == pytest.approx(9.0, rel=1e-6)


def _stack_and_net(activation: str, sizes=(2, 7, 5, 3), k: int = 3):
    rng = np.random.default_rng(6)
    stack = optim.MLPStack(sizes, activation)
    members = [nets.init_mlp(rng, sizes, activation=activation) for _ in range(k)]
    for net in members:
        for b in net.biases:
            b += rng.normal(0, 0.3, b.shape)
    W = np.stack([stack.flatten(net) for net in members])
    return stack, members, W, rng


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_stack_forward_and_grads_match_nets(activation: str) -> None:
    stack, members, W, rng = _stack_and_net(activation)
    X = rng.standard_normal((11, 2))
    labels = rng.integers(0, 3, 11)
    targets = rng.standard_normal((11, 3))
    out = stack.predict(W, X)
    for k, net in enumerate(members):
        np.testing.assert_allclose(out[k], nets.predict(net, X), atol=1e-12)
        assert all(np.array_equal(a, b) for a, b in zip(stack.to_net(W[k]).params(), net.params(), strict=True))
    for loss_name, loss_fn, target in (("softmax", nets.softmax_cross_entropy, labels), ("mse", nets.mse, targets)):
        values, grads = stack.loss_grad(W, X, target, loss_name)
        for k, net in enumerate(members):
            o, cache = nets.forward(net, X, train=True)
            value, dout = loss_fn(o, target)
            assert values[k] == pytest.approx(value, rel=1e-12)
            expected = np.concatenate([g.ravel() for g in nets.backward(net, cache, dout)])
            np.testing.assert_allclose(grads[k], expected, rtol=1e-10, atol=1e-14)


def test_stack_backward_matches_finite_differences() -> None:
    stack, _, W, rng = _stack_and_net("tanh", sizes=(3, 4, 2), k=2)
    X = rng.standard_normal((6, 3))
    y = rng.standard_normal(6 * 2)
    _, grads = stack.loss_grad(W, X, y, "mse")
    for k in range(2):
        def f(row: np.ndarray, k: int = k) -> float:
            return float(stack.loss_grad(row[None, :], X, y, "mse")[0][0])
        np.testing.assert_allclose(grads[k], _numerical_grad(f, W[k].copy()), rtol=1e-6, atol=1e-9)


def test_stack_trains_many_learning_rates_at_once() -> None:
    rng = np.random.default_rng(7)
    X, y = datasets.regression_1d(rng, 40, noise=0.05)
    stack = optim.MLPStack((1, 16, 1), "tanh")
    net = nets.init_mlp(rng, [1, 16, 1], activation="tanh")
    lrs = np.array([0.01, 0.1])
    W0 = np.tile(stack.flatten(net), (2, 1))
    W, losses = optim.minimize(optim.GD(lrs), lambda W: stack.loss_grad(W, X, y), W0, 100)
    # row k is exactly demolib.nets trained alone with lrs[k]
    for k, lr in enumerate(lrs):
        alone = net.copy()
        nets.fit(alone, X, y, nets.mse, nets.SGD(lr=float(lr)), steps=100)
        np.testing.assert_allclose(W[k], stack.flatten(alone), rtol=1e-9, atol=1e-12)
    assert losses[-1, 1] < losses[-1, 0] < losses[0, 0]


def test_stack_export_runs_in_onnx_runtime() -> None:
    stack, _, W, rng = _stack_and_net("relu")
    X = rng.standard_normal((9, 2))
    net = stack.to_net(W[1])
    sess = onnx_export.session(onnx_export.make_model(onnx_export.export_mlp(net)))
    got = sess.run(None, {"x": X.astype(np.float32)})[0]
    np.testing.assert_allclose(got, stack.predict(W[1:2], X)[0], atol=ATOL)


def test_loss_surface_graph_matches_numpy() -> None:
    P = _problem(eigvals=(0.5, 5.0), n=150)
    model = onnx_export.make_model(optim.export_loss_surface(P))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import] == [17]
    sess = onnx_export.session(model)
    W = np.random.default_rng(8).uniform(-4, 4, (500, 2))
    got = sess.run(None, {"x": W.astype(np.float32)})[0]
    assert got.shape == (500,)
    np.testing.assert_allclose(got, P.loss(W), rtol=1e-5)
    # and the minimum of the surface is at w*
    best = sess.run(None, {"x": P.w_star[None, :].astype(np.float32)})[0][0]
    assert best == pytest.approx(P.loss_star, rel=1e-5)
    assert np.all(got >= best)


def test_sgd_moments_match_simulation_and_the_stationary_floor() -> None:
    P = _problem(eigvals=(0.3, 1.0, 3.0), n=300)
    rng = np.random.default_rng(9)
    e0 = np.array([1.5, -1.0, 0.5])
    lrs = np.array([0.05, 0.1])  # well inside SGD's stable range (near its edge the excess is heavy-tailed)
    moments = optim.SGDMoments(P)
    for batch in (1, 4):
        exact = moments.excess(lrs, batch, e0, 400)
        assert exact[0] == pytest.approx(float(P.excess(P.w_star + e0)), rel=1e-12)
        for k, lr in enumerate(lrs):
            path = optim.trajectory(optim.GD(lr), P.sgd_grad(rng, batch), np.tile(P.w_star + e0, (400, 1)), 400)
            simulated = P.excess(path).mean(axis=1)
            for step in (5, 20, 100, 400):
                assert simulated[step] == pytest.approx(exact[step, k], rel=0.12)
    # after many steps the expectation settles at the stationary floor
    long = moments.excess(np.array([0.1]), 2, e0, 3000)
    assert long[-1, 0] == pytest.approx(optim.sgd_stationary_excess(P, 0.1, 2), rel=1e-6)
    # stop_below ends the run early
    stopped = moments.excess(lrs, 1, e0, 400, stop_below=0.5 * exact[0, 0])
    assert np.isnan(stopped[-1]).all() and np.isfinite(stopped[1]).all()
