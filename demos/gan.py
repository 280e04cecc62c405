"""A generative adversarial network on a 1-D mixture of three Gaussians: a generator and a
discriminator (small leaky-ReLU MLPs with hand-written backprop) trained against each other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import generative as gm
from demolib import nets, plotting

MEANS = (-2.0, 0.0, 2.0)
STD = 0.25
EVAL_EVERY = 25
N_SAMPLES = 5000  # samples drawn from the trained generator for the page


@dataclass
class History:
    """Progress during training, measured on fixed evaluation sets."""

    step: list[int]
    w1: list[float]  # Wasserstein-1 distance, generated vs real
    d_real: list[float]  # mean discriminator output on real samples
    d_fake: list[float]  # ... and on generated ones


@dataclass
class Samples:
    """What the trained networks produce in ONNX Runtime, and the references they are compared to."""

    fake: np.ndarray  # samples from the trained generator (ORT)
    real: np.ndarray
    real_other: np.ndarray  # a second data sample: the sampling-noise floor
    fake_init: np.ndarray  # samples from the untrained generator
    gauss: np.ndarray  # a Gaussian with the data's mean and standard deviation
    z_grid: np.ndarray
    g_map: np.ndarray  # G(z) on z_grid
    x_grid: np.ndarray
    d_curve: np.ndarray  # D(x) on x_grid
    ort_diff: float


@dataclass
class Scores:
    """How close the generated samples are to the data, and how well D tells them apart."""

    w1_start: float
    w1_end: float
    w1_floor: float
    w1_gauss: float
    shares: np.ndarray  # share of generated samples nearest each mode
    gap_fake: float
    gap_real: float
    d_real: float
    d_fake: float
    std_fake: float
    std_real: float


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    steps = int(opts.get("steps", 1000))
    batch = int(opts.get("batch", 128))
    lr = float(opts.get("lr", 0.01))
    hidden = int(opts.get("hidden", 16))

    acts = ["leaky_relu", "leaky_relu", "linear"]
    gen = gm.init_stack(rng, [1, hidden, hidden, 1], acts)  # noise z ~ N(0, 1) -> sample x
    disc = gm.init_stack(rng, [1, hidden, hidden, 1], acts)  # x -> logit of "real"
    gen_init = gen.copy()
    history = train(rng, gen, disc, steps, batch, lr)
    sess_g, sess_d = export(demo, gen, disc, hidden)
    samples = sample(rng, sess_g, sess_d, gen, gen_init, disc)
    scores = score(sess_d, samples)

    draw_samples(demo, samples, scores, steps)
    draw_training(demo, history, scores, steps)
    draw_generator_map(demo, samples)
    measure(demo, scores, steps, batch, hidden, samples.ort_diff)
    claim_findings(demo, scores, samples.ort_diff)


def train(rng, gen, disc, steps: int, batch: int, lr: float) -> History:
    """Alternate one discriminator and one generator update per step, recording progress."""
    opt_g = nets.Adam(lr=lr, beta1=0.5, beta2=0.99)
    opt_d = nets.Adam(lr=lr, beta1=0.5, beta2=0.99)

    # Fixed evaluation sets (never trained on) and every batch drawn up front.
    real_eval = _sample_data(rng, 2000)
    z_eval = rng.standard_normal((2000, 1))
    reals = _sample_data(rng, steps * batch).reshape(steps, batch, 1)
    zs = rng.standard_normal((steps, batch, 1))

    history = History([], [], [], [])

    def record(step: int) -> None:
        fake = gm.predict(gen, z_eval)
        history.step.append(step)
        history.w1.append(gm.wasserstein_1d(fake, real_eval))
        history.d_real.append(float(np.mean(nets.sigmoid(gm.predict(disc, real_eval)))))
        history.d_fake.append(float(np.mean(nets.sigmoid(gm.predict(disc, fake)))))

    record(0)
    for s in range(steps):
        opt_g.lr = opt_d.lr = lr * (1.0 - s / steps)  # linear decay to zero
        gm.gan_step(gen, disc, opt_g, opt_d, reals[s], zs[s])
        if (s + 1) % EVAL_EVERY == 0 or s + 1 == steps:
            record(s + 1)
    return history


def export(demo, gen, disc, hidden: int):
    """ONNX: the trained generator (to sample) and discriminator (to score) in ORT."""
    sess_g = demo.onnx("generator", demo.make_model(gm.export_stack(
        gen, name="generator", input_name="z",
        doc_string=f"GAN generator 1-{hidden}-{hidden}-1 (LeakyRelu): z ~ N(0, 1) -> x")))
    sess_d = demo.onnx("discriminator", demo.make_model(gm.export_stack(
        disc, name="discriminator", output_name="logit",
        doc_string=f"GAN discriminator 1-{hidden}-{hidden}-1 (LeakyRelu): x -> logit of 'real'")))
    return sess_g, sess_d


def sample(rng, sess_g, sess_d, gen, gen_init, disc) -> Samples:
    """Sample the trained generator in ORT, with the references and curves the page shows."""
    n = N_SAMPLES
    z = rng.standard_normal((n, 1))
    fake = _generate(sess_g, z)
    real = _sample_data(rng, n)
    real_other = _sample_data(rng, n)
    fake_init = gm.predict(gen_init, z)
    gauss = real.mean() + real.std() * rng.standard_normal((n, 1))
    z_grid = np.linspace(-3.0, 3.0, 400)[:, None]
    g_map = _generate(sess_g, z_grid)
    x_grid = np.linspace(-3.5, 3.5, 400)[:, None]
    d_curve = _d_prob(sess_d, x_grid)[:, 0]
    ort_diff = max(float(np.max(np.abs(fake - gm.predict(gen, z)))),
                   float(np.max(np.abs(d_curve - nets.sigmoid(gm.predict(disc, x_grid))[:, 0]))))
    return Samples(fake, real, real_other, fake_init, gauss, z_grid, g_map, x_grid, d_curve, ort_diff)


def score(sess_d, s: Samples) -> Scores:
    """Distances to the data, mode shares, samples in the gaps and the discriminator's verdict."""
    means = np.array(MEANS)
    fake, real = s.fake, s.real
    n = len(fake)
    return Scores(
        w1_start=gm.wasserstein_1d(s.fake_init, real),
        w1_end=gm.wasserstein_1d(fake, real),
        w1_floor=gm.wasserstein_1d(s.real_other, real),
        w1_gauss=gm.wasserstein_1d(s.gauss, real),
        shares=np.bincount(np.argmin(np.abs(fake - means), axis=1), minlength=means.size) / n,
        gap_fake=_in_gaps(fake),
        gap_real=_in_gaps(real),
        d_real=float(np.mean(_d_prob(sess_d, real))),
        d_fake=float(np.mean(_d_prob(sess_d, fake))),
        std_fake=float(fake.std()),
        std_real=float(real.std()),
    )


