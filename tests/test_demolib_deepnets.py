"""Tests for demos/demolib/deepnets.py: hand-written backprop against finite differences, the
multiply-add counts, and every exported graph against the NumPy forward pass in ONNX Runtime."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"
if str(DEMOS) not in sys.path:
    sys.path.insert(0, str(DEMOS))

from demolib import datasets, deepnets, nets, onnx_export  # noqa: E402

ATOL = 1e-5


def _run(graph: onnx.GraphProto, X: np.ndarray) -> np.ndarray:
    model = onnx_export.make_model(graph)
    onnx.checker.check_model(model, full_check=True)
    return onnx_export.session(model).run(None, {"x": X.astype(np.float32)})[0]


def _net(rng: np.random.Generator, sizes: list[int], activation: str, residual: bool) -> deepnets.Net:
    """A random net with non-zero biases (so bias gradients and exports are exercised)."""
    net = deepnets.init_net(rng, sizes, activation, residual=residual)
    for b in net.biases:
        b += rng.normal(0.0, 0.3, b.shape)
    return net


@pytest.mark.parametrize("activation", deepnets.ACTIVATIONS)
@pytest.mark.parametrize("residual", [False, True])
def test_backward_matches_finite_differences(activation: str, residual: bool) -> None:
    rng = np.random.default_rng(0)
    net = _net(rng, [3, 6, 6, 6, 2], activation, residual)
    X = rng.standard_normal((9, 3))
    labels = rng.integers(0, 2, 9)
    _, grads = deepnets.loss_and_grads(net, X, labels, nets.softmax_cross_entropy)
    assert [g.shape for g in grads.params] == [p.shape for p in net.params()]
    bp = deepnets.flatten(grads.params)
    fd = deepnets.numerical_gradient(net, X, labels, nets.softmax_cross_entropy, h=1e-6)
    np.testing.assert_allclose(bp, fd, rtol=1e-5, atol=1e-8)
    assert np.linalg.norm(bp - fd) / np.linalg.norm(fd) < 1e-7
    # the net's weights are untouched by the finite differences
    again = deepnets.flatten(deepnets.loss_and_grads(net, X, labels, nets.softmax_cross_entropy)[1].params)
    np.testing.assert_array_equal(again, bp)


def test_input_gradients_match_finite_differences() -> None:
    """``Grads.inputs[i]`` is dLoss/d(input of layer i): perturb that input in a re-run."""
    rng = np.random.default_rng(1)
    net = _net(rng, [2, 5, 5, 1], "tanh", True)
    X = rng.standard_normal((4, 2))
    y = rng.standard_normal((4, 1))
    out, trace = deepnets.forward(net, X)
    grads = deepnets.backward(net, trace, nets.mse(out, y)[1])
    assert grads.inputs[0] is None
    # layer 2's input a2 feeds only the rest of the net: loss as a function of a2
    a2 = trace.inputs[2]

    def loss_from(a: np.ndarray) -> float:
        z = a @ net.weights[2] + net.biases[2]
        return nets.mse(z, y)[0]

    h = 1e-6
    num = np.zeros_like(a2)
    for idx in np.ndindex(a2.shape):
        up, down = a2.copy(), a2.copy()
        up[idx] += h
        down[idx] -= h
        num[idx] = (loss_from(up) - loss_from(down)) / (2 * h)
    np.testing.assert_allclose(grads.inputs[2], num, rtol=1e-6, atol=1e-10)


def test_numerical_gradient_subset() -> None:
    rng = np.random.default_rng(2)
    net = _net(rng, [2, 4, 1], "sigmoid", False)
    X = rng.standard_normal((6, 2))
    y = rng.integers(0, 2, 6)
    full = deepnets.numerical_gradient(net, X, y, nets.logistic_cross_entropy)
    some = deepnets.numerical_gradient(net, X, y, nets.logistic_cross_entropy, indices=[0, 7, 16])
    assert np.count_nonzero(some) == 3
    np.testing.assert_array_equal(some[[0, 7, 16]], full[[0, 7, 16]])


@pytest.mark.parametrize("activation", ["identity", "relu", "tanh", "sigmoid"])
def test_activation_derivatives(activation: str) -> None:
    z = np.linspace(-4, 4, 81) + 0.013  # avoid ReLU's kink at exactly 0
    h = 1e-6
    num = (deepnets.activate(activation, z + h) - deepnets.activate(activation, z - h)) / (2 * h)
    np.testing.assert_allclose(deepnets.derivative(activation, z), num, atol=1e-8)


def test_sigmoid_derivative_peak() -> None:
    z = np.linspace(-6, 6, 1201)
    d = deepnets.derivative("sigmoid", z)
    assert z[np.argmax(d)] == pytest.approx(0.0, abs=1e-12)
    assert d.max() == pytest.approx(0.25, abs=1e-12)


def test_mac_counter_matches_formulas() -> None:
    rng = np.random.default_rng(3)
    for sizes, residual in (([2, 16, 16, 1], False), ([3, 8, 8, 8, 2], True), ([4, 1], False)):
        net = _net(rng, sizes, "relu", residual)
        X = rng.standard_normal((11, sizes[0]))
        y = rng.standard_normal((11, sizes[-1]))
        fwd = deepnets.MacCounter()
        out, trace = deepnets.forward(net, X, fwd)
        assert fwd.macs == deepnets.forward_macs(sizes, 11)
        bwd = deepnets.MacCounter()
        deepnets.backward(net, trace, nets.mse(out, y)[1], bwd)
        assert bwd.macs == deepnets.backward_macs(sizes, 11)
        fd = deepnets.MacCounter()
        deepnets.numerical_gradient(net, X, y, nets.mse, counter=fd)
        assert fd.macs == 2 * net.n_params * deepnets.forward_macs(sizes, 11)
    # a 2-16-16-1 net: 304 multiply-adds per example forward, 576 backward
    assert deepnets.forward_macs([2, 16, 16, 1], 1) == 304
    assert deepnets.backward_macs([2, 16, 16, 1], 1) == 576


def test_skips_only_on_square_hidden_layers() -> None:
    net = deepnets.init_net(np.random.default_rng(4), [2, 8, 8, 6, 6, 1], "tanh", residual=True)
    assert net.skips() == [False, True, False, True]
    assert replace(net, residual=False).skips() == [False] * 4


def test_residual_forward_adds_the_input() -> None:
    rng = np.random.default_rng(5)
    net = _net(rng, [2, 4, 4, 1], "tanh", True)
    X = rng.standard_normal((5, 2))
    a1 = np.tanh(X @ net.weights[0] + net.biases[0])
    a2 = a1 + np.tanh(a1 @ net.weights[1] + net.biases[1])
    np.testing.assert_allclose(deepnets.predict(net, X), a2 @ net.weights[2] + net.biases[2])


@pytest.mark.parametrize("activation", deepnets.ACTIVATIONS)
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("head", ["identity", "sigmoid"])
def test_export_matches_numpy(activation: str, residual: bool, head: str) -> None:
    rng = np.random.default_rng(6)
    net = _net(rng, [2, 8, 8, 8, 3], activation, residual)
    X = rng.standard_normal((20, 2))
    graph = deepnets.export_net(net, head=head)
    ops = [n.op_type for n in graph.node]
    assert ops.count("Gemm") == 4
    assert ops.count("Add") == sum(net.skips()) == (2 if residual else 0)
    head_op = "Sigmoid" if head == "sigmoid" else "Identity"
    assert ops.count(deepnets.ONNX_OPS[activation]) == 3 + (deepnets.ONNX_OPS[activation] == head_op)
    expected = deepnets.predict(net, X)
    if head == "sigmoid":
        expected = nets.sigmoid(expected)
    np.testing.assert_allclose(_run(graph, X), expected, atol=ATOL)


def test_export_float32_net() -> None:
    rng = np.random.default_rng(7)
    net = _net(rng, [2, 16, 16, 16, 2], "tanh", True).astype(np.float32)
    X = rng.standard_normal((30, 2)).astype(np.float32)
    out = deepnets.predict(net, X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(_run(deepnets.export_net(net), X), out, atol=ATOL)


def test_export_nets_side_by_side() -> None:
    rng = np.random.default_rng(8)
    members = [_net(rng, [1, 6, 6, 1], a, False) for a in deepnets.ACTIVATIONS]
    X = rng.uniform(-1, 1, (25, 1))
    expected = np.hstack([deepnets.predict(m, X) for m in members])
    np.testing.assert_allclose(_run(deepnets.export_nets(members), X), expected, atol=ATOL)


@pytest.mark.parametrize("activation", deepnets.ACTIVATIONS)
def test_export_activation(activation: str) -> None:
    z = np.linspace(-5, 5, 101)
    model = onnx_export.make_model(deepnets.export_activation(activation))
    onnx.checker.check_model(model, full_check=True)
    got = onnx_export.session(model).run(None, {"x": z.astype(np.float32)})[0]
    np.testing.assert_allclose(got, deepnets.activate(activation, z), atol=1e-6)


@pytest.mark.parametrize("residual", [False, True])
def test_identity_net_collapses_to_one_affine_map(residual: bool) -> None:
    rng = np.random.default_rng(9)
    net = _net(rng, [3, 5, 5, 5, 2], "identity", residual)
    X = rng.standard_normal((10, 3))
    W, b = deepnets.collapse_linear(net)
    assert W.shape == (3, 2) and b.shape == (2,)
    np.testing.assert_allclose(deepnets.predict(net, X), X @ W + b, atol=1e-12)
    with pytest.raises(ValueError):
        deepnets.collapse_linear(replace(net, activation="tanh"))


def test_train_reduces_loss_and_is_deterministic() -> None:
    def run() -> tuple[list[float], deepnets.Net]:
        rng = np.random.default_rng(10)
        X, y = datasets.moons(rng, 100, noise=0.1)
        net = deepnets.init_net(rng, [2, 16, 16, 2], "tanh")
        steps, losses = deepnets.train(net, X, y, nets.softmax_cross_entropy, nets.Adam(lr=0.02),
                                       steps=200, record_every=50)
        assert steps == [0, 50, 100, 150, 200]
        return losses, net

    (l1, n1), (l2, n2) = run(), run()
    assert l1[-1] < 0.1 < l1[0]
    assert l1 == l2
    assert all(np.array_equal(a, b) for a, b in zip(n1.params(), n2.params(), strict=True))


def test_unknown_activation_is_refused() -> None:
    with pytest.raises(ValueError):
        deepnets.init_net(np.random.default_rng(0), [2, 3, 1], "softplus")  # type: ignore[arg-type]
