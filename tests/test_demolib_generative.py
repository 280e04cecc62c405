"""Tests for demos/demolib/generative.py (with stack.py): stacks and their ONNX exports agree,
hand-written gradients match finite differences, linear autoencoders find PCA's subspace, GAN
pieces."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"
if str(DEMOS) not in sys.path:
    sys.path.insert(0, str(DEMOS))

from demolib import generative as gm  # noqa: E402
from demolib import nets, onnx_export  # noqa: E402

ATOL = 1e-5
ACTS = ["linear", "tanh", "relu", "leaky_relu", "sigmoid"]


def _ort(graph: onnx.GraphProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    model = onnx_export.make_model(graph)
    onnx.checker.check_model(model, full_check=True)
    sess = onnx_export.session(model)
    return sess.run(None, {k: v.astype(np.float32) for k, v in feeds.items()})[0]


def _perturbed(rng: np.random.Generator, net: gm.Stack) -> gm.Stack:
    """Non-zero biases, so that a bias mistake in forward/backward/export shows."""
    for b in net.biases:
        b += rng.normal(0.0, 0.3, b.shape)
    return net


def _numeric_grad(f, arr: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` w.r.t. every entry of ``arr`` (in place)."""
    num = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + h
        up = f()
        arr[idx] = old - h
        down = f()
        arr[idx] = old
        num[idx] = (up - down) / (2 * h)
    return num


# --------------------------------------------------------------------------- stacks and export


@pytest.mark.parametrize("act", ACTS)
def test_stack_export_matches_numpy(act: str) -> None:
    rng = np.random.default_rng(0)
    net = _perturbed(rng, gm.init_stack(rng, [3, 7, 5, 2], [act, act, "linear"]))
    X = rng.standard_normal((40, 3))
    got = _ort(gm.export_stack(net, name="s"), {"x": X})
    assert got.shape == (40, 2)
    np.testing.assert_allclose(got, gm.predict(net, X), atol=ATOL)


@pytest.mark.parametrize("last", ACTS)
def test_stack_export_output_activation_and_names(last: str) -> None:
    rng = np.random.default_rng(1)
    net = _perturbed(rng, gm.init_stack(rng, [2, 4, 3], ["tanh", last]))
    graph = gm.export_stack(net, name="s", input_name="code", output_name="out")
    assert [i.name for i in graph.input] == ["code"]
    assert [o.name for o in graph.output] == ["out"]
    X = rng.standard_normal((9, 2))
    np.testing.assert_allclose(_ort(graph, {"code": X}), gm.predict(net, X), atol=ATOL)


def test_ensemble_export_matches_members() -> None:
    rng = np.random.default_rng(2)
    ens = gm.init_stack(rng, [1, 6, 6, 2], ["leaky_relu", "tanh", "linear"], members=4)
    _perturbed(rng, ens)
    assert ens.members == 4 and ens.sizes == [1, 6, 6, 2]
    z = rng.standard_normal((25, 1))
    got = _ort(gm.export_stack(ens, name="ens"), {"x": z})
    assert got.shape == (25, 4, 2)
    ref = gm.predict(ens, z)  # (S, N, out)
    np.testing.assert_allclose(got, np.transpose(ref, (1, 0, 2)), atol=ATOL)
    for s in range(4):
        single = gm.member(ens, s)
        assert single.members is None
        np.testing.assert_allclose(gm.predict(single, z), ref[s], atol=1e-12)
        np.testing.assert_allclose(_ort(gm.export_stack(single, name="m"), {"x": z}), got[:, s],
                                   atol=ATOL)


def test_layers_split_an_autoencoder() -> None:
    rng = np.random.default_rng(3)
    ae = _perturbed(rng, gm.init_stack(rng, [2, 8, 1, 8, 2], ["tanh", "linear", "tanh", "linear"]))
    X = rng.standard_normal((11, 2))
    enc, dec = gm.layers(ae, 0, 2), gm.layers(ae, 2)
    assert enc.sizes == [2, 8, 1] and dec.sizes == [1, 8, 2]
    np.testing.assert_allclose(gm.predict(dec, gm.predict(enc, X)), gm.predict(ae, X), atol=1e-12)
    code = _ort(gm.export_stack(enc, name="enc", output_name="code"), {"x": X})
    rec = _ort(gm.export_stack(dec, name="dec", input_name="code"), {"code": code})
    np.testing.assert_allclose(rec, gm.predict(ae, X), atol=ATOL)