def draw_samples(demo, s: Samples, scores: Scores, steps: int) -> None:
    """Figure: histograms of data and generated samples, and the discriminator's output."""
    bins = np.linspace(-3.5, 3.5, 71)

    @demo.figure(
        "samples",
        caption="Histograms of real data, of the generator before training and of 5,000 samples "
        "drawn from the trained generator in ONNX Runtime; below, the trained discriminator's "
        "probability that x is real",
        alt="Top: the data form three narrow peaks at −2, 0 and 2; the untrained generator is one "
        "blob; the trained generator's histogram has three peaks in the same places with a thin "
        "bridge of samples between them. Bottom: the discriminator's output hovers near 0.5 "
        "where the data are.",
        size=(6.4, 4.8),
    )
    def _(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1]})
        top.hist(s.real[:, 0], bins=bins, density=True, histtype="stepfilled", color="C7",
                 alpha=0.45, label="data")
        h0 = top.hist(s.fake_init[:, 0], bins=bins, density=True, histtype="step", color="C1",
                      lw=1.4, ls="--", label="G, step 0")[0]
        h1 = top.hist(s.fake[:, 0], bins=bins, density=True, histtype="step", color="C0", lw=1.8,
                      label=f"G, step {steps}")[0]
        top.set_ylim(0.0, 1.35 * max(h0.max(), h1.max()))  # room for the legend above the peaks
        top.set_ylabel("density")
        top.set_title(f"Samples (W₁ to the data: {scores.w1_start:.2f} → {scores.w1_end:.2f})",
                      fontsize="medium")
        top.legend(fontsize="small", loc="upper center", ncol=3)
        bottom.plot(s.x_grid[:, 0], s.d_curve, color="C2", lw=1.8, label="D(x)")
        bottom.axhline(0.5, color="C7", ls=":", lw=1.2)
        bottom.set_ylim(0.0, 1.0)
        bottom.set_yticks([0.0, 0.5, 1.0])
        bottom.set_ylabel("D(x)")
        bottom.set_xlabel("x")


