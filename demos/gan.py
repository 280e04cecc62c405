"""A generative adversarial network on a 1-D mixture of three Gaussians: a generator and a discriminator (small leaky-
ReLU MLPs with hand-written backprop) trained against each other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import generative as gm
from demolib import nets, plotting

MEANS = (-2.0, 0.0, 2.0)
STD = 0.25
EVAL_EVERY = 25
N_SAMPLES = 5000  # samples drawn from the trained generator for the page
COVERED = 0.2  # a mode counts as covered when it gets at least this share of the samples (1/3 is exact)
BAND_STDS = 2  # the shaded bands in the generator-map figure
D_TOLERANCE = 0.05  # "D can barely tell": its mean outputs within this of 1/2
GAP_STDS = 3  # a sample is "in a gap" when it is more than this many std from every mode


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


@dataclass
class Restarts:
    """Every training run from a fresh start (the first is the one shown), scored."""

    shares: np.ndarray  # (runs, modes): share of samples nearest each mode
    covered: np.ndarray  # every mode gets at least COVERED of the samples
    closer: np.ndarray  # W1 below half its start and below the Gaussian's
    fooled: np.ndarray  # D's mean output within D_TOLERANCE of 1/2 on real and on generated


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    steps = int(opts.get("steps", 1000))
    batch = int(opts.get("batch", 128))
    lr = float(opts.get("lr", 0.01))
    hidden = int(opts.get("hidden", 16))
    restarts = int(opts.get("restarts", 10))

    gen, disc = init_networks(rng, hidden)
    gen_init = gen.copy()
    history = train(rng, gen, disc, steps, batch, lr)
    sess_g, sess_d = export(demo, gen, disc, hidden)
    samples = sample(rng, sess_g, sess_d, gen, gen_init, disc)
    scores = score(sess_d, samples)
    rs = restart_runs(rng, scores, restarts, hidden, steps, batch, lr)

    draw_samples(demo, samples, scores, steps)
    draw_training(demo, history, scores, steps)
    draw_generator_map(demo, samples)
    measure(demo, scores, steps, batch, hidden, samples.ort_diff)
    measure_restarts(demo, rs)
    claim_findings(demo, scores, rs, samples.ort_diff)


def init_networks(rng, hidden: int):
    """A fresh generator (noise z ~ N(0, 1) -> sample x) and discriminator (x -> logit of "real")."""
    acts = ["leaky_relu", "leaky_relu", "linear"]
    return (gm.init_stack(rng, [1, hidden, hidden, 1], acts), gm.init_stack(rng, [1, hidden, hidden, 1], acts))


def restart_runs(rng, first: Scores, restarts: int, hidden: int, steps: int, batch: int, lr: float) -> Restarts:
    """Collapse and convergence are partly luck: train the GAN again from fresh starts, same settings,
    and score every run (the run shown on the page is the first)."""
    real = _sample_data(rng, N_SAMPLES)
    runs = [(first.shares, first.w1_end, first.w1_start, first.d_real, first.d_fake)]
    for _ in range(restarts - 1):
        gen, disc = init_networks(rng, hidden)
        z = rng.standard_normal((N_SAMPLES, 1))
        w1_start = gm.wasserstein_1d(gm.predict(gen, z), real)
        train(rng, gen, disc, steps, batch, lr)
        fake = gm.predict(gen, z)
        d = [float(np.mean(nets.sigmoid(gm.predict(disc, x)))) for x in (real, fake)]
        runs.append((_mode_shares(fake), gm.wasserstein_1d(fake, real), w1_start, *d))
    shares, w1_end, w1_start, d_real, d_fake = (np.array(v) for v in zip(*runs, strict=True))
    covered = shares.min(axis=1) >= COVERED
    closer = (w1_end < w1_start / 2) & (w1_end < first.w1_gauss)
    fooled = (np.abs(d_real - 0.5) < D_TOLERANCE) & (np.abs(d_fake - 0.5) < D_TOLERANCE)
    return Restarts(shares, covered, closer, fooled)


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
    fake, real = s.fake, s.real
    return Scores(
        w1_start=gm.wasserstein_1d(s.fake_init, real),
        w1_end=gm.wasserstein_1d(fake, real),
        w1_floor=gm.wasserstein_1d(s.real_other, real),
        w1_gauss=gm.wasserstein_1d(s.gauss, real),
        shares=_mode_shares(fake),
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
        caption="Histograms of real data, of the generator before training and of "
        f"{len(s.fake):,} samples drawn from the trained generator in ONNX Runtime; below, the trained "
        "discriminator's probability that x is real",
        alt=f"Top: the data form {len(MEANS)} narrow peaks at {', '.join(f'{m:g}' for m in MEANS)}; "
        "the untrained generator is one blob; the trained generator puts "
        f"{', '.join(f'{v:.0%}' for v in scores.shares)} of its samples nearest these peaks, from left "
        f"to right, and {scores.gap_fake:.1%} in the gaps between them. Bottom: the discriminator's "
        f"output, whose mean is {scores.d_real:.2f} on real and {scores.d_fake:.2f} on generated samples.",
        size=(6.4, 4.8),
        notice="The trained generator covers all three peaks, with a few samples left in the gaps.",
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
        alt=f"Top: the distance falls from {history.w1[0]:.2f} to {history.w1[-1]:.2f}, against "
        f"{scores.w1_floor:.3f} between two data samples (dashed line). Bottom: the discriminator's "
        f"mean output on real and on generated samples starts at {history.d_real[0]:.2f} and "
        f"{history.d_fake[0]:.2f} and ends at {history.d_real[-1]:.2f} and {history.d_fake[-1]:.2f}.",
        size=(6.4, 4.6),
        notice="The distance to the data falls, and the discriminator's outputs meet near one half.",
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
        f"the shaded bands are the {len(MEANS)} modes of the data (mean ± {BAND_STDS} standard deviations)",
        alt="A staircase-like curve: G(z) changes slowly inside the shaded bands of the data's modes "
        "and steeply between them, so that few z values land in the gaps.",
        size=(6.4, 3.8),
        notice="The generator's map is steep between the modes, so few samples land in the gaps.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for m in MEANS:
            ax.axhspan(m - BAND_STDS * STD, m + BAND_STDS * STD, color="C7", alpha=0.2, lw=0)
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
                label=f"Generated samples more than {GAP_STDS} std from every mode")
    demo.metric("gap_real", sc.gap_real, fmt=".1%", label=f"Real samples more than {GAP_STDS} std from every mode")
    demo.metric("d_real", sc.d_real, fmt=".3f", label="Mean D output on real samples, end")
    demo.metric("d_fake", sc.d_fake, fmt=".3f", label="Mean D output on generated samples, end")
    demo.metric("std_fake", sc.std_fake, fmt=".2f", label="Standard deviation of generated samples")
    demo.metric("std_real", sc.std_real, fmt=".2f", label="Standard deviation of real samples")
    demo.setting("steps", steps, fmt=".0f", label="Training steps (one D and one G update each)")
    demo.setting("batch", batch, fmt=".0f", label="Real and generated samples per batch")
    demo.setting("hidden_units", hidden, fmt=".0f", label="Units per hidden layer (G and D)")
    demo.metric("ort_max_abs_diff", ort_diff, fmt=".1e",
                label="Max |ONNX Runtime − NumPy|, generator samples and discriminator output")


def measure_restarts(demo, rs: Restarts) -> None:
    """Record the setup of the restarts and how many of them did what."""
    demo.key_numbers("w1_start", "w1_end", "min_share", "d_real", "d_fake")
    demo.setting("n_modes", len(MEANS), fmt=".0f", label="Modes of the data")
    demo.setting("mode_spacing", MEANS[1] - MEANS[0], fmt="g", label="Distance between neighbouring modes")
    demo.setting("restarts", len(rs.covered), fmt=".0f", label="Training runs from fresh starts (the first is shown)")
    demo.setting("covered_share", COVERED, fmt=".0%", label="Share of samples a mode needs to count as covered")
    demo.setting("d_tolerance", D_TOLERANCE, fmt="g", label="Largest gap of D's mean outputs to 1/2 counted as fooled")
    demo.metric("covered_restarts", int(rs.covered.sum()), fmt=".0f", label="Runs that cover every mode")
    demo.metric("collapsed_restarts", int((~rs.covered).sum()), fmt=".0f", label="Runs that lose a mode")
    demo.metric("closer_restarts", int(rs.closer.sum()), fmt=".0f",
                label="Runs whose W₁ falls below half its start and below the Gaussian's")
    demo.metric("fooled_restarts", int(rs.fooled.sum()), fmt=".0f",
                label="Runs whose discriminator ends with mean outputs near 1/2")


def claim_findings(demo, sc: Scores, rs: Restarts, ort_diff: float) -> None:
    """Findings and checks: over the restarts, closer to the data, modes covered, D fooled; gaps; ORT."""
    k = len(rs.covered)
    demo.claim(
        f"Training brings the generated samples much closer to the data in more than half of {k} runs "
        "from fresh starts: the Wasserstein-1 distance falls below half its starting value, and below "
        "that of a Gaussian with the data's mean and standard deviation (which cannot have several peaks)",
        holds=bool(2 * rs.closer.sum() > k),
        closer_restarts=int(rs.closer.sum()), runs=demo.number(k, "runs"), w1_start=sc.w1_start, w1_end=sc.w1_end,
        w1_gaussian=sc.w1_gauss,
    )
    demo.claim(
        f"Mode collapse is the exception: in more than half of {k} runs from fresh starts the generator "
        f"covers all {len(MEANS)} modes (each receives at least {COVERED:.0%} of its samples; a third "
        "would be exact)",
        holds=bool(2 * rs.covered.sum() > k),
        covered=demo.number(int(rs.covered.sum()), "runs covering every mode"), runs=demo.number(k, "runs"),
        smallest_shares=demo.number(
            ", ".join(f"{v:.2f}" for v in rs.shares.min(axis=1)), "smallest share of a mode, run by run"),
    )
    demo.claim(
        f"At the end the discriminator can barely tell real from generated in more than half of {k} "
        f"runs: its mean output on both is within {D_TOLERANCE:g} of 0.5",
        holds=bool(2 * rs.fooled.sum() > k),
        fooled_restarts=int(rs.fooled.sum()), runs=demo.number(k, "runs"), d_real=sc.d_real, d_fake=sc.d_fake,
    )
    demo.claim(
        "The generator puts more samples in the gaps between the modes than the data do (a "
        "continuous map of one noise number has to pass through them)",
        holds=bool(sc.gap_fake > sc.gap_real),
        gap_fake=sc.gap_fake, gap_real=sc.gap_real,
    )
    demo.check(
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
    """Share of samples more than GAP_STDS std from every mode."""
    return float(np.mean(np.min(np.abs(x - np.array(MEANS)), axis=1) > GAP_STDS * STD))


def _mode_shares(x: np.ndarray) -> np.ndarray:
    """Share of samples nearest each mode."""
    means = np.array(MEANS)
    return np.bincount(np.argmin(np.abs(x - means), axis=1), minlength=means.size) / len(x)