def test_stack_validates_its_layers() -> None:
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="activation"):
        gm.init_stack(rng, [2, 3], ["swish"])
    with pytest.raises(ValueError, match="activations"):
        gm.init_stack(rng, [2, 3, 1], ["tanh"])
    with pytest.raises(ValueError, match="not an ensemble"):
        gm.member(gm.init_stack(rng, [2, 3], ["tanh"]), 0)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("act", ACTS)
def test_backward_matches_finite_differences(act: str) -> None:
    rng = np.random.default_rng(5)
    net = _perturbed(rng, gm.init_stack(rng, [3, 5, 4, 2], [act, act, "linear"]))
    X = rng.standard_normal((6, 3))
    T = rng.standard_normal((6, 2))

    def loss() -> float:
        return gm.mse(gm.predict(net, X), T)[0]

    out, cache = gm.forward(net, X)
    grads, dX = gm.backward(net, cache, gm.mse(out, T)[1])
    params = net.params()
    assert [g.shape for g in grads] == [p.shape for p in params]
    for p, g in zip(params, grads, strict=True):
        np.testing.assert_allclose(g, _numeric_grad(loss, p), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(dX, _numeric_grad(loss, X), rtol=1e-5, atol=1e-8)
    # the input gradient alone is the same, and no parameter gradients are made
    no_params, dX_only = gm.backward(net, cache, gm.mse(out, T)[1], param_grads=False)
    assert no_params == []
    np.testing.assert_allclose(dX_only, dX, atol=1e-14)


def test_ensemble_backward_equals_members() -> None:
    rng = np.random.default_rng(6)
    ens = _perturbed(rng, gm.init_stack(rng, [2, 5, 1], ["leaky_relu", "linear"], members=3))
    X = rng.standard_normal((3, 7, 2))
    dout = rng.standard_normal((3, 7, 1))
    grads, dX = gm.backward(ens, gm.forward(ens, X)[1], dout)
    assert [g.shape for g in grads] == [p.shape for p in ens.params()]
    for s in range(3):
        single = gm.member(ens, s)
        g_s, dX_s = gm.backward(single, gm.forward(single, X[s])[1], dout[s])
        for g_ens, g_one in zip(grads, g_s, strict=True):
            np.testing.assert_allclose(g_ens[s].reshape(g_one.shape), g_one, atol=1e-12)
        np.testing.assert_allclose(dX[s], dX_s, atol=1e-12)


def test_mse_gradient() -> None:
    rng = np.random.default_rng(7)
    P, T = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    value, grad = gm.mse(P, T)
    assert value == pytest.approx(np.mean((P - T) ** 2))
    np.testing.assert_allclose(grad, _numeric_grad(lambda: gm.mse(P, T)[0], P), rtol=1e-6)


# --------------------------------------------------------------------------- PCA and linear AEs


def _gaussian_data(rng: np.random.Generator, n: int = 300) -> np.ndarray:
    spec = np.array([3.0, 1.5, 0.8, 0.3, 0.1])
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    return (rng.standard_normal((n, 5)) * np.sqrt(spec)) @ Q.T + rng.normal(0, 2, 5)


def test_pca_reconstruction_error_is_discarded_variance() -> None:
    rng = np.random.default_rng(8)
    X = _gaussian_data(rng)
    p = gm.pca(X)
    assert np.all(np.diff(p.variances) <= 0)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(5), atol=1e-10)
    np.testing.assert_allclose(p.reconstruct(X, 5), X, atol=1e-10)
    for k in range(6):
        direct = np.mean((p.reconstruct(X, k) - X) ** 2)
        assert gm.pca_reconstruction_mse(p, k) == pytest.approx(direct, rel=1e-10)


