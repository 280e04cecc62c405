"""Autoencoders: a linear one finds PCA's subspace; a small nonlinear one follows a curved
manifold that PCA cannot, with a one-number code that orders the points along it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import generative as gm
from demolib import nets, plotting
from matplotlib.collections import LineCollection

SPECTRUM = (4.0, 2.5, 1.6, 1.0, 0.6, 0.35, 0.2, 0.1)  # variances of the 8-D Gaussian data
ARC_NOISE, ARC_SPAN = 0.05, 1.5 * np.pi  # a noisy 270° arc
N_GAUSS = 500  # points of the Gaussian data
N_ARC = 240  # training points on the arc, and as many held-out ones


@dataclass
class Linear:
    """Linear autoencoders with k = 1..7 code units against PCA with k components."""

    ks: list[int]
    mse_lin: np.ndarray  # reconstruction error in ONNX Runtime, per k
    mse_pca: np.ndarray
    rel_gap: np.ndarray
    angles: np.ndarray  # largest principal angle to PCA's subspace, degrees, per k
    unit_alignment: float
    diff_lin: float  # ONNX Runtime against NumPy


@dataclass
class Arc:
    """The nonlinear autoencoder and one-component PCA on held-out points of the arc."""

    code_test: np.ndarray
    rec_ae: np.ndarray
    curve: np.ndarray  # the decoder's curve over the range of codes
    rec_pca: np.ndarray
    mse_ae: float
    mse_pca1: float
    mse_oracle: float  # snapping each point onto the true arc
    rho: float  # Spearman correlation of the code with the position along the arc
    diff_ae: float  # ONNX Runtime against NumPy


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    steps_linear = int(opts.get("steps_linear", 3000))
    steps_arc = int(opts.get("steps_arc", 600))
    hidden = int(opts.get("hidden", 16))

    # ---- Part 1: linear autoencoders against PCA on 8-D Gaussian data (random axes and mean)
    X8 = make_gaussian_data(rng)
    linear = linear_autoencoders_vs_pca(demo, rng, X8, steps_linear)

    # ---- Part 2: a nonlinear autoencoder 2-hidden-1-hidden-2 (tanh) on a noisy 270° arc
    X_train, _ = gm.arc(rng, N_ARC, noise=ARC_NOISE, span=ARC_SPAN)
    X_test, t_test = gm.arc(rng, N_ARC, noise=ARC_NOISE, span=ARC_SPAN)
    ae = train_arc_autoencoder(rng, X_train, hidden, steps_arc)
    arc = evaluate_arc(demo, ae, hidden, X_train, X_test, t_test)

    draw_arc_reconstructions(demo, X_test, arc)
    draw_learned_code(demo, t_test, arc)
    draw_error_vs_bottleneck(demo, linear)
    measure(demo, linear, arc, hidden)
    claim_findings(demo, linear, arc)


def make_gaussian_data(rng: np.random.Generator) -> np.ndarray:
    """N_GAUSS points of a Gaussian with the SPECTRUM variances along random axes, and a random mean."""
    spec = np.array(SPECTRUM)
    d = spec.size
    axes_true, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (rng.standard_normal((N_GAUSS, d)) * np.sqrt(spec)) @ axes_true.T + rng.normal(0.0, 1.0, d)


def linear_autoencoders_vs_pca(demo, rng: np.random.Generator, X8: np.ndarray, steps_linear: int) -> Linear:
    """Train linear autoencoders for every bottleneck size, run them in ONNX, compare with PCA."""
    d = X8.shape[1]
    ks = list(range(1, d))
    p8 = gm.pca(X8)
    lin = gm.init_linear_autoencoders(rng, d, ks, scale=0.1)
    # Adam at a fixed step keeps jittering around the optimum: the last third uses a tenth of it.
    opt = nets.Adam(lr=0.02)
    gm.train_linear_autoencoders(lin, X8, opt, steps=steps_linear - steps_linear // 3)
    opt.lr = 0.002
    gm.train_linear_autoencoders(lin, X8, opt, steps=steps_linear // 3)
    # All seven as one ONNX ensemble: y[:, i] is the reconstruction with ks[i] code units.
    lin_stack = gm.Stack([lin.enc, lin.dec], [lin.enc_bias, lin.dec_bias], ["linear", "linear"])
    sess_lin = demo.onnx("linear_autoencoders", demo.make_model(gm.export_stack(
        lin_stack, name="linear_autoencoders",
        doc_string=f"linear autoencoders {d}-k-{d} for k = {ks} (padded to k = {d - 1}); "
                   "output [N, k-index, d]")))
    rec_lin = sess_lin.run(None, {"x": X8.astype(np.float32)})[0].astype(np.float64)  # (N, K, d)
    diff_lin = float(np.max(np.abs(rec_lin - np.transpose(lin.reconstruct(X8), (1, 0, 2)))))
    mse_lin = np.mean((rec_lin - X8[:, None, :]) ** 2, axis=(0, 2))
    mse_pca = np.array([gm.pca_reconstruction_mse(p8, k) for k in ks])
    rel_gap = np.abs(mse_lin - mse_pca) / mse_pca
    angles = np.array([np.degrees(gm.principal_angles(lin.dec[i][:k], p8.components[:k]).max())
                       for i, k in enumerate(ks)])
    # Same subspace, but are the code units the principal axes? For each model with k >= 2, the
    # best |cosine| between a decoder row (a code unit's direction) and any principal axis.
    best_cos = []
    for i, k in enumerate(ks[1:], start=1):
        rows = lin.dec[i][:k]
        cos = np.abs(rows / np.linalg.norm(rows, axis=1, keepdims=True) @ p8.components[:k].T)
        best_cos.append(cos.max(axis=1))
    unit_alignment = float(np.median(np.concatenate(best_cos)))
    return Linear(ks, mse_lin, mse_pca, rel_gap, angles, unit_alignment, diff_lin)


def train_arc_autoencoder(rng: np.random.Generator, X_train: np.ndarray, hidden: int, steps_arc: int) -> gm.Stack:
    """Train a 2-hidden-1-hidden-2 tanh autoencoder on the arc with Adam, full batch."""
    ae = gm.init_stack(rng, [2, hidden, 1, hidden, 2], ["tanh", "linear", "tanh", "linear"])
    opt = nets.Adam(lr=0.02)
    params = ae.params()
    for _ in range(steps_arc):
        out, cache = gm.forward(ae, X_train)
        _, dout = gm.mse(out, X_train)
        opt.step(params, gm.backward(ae, cache, dout)[0])
    return ae


def evaluate_arc(demo, ae: gm.Stack, hidden: int, X_train: np.ndarray, X_test: np.ndarray,
                 t_test: np.ndarray) -> Arc:
    """Export encoder and decoder to ONNX, reconstruct held-out points, compare with PCA."""
    encoder, decoder = gm.layers(ae, 0, 2), gm.layers(ae, 2)
    sess_enc = demo.onnx("encoder", demo.make_model(gm.export_stack(
        encoder, name="encoder", output_name="code",
        doc_string=f"encoder 2-{hidden}-1 (tanh), trained on a noisy arc")))
    sess_dec = demo.onnx("decoder", demo.make_model(gm.export_stack(
        decoder, name="decoder", input_name="code",
        doc_string=f"decoder 1-{hidden}-2 (tanh), trained on a noisy arc")))
    code_test = ort(sess_enc, "x", X_test)
    rec_ae = ort(sess_dec, "code", code_test)
    code_grid = np.linspace(code_test.min(), code_test.max(), 200)[:, None]
    curve = ort(sess_dec, "code", code_grid)
    diff_ae = max(float(np.max(np.abs(code_test - gm.predict(encoder, X_test)))),
                  float(np.max(np.abs(rec_ae - gm.predict(decoder, code_test)))),
                  float(np.max(np.abs(curve - gm.predict(decoder, code_grid)))))
    p2 = gm.pca(X_train)
    rec_pca = p2.reconstruct(X_test, 1)
    mse_ae = float(np.mean((rec_ae - X_test) ** 2))
    mse_pca1 = float(np.mean((rec_pca - X_test) ** 2))
    mse_oracle = float(np.mean((_nearest_on_arc(X_test, ARC_SPAN) - X_test) ** 2))
    rho = _spearman(code_test[:, 0], t_test)
    return Arc(code_test, rec_ae, curve, rec_pca, mse_ae, mse_pca1, mse_oracle, rho, diff_ae)


def ort(sess, input_name: str, x: np.ndarray) -> np.ndarray:
    """Run a one-input ONNX model in float32 and return its output in float64."""
    return sess.run(None, {input_name: x.astype(np.float32)})[0].astype(np.float64)


def draw_arc_reconstructions(demo, X_test: np.ndarray, arc: Arc) -> None:
    """Figure: held-out points and their reconstructions by PCA and by the autoencoder."""

    @demo.figure(
        "arc-reconstructions",
        caption="Held-out points of a noisy arc and their reconstructions from one number: "
        "PCA with one component (left) and the autoencoder with a one-unit code (right)",
        alt=f"Two panels of the same {len(X_test)} grey points along an arc of "
        f"{np.degrees(ARC_SPAN):.0f} degrees of a circle. On the left "
        "every reconstruction lies on one straight line through the arc; on the right the "
        "reconstructions lie on a curve that follows the arc closely.",
        size=(6.4, 4.0),
        notice="PCA can only put the points on a straight line; the autoencoder bends its code along the arc.",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, 2, sharex=True, sharey=True)
        panels = ((arc.rec_pca, "C0", f"PCA, 1 component\nMSE {arc.mse_pca1:.3f}", None),
                  (arc.rec_ae, "C1", f"autoencoder, 1-unit code\nMSE {arc.mse_ae:.4f}", arc.curve))
        for ax, (rec, color, title, line) in zip(axes, panels, strict=True):
            # one collection for all point-to-reconstruction segments (drawn as one)
            ax.add_collection(LineCollection(np.stack([X_test, rec], axis=1), colors="C7",
                                             linewidths=0.5, alpha=0.5))
            ax.plot(X_test[:, 0], X_test[:, 1], "o", color="C7", ms=2.5, label="data")
            ax.plot(rec[:, 0], rec[:, 1], "o", color=color, ms=3, label="reconstruction")
            if line is not None:
                ax.plot(line[:, 0], line[:, 1], color=color, lw=1.2, label="decoder curve")
            ax.set_title(title, fontsize="medium")
            ax.set_aspect("equal")
            ax.set_ylim(-1.25, 1.5)  # room above the arc's opening for the legend
            ax.set_xlabel("x₁")
        axes[0].set_ylabel("x₂")
        axes[1].legend(fontsize="small", loc="upper center", ncol=1)


def draw_learned_code(demo, t_test: np.ndarray, arc: Arc) -> None:
    """Figure: the one-number code against each point's true position along the arc."""

    @demo.figure(
        "learned-code",
        caption="The autoencoder's one-number code for each held-out point against the point's "
        "true position along the arc (which the network never saw)",
        alt="Scatter plot: position along the arc, from one end to the other, on the horizontal "
        "axis, the code on the vertical axis. The points form a thin monotone curve.",
        size=(6.4, 3.6),
        notice="The code rises steadily along the arc: the network found the position it was never shown.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(t_test, arc.code_test[:, 0], "o", color="C0", ms=3.5)
        ax.set_xlabel("true position along the arc (0 = one end, 1 = the other)")
        ax.set_ylabel("code (bottleneck value)")
        ax.set_title(f"The code orders the points along the arc (Spearman ρ = {arc.rho:.4f})",
                     fontsize="medium")


def draw_error_vs_bottleneck(demo, linear: Linear) -> None:
    """Figure: reconstruction error of linear autoencoders and PCA for each bottleneck size."""
    ks = linear.ks

    @demo.figure(
        "error-vs-bottleneck",
        caption=f"{len(SPECTRUM)}-dimensional Gaussian data: reconstruction error of linear "
        "autoencoders and of PCA for each bottleneck size k (log scale)",
        alt=f"Line chart of mean squared reconstruction error against bottleneck size {ks[0]} to {ks[-1]}. "
        "The linear autoencoders' crosses sit exactly on PCA's circles, and the error falls as "
        "k grows.",
        size=(6.4, 3.8),
        notice="The linear autoencoder's crosses sit on PCA's circles at every k.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(ks, linear.mse_pca, "o-", color="C0", ms=9, mfc="none", mew=1.8, label="PCA, k components")
        ax.plot(ks, linear.mse_lin, "x", color="C1", ms=9, mew=2, label="linear autoencoder, k units")
        plotting.plain_log_axis(ax.yaxis, [0.003, 0.01, 0.03, 0.1, 0.3, 1.0])
        ax.set_xticks(ks)
        ax.set_xlabel("bottleneck size k")
        ax.set_ylabel("reconstruction MSE")
        ax.set_title(f"Same error for every k (largest subspace angle {_math_number(linear.angles.max())}°)",
                     fontsize="medium")
        ax.legend()


def measure(demo, linear: Linear, arc: Arc, hidden: int) -> None:
    """Record how close the linear autoencoders come to PCA and how well the arc is reconstructed."""
    demo.key_numbers("mse_ae_arc", "mse_pca_arc", "arc_improvement", "code_spearman")
    demo.setting("dim_gauss", len(SPECTRUM), fmt=".0f", label="Dimensions of the Gaussian data")
    demo.setting("n_gauss", N_GAUSS, fmt=".0f", label="Points of the Gaussian data")
    demo.setting("k_min", linear.ks[0], fmt=".0f", label="Fewest code units of a linear autoencoder")
    demo.setting("k_max", linear.ks[-1], fmt=".0f", label="Most code units of a linear autoencoder")
    demo.setting("n_arc", N_ARC, fmt=".0f", label="Training points on the arc (and as many held out)")
    demo.setting("arc_degrees", np.degrees(ARC_SPAN), fmt=".0f", unit="°", label="Angle the arc spans")
    demo.metric("linear_max_relative_gap", float(linear.rel_gap.max()), fmt=".1e",
                label=f"Largest relative gap, linear autoencoder vs PCA error (k = {linear.ks[0]}..{linear.ks[-1]})")
    demo.metric("linear_max_angle_deg", float(linear.angles.max()), fmt=".2g", unit="°",
                label="Largest principal angle, decoder subspace vs top-k PCA subspace")
    demo.metric("unit_alignment", linear.unit_alignment, fmt=".2f",
                label="Median |cos| between a code unit's direction and its closest principal "
                      "axis (k ≥ 2)")
    demo.metric("mse_pca_k1_8d", float(linear.mse_pca[0]), fmt=".3f", label=f"PCA error, k = {linear.ks[0]}")
    demo.metric("mse_pca_k7_8d", float(linear.mse_pca[-1]), fmt=".4f", label=f"PCA error, k = {linear.ks[-1]}")
    demo.metric("mse_ae_arc", arc.mse_ae, fmt=".4f",
                label="Held-out MSE, nonlinear autoencoder with 1-unit code (arc)")
    demo.metric("mse_pca_arc", arc.mse_pca1, fmt=".3f", label="Held-out MSE, PCA with 1 component (arc)")
    demo.metric("mse_oracle_arc", arc.mse_oracle, fmt=".4f",
                label="Held-out MSE of snapping each point onto the true arc (noise floor)")
    demo.metric("arc_improvement", arc.mse_pca1 / arc.mse_ae, fmt=".0f", unit="×",
                label="PCA error ÷ autoencoder error on the arc")
    demo.metric("code_spearman", abs(arc.rho), fmt=".4f",
                label="|Spearman ρ| between the code and the position along the arc")
    demo.metric("ort_max_abs_diff", max(arc.diff_ae, linear.diff_lin), fmt=".1e",
                label="Max |ONNX Runtime − NumPy| over encoder, decoder and linear autoencoders")
    demo.setting("arc_noise", ARC_NOISE, fmt="g", label="Noise standard deviation of the arc data")
    demo.setting("hidden_units", hidden, fmt=".0f", label="Hidden units in encoder and decoder")


def claim_findings(demo, linear: Linear, arc: Arc) -> None:
    """Claims: linear autoencoders match PCA's subspace; the nonlinear one follows the arc."""
    demo.claim(
        "A linear autoencoder with k code units reaches PCA's reconstruction error, for every "
        f"k from {linear.ks[0]} to {linear.ks[-1]}",
        holds=bool(linear.rel_gap.max() < 1e-3),
        max_relative_gap=demo.number(float(linear.rel_gap.max()), "largest relative gap to PCA's error", fmt=".2g"),
        mse_k1=demo.number(float(linear.mse_lin[0]), "autoencoder's error, one code unit"),
        mse_pca_k1=demo.number(float(linear.mse_pca[0]), "PCA's error, one component"),
    )
    demo.claim(
        "Its decoder spans the same subspace as the top k principal components (largest principal "
        "angle under 1°)",
        holds=bool(linear.angles.max() < 1.0),
        max_angle_deg=demo.number(float(linear.angles.max()), "largest principal angle", fmt=".2g", unit="°"),
    )
    demo.claim(
        "…but its individual code units are mixtures of principal axes, not the axes themselves",
        holds=bool(linear.unit_alignment < 0.95),
        median_best_abs_cos=demo.number(
            linear.unit_alignment, "median best alignment of a code unit with a principal axis (absolute cosine)"),
    )
    demo.claim(
        "On the curved arc, a nonlinear autoencoder with a one-unit code reconstructs held-out "
        "points at least 10× better than PCA with one component",
        holds=bool(arc.mse_pca1 > 10 * arc.mse_ae),
        mse_autoencoder=demo.number(arc.mse_ae, "held-out error, nonlinear autoencoder"),
        mse_pca=demo.number(arc.mse_pca1, "held-out error, PCA with one component"),
        mse_noise_floor=demo.number(arc.mse_oracle, "noise floor"),
    )
    demo.claim(
        "Its one-number code orders the points along the arc (|Spearman ρ| > 0.99 with the true "
        "position, which it never saw)",
        holds=bool(abs(arc.rho) > 0.99),
        spearman_rho=demo.number(arc.rho, "rank correlation of code and arc position (Spearman ρ)", fmt=".4f"),
    )
    demo.check(
        "ONNX Runtime's encoder, decoder and linear autoencoders match the NumPy models",
        holds=bool(max(arc.diff_ae, linear.diff_lin) < 1e-4),
        max_abs_diff_arc=arc.diff_ae,
        max_abs_diff_linear=linear.diff_lin,
    )


# ---- helpers


def _ranks(v: np.ndarray) -> np.ndarray:
    """The rank of each entry (0 for the smallest)."""
    return np.argsort(np.argsort(v)).astype(float)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of ``a`` and ``b``."""
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def _nearest_on_arc(X: np.ndarray, span: float) -> np.ndarray:
    """The closest point of the noise-free arc (unit circle, angles in the span) to each row."""
    start = -0.5 * np.pi - 0.5 * span
    angle = np.mod(np.arctan2(X[:, 1], X[:, 0]) - start, 2 * np.pi)
    # outside the arc, the nearer end point is closest
    angle = np.where(angle > span, np.where(angle - span < 2 * np.pi - angle, span, 0.0), angle)
    return np.column_stack([np.cos(start + angle), np.sin(start + angle)])


def _math_number(value: float) -> str:
    """Two significant digits; a very small number in math form ($1.7\\times10^{-6}$), not 1.7e-06."""
    text = f"{value:.2g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"${mantissa}\\times10^{{{int(exponent)}}}$"
