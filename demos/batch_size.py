"""Batch size: the mini-batch gradient's variance falls as 1/B, and the trade-off between steps and
examples needed to reach a target loss as B grows (with the learning rate tuned for each B)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import linear, onnx_export, optim, plotting
from matplotlib.ticker import LogLocator

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TICKS = [1, 4, 16, 64, 256]  # batch sizes labelled on the axes
N_EXAMPLES, N_FEATURES = 4096, 6
MIN_BATCHES = 1024  # at least this many batches per size when measuring the gradient noise
N_RATES = 32  # learning rates tried per batch size
SE_TOLERANCE = 4.0  # simulated vs exact: allowed gap, in standard errors of the simulated mean


@dataclass
class Noise:
    """The variance of the mini-batch gradient at the start, measured and in theory."""

    measured_var: np.ndarray  # one value per batch size
    theory_var: np.ndarray
    slope: float  # fitted log-log slope of the measured variance
    worst_rel: float
    trace_cov: float  # tr Σ, the per-example gradient variance
    g_norm2: float  # squared norm of the full gradient
    noise_scale: float


@dataclass
class Tradeoff:
    """Steps and examples to the target for each batch size, at its best learning rate."""

    moments: optim.SGDMoments
    e0: np.ndarray  # the starting error w0 − w*
    steps_to: np.ndarray
    best_lr: np.ndarray
    examples_to: np.ndarray
    reached: np.ndarray
    B_knee: int  # the largest batch within 2× the fewest examples
    small_speedup: float  # fewer steps from B = 1 to 8
    small_cost: float  # more examples from B = 1 to 8
    large_speedup: float  # fewer steps from B = 128 to 512
    large_cost: float  # more examples from B = 128 to 512


@dataclass
class Model:
    """McCandlish et al.'s model S = S_min (1 + B_crit / B) fitted to the measured steps."""

    s_min: float
    b_crit: float
    model_steps: np.ndarray
    model_gap: float


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    chains = int(opts.get("chains", 64))
    max_steps = int(opts.get("max_steps", 6000))
    target = float(opts.get("target", 0.01))

    P, w0 = make_problem(rng)
    excess0 = float(P.excess(w0))
    noise = gradient_noise(rng, P, w0)
    trade = steps_to_target(P, w0, max_steps, target)
    model = fit_model(trade)
    sim_batches, sim, sim_gap, sim_z = simulate_sgd(rng, P, w0, trade, chains)
    ort_diff, ort_excess = check_onnx(demo, P, sim[trade.B_knee]["w"], trade.B_knee)

    draw_gradient_noise(demo, noise)
    draw_steps_vs_examples(demo, trade, model, target)
    draw_curves(demo, trade, P, target)
    measure(demo, P, noise, target, excess0, trade, model, sim_gap, ort_excess, ort_diff)
    measure_setup(demo, P, chains, max_steps)
    claim_findings(demo, P, noise, trade, model, chains, sim_batches, sim_z, ort_diff)


def make_problem(rng: np.random.Generator):
    """A least-squares problem with a spread of curvatures, and the starting point w = 0."""
    # 4,096 examples, 6 features; Hessian eigenvalues from 0.05 to 1, noise σ = 0.5. The true
    # weights put the same excess loss, 1, in every eigen-direction at the start (w = 0), so both
    # the flat and the steep directions matter.
    lam = np.geomspace(0.05, 1.0, N_FEATURES)
    w_true = rng.choice([-1.0, 1.0], lam.size) * np.sqrt(2.0 / lam)
    P = optim.LeastSquares.from_spectrum(rng, N_EXAMPLES, lam, noise=0.5, w_true=w_true)
    w0 = np.zeros(P.d)
    return P, w0