def draw_training(demo, history: History, scores: Scores, steps: int) -> None:
    """Figure: distance to the data and the discriminator's mean outputs during training."""

    @demo.figure(
        "training",
        caption="During training: the Wasserstein-1 distance between generated and held-out real "
        "samples (log scale), and the discriminator's mean output on each",
        alt="Top: the distance falls from about one to near the dashed line of sampling noise "
        "within a few hundred steps, with bumps along the way. Bottom: the discriminator's mean "
        "output on real and on generated samples starts apart and both settle close to 0.5.",
        size=(6.4, 4.6),
    )
    def _(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.plot(history.step, history.w1, color="C0", lw=1.8, label="generator vs data")
        top.axhline(scores.w1_floor, color="C7", ls="--", lw=1.2, label="two data samples")
        plotting.plain_log_axis(top.yaxis, [0.03, 0.1, 0.3, 1.0, 3.0])
        top.set_ylabel("W₁ distance")
        top.legend(fontsize="small", loc="upper right")
        bottom.plot(history.step, history.d_real, color="C2", lw=1.6, label="D(real)")
        bottom.plot(history.step, history.d_fake, color="C3", lw=1.6, label="D(generated)")
        bottom.axhline(0.5, color="C7", ls=":", lw=1.2)
        bottom.set_ylabel("mean D output")
        bottom.set_xlabel("training step")
        bottom.set_xlim(0, steps)
        bottom.legend(fontsize="small", loc="lower right", ncol=2)


def draw_generator_map(demo, s: Samples) -> None:
    """Figure: the trained generator as a function of its noise input."""

    @demo.figure(
        "generator-map",
        caption="The trained generator as a function: each noise value z becomes a sample G(z); "
        "the shaded bands are the three modes of the data (mean ± 2 standard deviations)",
        alt="A staircase-like curve: G(z) passes through the three shaded bands, changing slowly "
        "inside each band and steeply between them, so that few z values land in the gaps.",
        size=(6.4, 3.8),
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for m in MEANS:
            ax.axhspan(m - 2 * STD, m + 2 * STD, color="C7", alpha=0.2, lw=0)
        ax.plot(s.z_grid[:, 0], s.g_map[:, 0], color="C0", lw=2)
        ax.set_xlabel("noise z (drawn from N(0, 1))")
        ax.set_ylabel("sample x = G(z)")
        ax.set_xlim(-3, 3)
        ax.set_title("G(z): slow inside the shaded data modes, steep between them",
                     fontsize="medium")


def measure(demo, sc: Scores, steps: int, batch: int, hidden: int, ort_diff: float) -> None:
    """Record distances, mode shares, the discriminator's outputs and the setup."""
    demo.metric("w1_start", sc.w1_start, fmt=".2f", label="W₁ to the data, untrained generator")
    demo.metric("w1_end", sc.w1_end, fmt=".2f", label="W₁ to the data, trained generator (ORT)")
    demo.metric("w1_floor", sc.w1_floor, fmt=".3f", label="W₁ between two data samples of the same size")
    demo.metric("w1_gaussian", sc.w1_gauss, fmt=".2f",
                label="W₁ to the data, a Gaussian with the data's mean and standard deviation")
    demo.metric("w1_ratio", sc.w1_end / sc.w1_start, fmt=".2f", label="W₁ after ÷ before training")
    for name, share in zip(("left", "middle", "right"), sc.shares, strict=True):
        demo.metric(f"share_{name}", share, fmt=".1%",
                    label=f"Share of generated samples nearest the {name} mode")
    demo.metric("min_share", float(sc.shares.min()), fmt=".1%", label="Smallest mode share")
    demo.metric("gap_fake", sc.gap_fake, fmt=".1%",
                label="Generated samples more than 3 std from every mode")
    demo.metric("gap_real", sc.gap_real, fmt=".1%", label="Real samples more than 3 std from every mode")
    demo.metric("d_real", sc.d_real, fmt=".3f", label="Mean D output on real samples, end")
    demo.metric("d_fake", sc.d_fake, fmt=".3f", label="Mean D output on generated samples, end")
    demo.metric("std_fake", sc.std_fake, fmt=".2f", label="Standard deviation of generated samples")
    demo.metric("std_real", sc.std_real, fmt=".2f", label="Standard deviation of real samples")
    demo.metric("steps", steps, fmt=".0f", label="Training steps (one D and one G update each)")
    demo.metric("batch", batch, fmt=".0f", label="Real and generated samples per batch")
    demo.metric("hidden_units", hidden, fmt=".0f", label="Units per hidden layer (G and D)")
    demo.metric("ort_max_abs_diff", ort_diff, fmt=".1e",
                label="Max |ONNX Runtime − NumPy|, generator samples and discriminator output")


def claim_findings(demo, sc: Scores, ort_diff: float) -> None:
    """Claims: closer to the data, all modes covered, D fooled, gaps filled, ORT agrees."""
    demo.claim(
        "Training brings the generated samples much closer to the data: the Wasserstein-1 "
        "distance falls below half its starting value, and below that of a Gaussian with the "
        "data's mean and standard deviation (which cannot have three peaks)",
        holds=bool(sc.w1_end < sc.w1_start / 2 and sc.w1_end < sc.w1_gauss),
        w1_start=sc.w1_start,
        w1_end=sc.w1_end,
        w1_gaussian=sc.w1_gauss,
        w1_two_data_samples=sc.w1_floor,
    )
    demo.claim(
        "The generator covers all three modes: each receives at least 20% of its samples (a "
        "third would be exact)",
        holds=bool(sc.shares.min() >= 0.2),
        left=float(sc.shares[0]),
        middle=float(sc.shares[1]),
        right=float(sc.shares[2]),
    )
    demo.claim(
        "At the end the discriminator can barely tell real from generated: its mean output on "
        "both is within 0.05 of 0.5",
        holds=bool(abs(sc.d_real - 0.5) < 0.05 and abs(sc.d_fake - 0.5) < 0.05),
        d_real=sc.d_real,
        d_generated=sc.d_fake,
    )
    demo.claim(
        "The generator puts more samples in the gaps between the modes than the data do (a "
        "continuous map of one noise number has to pass through them)",
        holds=bool(sc.gap_fake > sc.gap_real),
        generated_in_gaps=sc.gap_fake,
        real_in_gaps=sc.gap_real,
    )
    demo.claim(
        "ONNX Runtime's generator and discriminator match the NumPy networks",
        holds=bool(ort_diff < 1e-4),
        max_abs_diff=ort_diff,
    )


def _sample_data(rng, n: int) -> np.ndarray:
    """n samples of the three-Gaussian mixture, shape (n, 1)."""
    return gm.gaussian_mixture_1d(rng, n, MEANS, STD)[0]


def _generate(sess_g, z: np.ndarray) -> np.ndarray:
    """Generator samples from ONNX Runtime."""
    return sess_g.run(None, {"z": z.astype(np.float32)})[0].astype(np.float64)


def _d_prob(sess_d, x: np.ndarray) -> np.ndarray:
    """Discriminator probability that x is real, from ONNX Runtime."""
    return nets.sigmoid(sess_d.run(None, {"x": x.astype(np.float32)})[0].astype(np.float64))


def _in_gaps(x: np.ndarray) -> float:
    """Share of samples more than 3 std from every mode."""
    return float(np.mean(np.min(np.abs(x - np.array(MEANS)), axis=1) > 3 * STD))