def test_principal_angles() -> None:
    e = np.eye(3)
    np.testing.assert_allclose(gm.principal_angles(e[:2], e[:2] * 5 + 0.0), [0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(gm.principal_angles(e[:1], e[1:2]), [np.pi / 2], atol=1e-12)
    tilted = np.array([[np.cos(0.3), np.sin(0.3), 0.0]])
    np.testing.assert_allclose(gm.principal_angles(e[:1], tilted), [0.3], atol=1e-12)
    # a mixed basis of the same plane spans the same subspace
    mixed = np.array([[1.0, 2.0, 0.0], [3.0, -1.0, 0.0]])
    np.testing.assert_allclose(gm.principal_angles(e[:2], mixed), [0.0, 0.0], atol=1e-7)


def test_linear_autoencoder_loss_and_gradients() -> None:
    rng = np.random.default_rng(9)
    X = _gaussian_data(rng, 50)
    aes = gm.init_linear_autoencoders(rng, 5, [1, 3], scale=0.5)
    aes.enc_bias += rng.normal(0, 0.3, aes.enc_bias.shape) * aes.mask
    aes.dec_bias += rng.normal(0, 0.3, aes.dec_bias.shape)
    m = gm.moments(X)
    loss, grads = gm.linear_autoencoder_grads(aes, m)
    direct = np.mean((aes.reconstruct(X) - X) ** 2, axis=(1, 2))
    np.testing.assert_allclose(loss, direct, rtol=1e-10)
    for i, k in enumerate(aes.ks):  # the padded model is the k-unit model
        np.testing.assert_allclose(gm.predict(aes.member(i), X), aes.reconstruct(X)[i], atol=1e-10)
        assert aes.member(i).sizes == [5, k, 5]

    def total() -> float:
        return float(np.sum(np.mean((aes.reconstruct(X) - X) ** 2, axis=(1, 2))))

    for p, g in zip(aes.params(), grads, strict=True):
        np.testing.assert_allclose(g, _numeric_grad(total, p), rtol=1e-5, atol=1e-8)
    # units beyond a model's size get no gradient, so they stay zero
    assert np.all(grads[0] * (1 - aes.mask) == 0.0)


def test_linear_autoencoders_reach_pca() -> None:
    rng = np.random.default_rng(10)
    X = _gaussian_data(rng)
    p = gm.pca(X)
    ks = [1, 2, 3, 4]
    aes = gm.init_linear_autoencoders(rng, 5, ks)
    gm.train_linear_autoencoders(aes, X, nets.Adam(lr=0.02), steps=1500)
    assert len(aes.loss_history) == 1500
    mse = np.mean((aes.reconstruct(X) - X) ** 2, axis=(1, 2))
    for i, k in enumerate(ks):
        assert mse[i] == pytest.approx(gm.pca_reconstruction_mse(p, k), rel=1e-4)
        assert gm.principal_angles(aes.dec[i][:k], p.components[:k]).max() < np.radians(0.5)
        assert np.all(aes.enc[i][:, k:] == 0.0)  # padding untouched
    # ...and an untrained one does not (the test can fail)
    fresh = gm.init_linear_autoencoders(rng, 5, ks)
    assert np.mean((fresh.reconstruct(X) - X) ** 2) > 2 * gm.pca_reconstruction_mse(p, 1)


# --------------------------------------------------------------------------- distances and data


def test_wasserstein_1d() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal(200), rng.standard_normal(200) * 2 + 1
    # equal sizes: mean distance between sorted samples
    assert gm.wasserstein_1d(a, b) == pytest.approx(np.mean(np.abs(np.sort(a) - np.sort(b))))
    assert gm.wasserstein_1d(a, b) == pytest.approx(gm.wasserstein_1d(b, a))
    assert gm.wasserstein_1d(a, a + 0.7) == pytest.approx(0.7)
    assert gm.wasserstein_1d(a, a) == 0.0
    # different sizes: a point mass at 0 against {0, 0, 3}: a third of the mass moves 3
    assert gm.wasserstein_1d(np.zeros(1), np.array([0.0, 0.0, 3.0])) == pytest.approx(1.0)


def test_toy_data_is_seeded() -> None:
    X1, t1 = gm.arc(np.random.default_rng(12), 100, noise=0.0)
    X2, t2 = gm.arc(np.random.default_rng(12), 100, noise=0.0)
    assert np.array_equal(X1, X2) and np.array_equal(t1, t2)
    np.testing.assert_allclose(np.linalg.norm(X1, axis=1), 1.0)  # noise-free: on the circle
    assert X1[:, 1].min() == pytest.approx(-1.0, abs=0.01) and X1[:, 1].max() < 0.72
    x, comp = gm.gaussian_mixture_1d(np.random.default_rng(13), 3000, [-2.0, 0.0, 2.0], 0.25)
    assert x.shape == (3000, 1)
    np.testing.assert_allclose(np.bincount(comp) / 3000, [1 / 3] * 3, atol=0.03)
    for j, m in enumerate([-2.0, 0.0, 2.0]):
        assert abs(x[comp == j].mean() - m) < 0.03


# --------------------------------------------------------------------------- GAN


def _gan(rng: np.random.Generator, members: int | None = None) -> tuple[gm.Stack, gm.Stack]:
    acts = ["leaky_relu", "tanh", "linear"]
    gen = _perturbed(rng, gm.init_stack(rng, [1, 5, 4, 1], acts, members=members))
    disc = _perturbed(rng, gm.init_stack(rng, [1, 6, 3, 1], acts, members=members))
    return gen, disc


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def test_discriminator_gradients() -> None:
    rng = np.random.default_rng(14)
    _, disc = _gan(rng)
    real, fake = rng.standard_normal((7, 1)), rng.standard_normal((5, 1)) + 1

    def loss() -> float:
        lr, lf = gm.predict(disc, real), gm.predict(disc, fake)
        return float(np.mean(_softplus(-lr)) + np.mean(_softplus(lf)))

    value, grads = gm.discriminator_grads(disc, real, fake)
    assert float(value) == pytest.approx(loss())
    for p, g in zip(disc.params(), grads, strict=True):
        np.testing.assert_allclose(g, _numeric_grad(loss, p), rtol=1e-5, atol=1e-8)


def test_generator_gradients_flow_through_the_discriminator() -> None:
    rng = np.random.default_rng(15)
    gen, disc = _gan(rng)
    z = rng.standard_normal((8, 1))
    disc_before = [p.copy() for p in disc.params()]

    def loss() -> float:
        return float(np.mean(_softplus(-gm.predict(disc, gm.predict(gen, z)))))

    value, grads = gm.generator_grads(gen, disc, z)
    assert float(value) == pytest.approx(loss())
    for p, g in zip(gen.params(), grads, strict=True):
        np.testing.assert_allclose(g, _numeric_grad(loss, p), rtol=1e-5, atol=1e-8)
    assert all(np.array_equal(a, b) for a, b in zip(disc_before, disc.params(), strict=True))
    # a forward pass made earlier gives the same result
    _, again = gm.generator_grads(gen, disc, z, forward_cache=gm.forward(gen, z))
    assert all(np.allclose(a, b, atol=1e-14) for a, b in zip(grads, again, strict=True))


def test_ensemble_gan_gradients_equal_members() -> None:
    rng = np.random.default_rng(16)
    gen, disc = _gan(rng, members=3)
    real, z = rng.standard_normal((3, 6, 1)), rng.standard_normal((3, 6, 1))
    fake = gm.predict(gen, z)
    ld, gd = gm.discriminator_grads(disc, real, fake)
    lg, gg = gm.generator_grads(gen, disc, z)
    assert ld.shape == (3,) and lg.shape == (3,)
    for s in range(3):
        g_s, d_s = gm.member(gen, s), gm.member(disc, s)
        ld_s, gd_s = gm.discriminator_grads(d_s, real[s], fake[s])
        lg_s, gg_s = gm.generator_grads(g_s, d_s, z[s])
        assert float(ld[s]) == pytest.approx(float(ld_s))
        assert float(lg[s]) == pytest.approx(float(lg_s))
        for ens_grads, one_grads in ((gd, gd_s), (gg, gg_s)):
            for a, b in zip(ens_grads, one_grads, strict=True):
                np.testing.assert_allclose(a[s].reshape(b.shape), b, atol=1e-12)


def test_gan_training_moves_the_generator_toward_the_data() -> None:
    rng = np.random.default_rng(17)
    acts = ["leaky_relu", "leaky_relu", "linear"]
    gen = gm.init_stack(rng, [1, 16, 16, 1], acts)
    disc = gm.init_stack(rng, [1, 16, 16, 1], acts)
    opt_g = nets.Adam(lr=0.01, beta1=0.5, beta2=0.99)
    opt_d = nets.Adam(lr=0.01, beta1=0.5, beta2=0.99)
    target = [-2.0, 2.0]
    held_out = gm.gaussian_mixture_1d(rng, 2000, target, 0.3)[0]
    z_eval = rng.standard_normal((2000, 1))
    before = gm.wasserstein_1d(gm.predict(gen, z_eval), held_out)
    steps = 400
    for s in range(steps):
        opt_g.lr = opt_d.lr = 0.01 * (1 - s / steps)
        real = gm.gaussian_mixture_1d(rng, 128, target, 0.3)[0]
        gm.gan_step(gen, disc, opt_g, opt_d, real, rng.standard_normal((128, 1)))
    fake = gm.predict(gen, z_eval)
    assert gm.wasserstein_1d(fake, held_out) < before / 2
    assert 0.25 < np.mean(fake > 0) < 0.75  # both modes get samples
    d_real = np.mean(nets.sigmoid(gm.predict(disc, held_out)))
    assert abs(d_real - 0.5) < 0.1