def gradient_noise(rng: np.random.Generator, P: optim.LeastSquares, w0: np.ndarray) -> Noise:
    """The variance of the mini-batch gradient at the starting point, for every batch size."""
    G = P.per_example_grads(w0)
    trace_cov = float(np.mean(np.sum((G - G.mean(axis=0)) ** 2, axis=1)))  # tr Σ (population)
    Bv = np.array(BATCHES)
    measured_var = np.array([_batch_gradient_variance(G, int(B), rng, MIN_BATCHES) for B in Bv])
    theory_var = trace_cov / Bv * (P.n - Bv) / (P.n - 1)  # finite-population correction
    slope = float(np.polyfit(np.log(Bv), np.log(measured_var), 1)[0])
    worst_rel = float(np.max(np.abs(measured_var / theory_var - 1)))
    g_norm2 = float(np.sum(G.mean(axis=0) ** 2))
    noise_scale = trace_cov / g_norm2  # batch size at which noise and signal are equally large
    return Noise(measured_var, theory_var, slope, worst_rel, trace_cov, g_norm2, noise_scale)


def steps_to_target(P: optim.LeastSquares, w0: np.ndarray, max_steps: int, target: float) -> Tradeoff:
    """Steps and examples to reach the target, the learning rate tuned per batch size."""
    # The expected excess loss of SGD (B examples drawn at random per step) is computed exactly
    # from its first two moments, for 32 learning rates at once; the first rate to bring it below
    # the target sets the steps for that batch size.
    Bs = np.array(BATCHES)
    moments = optim.SGDMoments(P)
    lrs = np.geomspace(0.001, 1.95, N_RATES) / P.lam_max
    e0 = w0 - P.w_star
    steps_to = np.full(Bs.size, max_steps + 1)
    best_lr = np.full(Bs.size, np.nan)
    for b, B in enumerate(Bs):
        curve = moments.excess(lrs, int(B), e0, max_steps, stop_below=target)
        crossed = np.flatnonzero(np.any(curve < target, axis=1))
        if crossed.size:
            steps_to[b] = int(crossed[0])
            best_lr[b] = lrs[int(np.nanargmin(curve[crossed[0]]))]
    examples_to = steps_to * Bs
    reached = steps_to <= max_steps
    i_min_examples = int(np.argmin(np.where(reached, examples_to, np.inf)))
    # The largest batch that still needs at most twice the fewest examples: past it, bigger
    # batches mostly waste computation.
    efficient = reached & (examples_to <= 2 * examples_to[i_min_examples])
    i_knee = int(np.flatnonzero(efficient).max())
    B_knee = int(Bs[i_knee])
    small_speedup = steps_to[at(1)] / steps_to[at(8)]
    small_cost = examples_to[at(8)] / examples_to[at(1)]
    large_speedup = steps_to[at(128)] / steps_to[at(512)]
    large_cost = examples_to[at(512)] / examples_to[at(128)]
    return Tradeoff(moments, e0, steps_to, best_lr, examples_to, reached, B_knee,
                    small_speedup, small_cost, large_speedup, large_cost)


def at(B: int) -> int:
    """The index of batch size ``B`` in BATCHES."""
    return int(np.flatnonzero(np.array(BATCHES) == B)[0])


def fit_model(trade: Tradeoff) -> Model:
    """Fit S = S_min (1 + B_crit / B) to the steps, by least squares on the relative error of S."""
    # McCandlish et al.'s model: steps S = S_min (1 + B_crit / B), examples E = S B = E_min (1 + B / B_crit)
    # with E_min = S_min B_crit; fitted by least squares on the relative error of S.
    Bs, steps_to = np.array(BATCHES), trade.steps_to
    (s_min, s_min_bcrit), *_ = np.linalg.lstsq(np.column_stack([1 / steps_to, 1 / (Bs * steps_to)]),
                                                np.ones(Bs.size), rcond=None)
    b_crit = float(s_min_bcrit / s_min)
    model_steps = s_min * (1 + b_crit / Bs)
    model_gap = float(np.max(np.abs(steps_to / model_steps - 1)))
    return Model(s_min, b_crit, model_steps, model_gap)


def simulate_sgd(rng: np.random.Generator, P: optim.LeastSquares, w0: np.ndarray, trade: Tradeoff, chains: int):
    """Real SGD runs at three batch sizes, each with its best rate, checked against the exact mean."""
    sim_batches = sorted({1, trade.B_knee, BATCHES[-1]})
    sim: dict[int, dict[str, np.ndarray]] = {}
    for B in sim_batches:
        b = at(B)
        T = int(trade.steps_to[b])
        path = optim.trajectory(optim.GD(trade.best_lr[b]), P.sgd_grad(rng, B), np.tile(w0, (chains, 1)), T)
        exact = trade.moments.excess(np.array([trade.best_lr[b]]), B, trade.e0, T)[:, 0]
        final = P.excess(path[-1])
        sim[B] = {"mean": float(final.mean()), "se": float(final.std(ddof=1) / np.sqrt(chains)),
                  "exact": float(exact[-1]), "w": path[-1, 0]}
    sim_gap = max(abs(v["mean"] / v["exact"] - 1) for v in sim.values())
    # The gap in units of the runs' own standard error: chance alone rarely puts it past a few.
    sim_z = max(abs(v["mean"] - v["exact"]) / v["se"] for v in sim.values())
    return sim_batches, sim, sim_gap, sim_z


def check_onnx(demo, P: optim.LeastSquares, w_knee: np.ndarray, B_knee: int):
    """Export the linear model trained by one SGD run with the knee batch size; run it in ORT."""
    sess = demo.onnx("linear_model", demo.make_model(
        onnx_export.export_linear(linear.LinearModel(w_knee, 0.0), name=f"linear_batch_{B_knee}")))
    pred = sess.run(None, {"x": P.X.astype(np.float32)})[0].astype(np.float64)
    ort_diff = float(np.max(np.abs(pred - P.X @ w_knee)))
    ort_excess = float(np.mean((pred - P.y) ** 2) / 2 - P.loss_star)
    return ort_diff, ort_excess


def draw_gradient_noise(demo, noise: Noise) -> None:
    """Figure: the mini-batch gradient's variance against the batch size, measured and in theory."""
    Bv = np.array(BATCHES)

    @demo.figure(
        "gradient-noise",
        caption="How far a mini-batch gradient lands from the full-data gradient, on average, "
        f"against the batch size ({N_EXAMPLES:,} examples, batches drawn without replacement; at least "
        f"{MIN_BATCHES:,} batches per size)",
        alt=f"Log-log chart: measured points fall on a straight line of slope {noise.slope:.2f} from batch "
        f"size {BATCHES[0]} to {BATCHES[-1]}, on top of the theoretical curve; the squared size of the full "
        f"gradient is a horizontal line that the points cross near a batch size of {noise.noise_scale:.0f}.",
        notice="The noise of a mini-batch gradient falls as one over the batch size.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(Bv, noise.theory_var, color="C0", lw=1.5, label="theory: tr Σ / B × (n − B)/(n − 1)")
        ax.plot(Bv, noise.measured_var, "o", color="C1", ms=7, label=f"measured (fitted slope {noise.slope:.3f})")
        ax.axhline(noise.g_norm2, color="C7", ls="--", lw=1.2, label="‖full gradient‖²")
        plotting.plain_log_axis(ax.xaxis, Bv, fmt="{:g}")
        plotting.plain_log_axis(ax.yaxis, LogLocator(numticks=6), fmt=plotting.exponent_label)
        ax.set_xlabel("batch size B")
        ax.set_ylabel(r"$𝔼\,\|g_B - g\|^2$")  # the symbol itself: \mathbb{E} has no Unicode glyph in SVG
        ax.set_title("Gradient noise falls as 1/B")
        ax.legend(fontsize="small", loc="lower left")


def draw_steps_vs_examples(demo, trade: Tradeoff, model: Model, target: float) -> None:
    """Figure: steps and examples to the target against the batch size, with the fitted model."""
    Bs, steps_to, examples_to, reached = np.array(BATCHES), trade.steps_to, trade.examples_to, trade.reached
    s_min, b_crit, model_steps = model.s_min, model.b_crit, model.model_steps

    @demo.figure(
        "steps-vs-examples",
        caption=f"Steps and examples SGD needs to bring the expected excess loss below {target:g} "
        "(each step draws B examples at random, with replacement), with the learning rate tuned "
        "separately for each batch size, and the model S = S_min(1 + B_crit/B) fitted to them",
        alt="Two log-log panels against batch size. Top: steps to the target fall in proportion "
        "to the batch size for small batches, then level off towards a minimum. Bottom: examples "
        "processed stay flat for small batches and climb steeply past the critical batch size, "
        "marked by a dashed vertical line. A fitted curve passes through all points.",
        size=(6.4, 5.6),
        notice="Past the critical batch size, steps level off while examples climb steeply.",
    )
    def _(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.plot(Bs, model_steps, color="C7", lw=1.2, ls="--", label="fitted model")
        top.plot(Bs[reached], steps_to[reached], "o", color="C0", ms=6, label="steps to target")
        top.axhline(s_min, color="C7", ls=":", lw=1.0, label=f"$S_{{\\min}}$ ≈ {s_min:.0f}")
        top.axvline(b_crit, color="C2", ls="--", lw=1.2, label=f"$B_{{\\mathrm{{crit}}}}$ ≈ {b_crit:.0f}")
        plotting.plain_log_axis(top.yaxis, [10, 30, 100, 300, 1000, 3000], fmt="{:,.0f}")
        top.set_ylabel("steps")
        top.set_title("Bigger batches: fewer steps, more examples")
        top.legend(fontsize="small", loc="upper right")
        bottom.plot(Bs, model_steps * Bs, color="C7", lw=1.2, ls="--")
        bottom.plot(Bs[reached], examples_to[reached], "s", color="C1", ms=6, label="examples to target")
        bottom.axvline(b_crit, color="C2", ls="--", lw=1.2)
        plotting.plain_log_axis(bottom.yaxis, [2000, 5000, 10000, 20000], fmt="{:,.0f}")
        plotting.plain_log_axis(bottom.xaxis, TICKS, fmt="{:g}")
        bottom.set_xlabel("batch size B")
        bottom.set_ylabel("examples processed")
        bottom.legend(fontsize="small", loc="upper left")


def draw_curves(demo, trade: Tradeoff, P: optim.LeastSquares, target: float) -> None:
    """Figure with a slider over the batch size: expected excess loss at its best rate, others faint."""
    Bs, shown = np.array(BATCHES), np.flatnonzero(trade.reached)
    knee, last = int(np.flatnonzero(Bs[shown] == trade.B_knee)[0]), int(trade.steps_to[shown].max())
    at_steps = np.unique(np.geomspace(1, last, 120).astype(int))  # enough points for a log axis, a small file
    curves = [trade.moments.excess(trade.best_lr[[b]], int(Bs[b]), trade.e0, last)[at_steps, 0] for b in shown]

    @demo.sweep(
        "loss-curves", Bs[shown], label="batch size B", fmt=".0f", default=knee,
        caption=f"Expected excess loss of SGD step by step, each batch size at the learning rate that reaches "
        f"{target:g} in the fewest steps (exact, from the moments of SGD); the other batch sizes faint",
        alt="Log-log chart of expected excess loss against the step, one curve per batch size, each falling to "
        "the target line: larger batches reach it in fewer steps, by a lot for small ones, little past the "
        "critical batch size",
        notice="Double a small batch and the steps to the target nearly halve; past the critical size they barely move "
        "while the examples processed keep growing.",
        numbers=lambda k: [demo.number(float(trade.steps_to[shown[k]]), "steps to the target", ",.0f"),
                           demo.number(float(trade.examples_to[shown[k]]), "examples processed", ",.0f"),
                           demo.number(trade.best_lr[shown[k]], "best learning rate", ".3g")],
    )
    def _(fig, k: int) -> None:
        ax = fig.subplots()
        for j, curve in enumerate(curves):
            ax.plot(at_steps, curve, color="C0" if j == k else "C7", lw=2.2 if j == k else 0.8,
                    alpha=1.0 if j == k else 0.4, zorder=3 if j == k else 2)
        ax.axhline(target, color="C2", ls="--", lw=1.2, label="target")
        ax.plot(trade.steps_to[shown[k]], target, "o", color="C3", ms=7, zorder=4, label="reached")
        ax.set(xscale="log", yscale="log", xlim=(1, last * 1.2), xlabel="step", ylabel="expected excess loss")
        plotting.plain_log_axis(ax.xaxis, [1, 10, 100, 1000], fmt="{:,.0f}")
        plotting.plain_log_axis(ax.yaxis, LogLocator(numticks=6), fmt=plotting.exponent_label)
        ax.set_title(f"B = {Bs[shown[k]]}, learning rate {trade.best_lr[shown[k]]:.3g}")
        ax.legend(fontsize="small", loc="lower left")


def measure_setup(demo, P: optim.LeastSquares, chains: int, max_steps: int) -> None:
    """Record the numbers of the run's setup."""
    demo.setting("n_features", P.d, label="Weights of the linear model", fmt=".0f")
    demo.setting("chains", chains, label="Real SGD runs per simulated batch size", fmt=".0f")
    demo.setting("n_rates", N_RATES, label="Learning rates tried per batch size", fmt=".0f")
    demo.setting("max_steps", max_steps, label="Most steps tried per batch size", fmt=",.0f")
    demo.setting("b_small_ratio", BATCHES[at(8)] / BATCHES[at(1)], label="Batch size 8 ÷ 1", fmt=".0f", unit="×")


def measure(demo, P: optim.LeastSquares, noise: Noise, target: float, excess0: float, trade: Tradeoff,
            model: Model, sim_gap: float, ort_excess: float, ort_diff: float) -> None:
    """Record the gradient noise, the steps/examples trade-off, the fitted model and the checks."""
    demo.key_numbers("b_crit", "steps_b1", "steps_b512", "small_speedup", "large_speedup", "lr_scaling_small")
    steps_to, examples_to, best_lr = trade.steps_to, trade.examples_to, trade.best_lr
    demo.metric("n_examples", P.n, label="Training examples", fmt=",.0f")
    demo.metric("variance_slope", noise.slope, label="Fitted log-log slope of gradient variance vs B", fmt=".3f")
    demo.metric("variance_worst_rel_error", noise.worst_rel, label="Largest gap to tr Σ/B × (n−B)/(n−1)",
                fmt=".1%")
    demo.metric("trace_cov", noise.trace_cov, label="tr Σ (per-example gradient variance)", fmt=".3g")
    demo.metric("noise_scale", noise.noise_scale, label="Gradient noise scale tr Σ / ‖g‖² at the start",
                fmt=".3g")
    demo.metric("target", target, label="Target excess loss", fmt="g")
    demo.metric("initial_excess", excess0, label="Excess loss at the start", fmt=".3g")
    for B in (1, 8, 64, 128, 512):
        demo.metric(f"steps_b{B}", steps_to[at(B)], label=f"Steps to target, B = {B}", fmt=",.0f")
        demo.metric(f"examples_b{B}", examples_to[at(B)], label=f"Examples to target, B = {B}", fmt=",.0f")
        demo.metric(f"lr_b{B}", best_lr[at(B)], label=f"Best learning rate, B = {B}", fmt=".3g")
    demo.metric("b_crit", model.b_crit, label="Critical batch size (fitted)", fmt=".0f")
    demo.metric("s_min", model.s_min, label="Fewest possible steps (fitted)", fmt=".1f")
    demo.metric("e_min", model.s_min * model.b_crit, label="Fewest possible examples (fitted)", fmt=",.0f")
    demo.metric("model_gap", model.model_gap, label="Largest gap between measured steps and the model", fmt=".1%")
    demo.metric("knee_batch", trade.B_knee, label="Largest batch within 2× the fewest examples", fmt=".0f")
    demo.metric("small_speedup", trade.small_speedup, label="Fewer steps from B = 1 to 8", fmt=".1f", unit="×")
    demo.metric("small_cost", trade.small_cost, label="More examples from B = 1 to 8", fmt=".2f", unit="×")
    demo.metric("large_speedup", trade.large_speedup, label="Fewer steps from B = 128 to 512", fmt=".2f",
                unit="×")
    demo.metric("large_cost", trade.large_cost, label="More examples from B = 128 to 512", fmt=".1f", unit="×")
    demo.metric("lr_scaling_small", best_lr[at(8)] / best_lr[at(1)], label="Best rate at B = 8 ÷ at B = 1",
                fmt=".1f", unit="×")
    demo.metric("sim_gap", sim_gap, label="Largest gap between simulated SGD and the exact expectation",
                fmt=".1%")
    demo.metric("ort_excess", ort_excess, label=f"Excess loss of the B = {trade.B_knee} model in ONNX Runtime",
                fmt=".3g")
    demo.metric("ort_max_abs_diff", ort_diff, label="Max |ONNX Runtime − NumPy| prediction", fmt=".1e")


def claim_findings(demo, P: optim.LeastSquares, noise: Noise, trade: Tradeoff, model: Model, chains: int,
                   sim_batches: list[int], sim_z: float, ort_diff: float) -> None:
    """Findings and checks: variance falls as 1/B, small batches scale, large ones don't, and the checks agree."""
    best_lr = trade.best_lr
    demo.check(
        "The variance of the mini-batch gradient falls as 1/B: the fitted log-log slope is within "
        "0.05 of −1, and every measurement is within 10% of tr Σ/B × (n − B)/(n − 1)",
        holds=bool(abs(noise.slope + 1) < 0.05 and noise.worst_rel < 0.1),
        slope=noise.slope,
        worst_relative_gap=noise.worst_rel,
    )
    demo.claim(
        "Small batches scale almost perfectly: going from B = 1 to B = 8 cuts the steps to the "
        "target by more than 5× while the examples processed grow by less than 1.6×",
        holds=bool(trade.small_speedup > 5 and trade.small_cost < 1.6),
        fewer_steps=demo.number(trade.small_speedup, "fewer steps from B = 1 to B = 8 (×)"),
        more_examples=demo.number(trade.small_cost, "more examples (×)"),
    )
    demo.claim(
        "Large batches hit diminishing returns: going from B = 128 to B = 512 saves less than "
        "1.5× in steps but costs more than 2.5× the examples",
        holds=bool(trade.large_speedup < 1.5 and trade.large_cost > 2.5),
        fewer_steps=demo.number(trade.large_speedup, "fewer steps from B = 128 to B = 512 (×)"),
        more_examples=demo.number(trade.large_cost, "more examples (×)"),
    )
    demo.claim(
        "Steps and examples follow the trade-off S = S_min(1 + B_crit/B), E = E_min(1 + B/B_crit) "
        "to within 10% at every batch size",
        holds=bool(trade.reached.all() and model.model_gap < 0.1),
        b_crit=model.b_crit,
        s_min=model.s_min,
        largest_gap=demo.number(model.model_gap, "largest relative gap to the trade-off curve", fmt=".1%"),
    )
    demo.claim(
        "The best learning rate grows about in proportion to B for small batches (the linear "
        "scaling rule) and levels off below the stability limit 2/λ_max for large ones",
        holds=bool(4 <= best_lr[at(8)] / best_lr[at(1)] <= 16 and best_lr[at(512)] < 2 * best_lr[at(128)]
                   and np.nanmax(best_lr) < 2.0 / P.lam_max),
        rate_b8_over_b1=demo.number(best_lr[at(8)] / best_lr[at(1)], "best learning rate at B = 8 over B = 1 (×)"),
        rate_b512_over_b128=demo.number(
            best_lr[at(512)] / best_lr[at(128)], "best learning rate at B = 512 over B = 128 (×)"),
    )
    demo.check(
        f"Real SGD runs agree with the exact expectation: the mean excess loss of {chains} runs at "
        f"B = {', '.join(map(str, sim_batches))} is within {SE_TOLERANCE:g} standard errors of it at the "
        "target step",
        holds=bool(sim_z < SE_TOLERANCE),
        largest_gap_in_standard_errors=sim_z,
    )
    demo.check(
        "ONNX Runtime reproduces the trained linear model",
        holds=bool(ort_diff < 1e-4),
        ort_max_abs_diff=ort_diff,
    )


# ---- helpers


def _batch_gradient_variance(G: np.ndarray, B: int, rng: np.random.Generator, min_batches: int) -> float:
    """Mean squared distance between a mini-batch gradient and the full gradient, over every batch
    of ``epochs`` shuffled passes (each batch drawn without replacement, as in epoch training)."""
    n = len(G)
    epochs = -(-min_batches * B // n)
    perms = rng.permuted(np.tile(np.arange(n), (epochs, 1)), axis=1)
    usable = (n // B) * B
    batches = G[perms[:, :usable]].reshape(epochs * (n // B), B, -1).mean(axis=1)
    dev = batches - G.mean(axis=0)
    return float(np.mean(np.sum(dev * dev, axis=1)))
