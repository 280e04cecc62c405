"""Gradient descent on a two-weight least-squares problem: full-batch paths, their linear rate
against the Hessian's eigenvalues, and constant-step SGD hovering at its noise floor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import linear, onnx_export, optim, plotting
from matplotlib.ticker import LogLocator

BEST = "2/(μ+L)"  # the step size with the fastest predicted rate
N_EXAMPLES = 200
EIGVALS = (0.5, 5.0)  # the Hessian's eigenvalues μ and L (κ = 10)
TILT = np.pi / 6  # angle of the valley's axis
SGD_SHOWN = 300  # SGD steps drawn over the contours
SPREAD_WINDOW = 500  # last steps of one SGD run over which its max/min excess is taken
TARGET_FACTOR = 2.0  # "near the optimum": within this factor of the SGD floor
COLORS = {"0.5/L": "C0", "1/L": "C4", "2/(μ+L)": "C2"}


@dataclass
class Sgd:
    """Constant-step SGD (`chains` runs side by side) and a decaying-step variant."""

    path: np.ndarray  # (steps + 1, chains, 2)
    mean: np.ndarray  # mean excess loss over the chains, per step
    one_chain: np.ndarray  # excess loss of the first chain
    decay_mean: np.ndarray  # mean excess loss with the decaying step
    floor_theory: float
    floor_measured: float
    chain_spread: float
    decay_final: float


@dataclass
class Surface:
    """The loss on a grid around the path, as computed by ONNX Runtime."""

    g1: np.ndarray
    g2: np.ndarray
    Z: np.ndarray
    rel_diff: float  # max relative |ORT - NumPy|


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    gd_steps = int(opts.get("gd_steps", 60))
    sgd_steps = int(opts.get("sgd_steps", 1500))
    chains = int(opts.get("chains", 100))
    sgd_lr = float(opts.get("sgd_lr", 0.05))

    P = make_problem(rng)
    w0, excess0 = start_point(P)
    gd = run_gd(P, w0, gd_steps)
    sgd = run_sgd(rng, P, w0, sgd_steps, chains, sgd_lr)
    gd_final = float(gd[BEST]["excess"][-1])
    sgd_examples, gd_examples = work_to_target(P, sgd, gd[BEST])
    surface = loss_surface(demo, P, w0)
    ort_diff, ort_train_loss = export_trained(demo, P, gd[BEST]["path"][-1])

    draw_paths(demo, P, w0, excess0, gd, sgd, surface, sgd_lr)
    draw_gd_rates(demo, gd, excess0, gd_steps)
    draw_sgd_floor(demo, P, gd, sgd, excess0, gd_final, sgd_lr, sgd_steps, gd_steps, chains)
    measure(demo, P, gd, sgd, excess0, gd_final, sgd_examples, gd_examples, surface.rel_diff,
            ort_train_loss, ort_diff, gd_steps, sgd_lr)
    claim_findings(demo, gd, sgd, sgd_examples, gd_examples, surface.rel_diff, ort_diff, gd_steps)


def make_problem(rng) -> optim.LeastSquares:
    """N_EXAMPLES examples, two correlated features; the Hessian has eigenvalues EIGVALS."""
    return optim.LeastSquares.from_spectrum(rng, N_EXAMPLES, list(EIGVALS), noise=0.5, w_true=[1.5, -1.0],
                                            basis=optim.rotation(TILT))


def start_point(P: optim.LeastSquares) -> tuple[np.ndarray, float]:
    """Start far out along the shallow valley and a little up its steep side."""
    q = optim.rotation(TILT)  # columns: eigenvectors of μ (the valley) and of L
    w0 = P.w_star + 3.2 * q[:, 0] + 0.9 * q[:, 1]
    return w0, float(P.excess(w0))


def run_gd(P: optim.LeastSquares, w0: np.ndarray, gd_steps: int) -> dict[str, dict]:
    """Full-batch gradient descent at three step sizes below 2/L, each against its predicted rate."""
    mu, L = P.lam_min, P.lam_max
    factors = {"0.5/L": 0.5, "1/L": 1.0, "2/(μ+L)": 2.0 / (1.0 + mu / L)}
    gd = {}
    for label, f in factors.items():
        lr = f / L
        path = optim.trajectory(optim.GD(lr), P.grad, w0, gd_steps)
        err = np.linalg.norm(path - P.w_star, axis=1)
        gd[label] = {
            "lr": lr,
            "path": path,
            "excess": P.excess(path),
            "rate": optim.linear_rate(err, 20),
            "theory": float(P.gd_rate(lr)),
            "bound_ok": bool(np.all(err <= P.gd_rate(lr) ** np.arange(gd_steps + 1) * err[0] * (1 + 1e-9))),
            "increases": int(np.sum(np.diff(P.excess(path)) >= 0)),
        }
    return gd


def run_sgd(rng, P: optim.LeastSquares, w0: np.ndarray, sgd_steps: int, chains: int, sgd_lr: float) -> Sgd:
    """SGD with one random example per step, `chains` independent runs; constant and decaying step."""
    mu = P.lam_min
    W0 = np.tile(w0, (chains, 1))
    sgd_path = optim.trajectory(optim.GD(sgd_lr), P.sgd_grad(rng, 1), W0, sgd_steps)
    sgd_excess = P.excess(sgd_path)  # (steps + 1, chains)
    sgd_mean = sgd_excess.mean(axis=1)
    t0 = 2.0 / (sgd_lr * mu)  # decaying step η_t = η0 / (1 + t / t0): Σ η_t = ∞, Σ η_t² < ∞

    decay = optim.GD(sgd_lr, schedule=lambda t: 1.0 / (1.0 + (t - 1) / t0))
    decay_mean = P.excess(optim.trajectory(decay, P.sgd_grad(rng, 1), W0, sgd_steps)).mean(axis=1)
    settled = sgd_steps // 3
    one_chain = sgd_excess[:, 0]
    last = one_chain[-SPREAD_WINDOW:]
    return Sgd(
        path=sgd_path,
        mean=sgd_mean,
        one_chain=one_chain,
        decay_mean=decay_mean,
        floor_theory=optim.sgd_stationary_excess(P, sgd_lr, 1),
        floor_measured=float(sgd_excess[settled:].mean()),
        chain_spread=float(last.max() / last.min()),
        decay_final=float(decay_mean[-100:].mean()),
    )


def work_to_target(P: optim.LeastSquares, sgd: Sgd, best: dict) -> tuple[int, int]:
    """Work to come within TARGET_FACTOR times the SGD floor, counted in single-example gradients."""
    target = TARGET_FACTOR * sgd.floor_theory
    sgd_examples = _first_below(sgd.mean, target)
    gd_examples = _first_below(best["excess"], target) * P.n
    return sgd_examples, gd_examples


def loss_surface(demo, P: optim.LeastSquares, w0: np.ndarray) -> Surface:
    """ONNX: the loss surface (weights in, loss out) on the grid that draws the contours."""
    surface = demo.onnx("loss_surface", demo.make_model(optim.export_loss_surface(P)))
    center = (w0 + P.w_star) / 2
    half = 0.5 * float(np.max(np.abs(w0 - P.w_star))) + 0.8
    g1, g2 = np.meshgrid(np.linspace(-half, half, 80) + center[0], np.linspace(-half, half, 80) + center[1])
    grid = np.column_stack([g1.ravel(), g2.ravel()])
    surface_ort = surface.run(None, {"x": grid.astype(np.float32)})[0].astype(np.float64)
    surface_rel_diff = float(np.max(np.abs(surface_ort - P.loss(grid)) / P.loss(grid)))
    return Surface(g1, g2, surface_ort.reshape(g1.shape), surface_rel_diff)


def export_trained(demo, P: optim.LeastSquares, w_fit: np.ndarray) -> tuple[float, float]:
    """ONNX: the linear model gradient descent trained; its agreement with NumPy and its loss."""
    model = demo.onnx("linear_model", demo.make_model(
        onnx_export.export_linear(linear.LinearModel(w_fit, 0.0), name="gd_trained_linear")))
    pred = model.run(None, {"x": P.X.astype(np.float32)})[0].astype(np.float64)
    ort_diff = float(np.max(np.abs(pred - P.X @ w_fit)))
    ort_train_loss = float(np.mean((pred - P.y) ** 2) / 2)
    return ort_diff, ort_train_loss


def draw_paths(demo, P, w0, excess0, gd, sgd: Sgd, surface: Surface, sgd_lr: float) -> None:
    """Figure: gradient-descent and SGD paths over the loss contours."""
    g1, g2, Z = surface.g1, surface.g2, surface.Z

    @demo.figure(
        "paths",
        caption="Full-batch gradient descent at two step sizes and SGD with one example per step "
        f"(η = {sgd_lr:g}, first {SGD_SHOWN} steps) over the contours of the loss",
        alt=f"Elliptical loss contours tilted by {np.degrees(TILT):.0f} degrees, minimum marked by a "
        "star, start at the upper right. With the small step, gradient descent curves smoothly down the valley; with "
        "the large step it zigzags across the valley while moving along it. The SGD path follows "
        "the valley along a jagged line and then wanders around the minimum.",
        size=(6.0, 4.6),
        notice="The large step zigzags across the valley; SGD follows it on a jagged line and wanders at the bottom.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        levels = P.loss_star + excess0 * np.array([0.002, 0.01, 0.04, 0.12, 0.3, 0.6, 1.0])
        ax.contour(g1, g2, Z, levels=levels, colors="C7", linewidths=0.8)
        sgd_show = sgd.path[:SGD_SHOWN + 1, 0]
        ax.plot(sgd_show[:, 0], sgd_show[:, 1], color="C3", lw=1.0, label="SGD, 1 example per step")
        for label, c in (("0.5/L", "C0"), ("2/(μ+L)", "C2")):
            p = gd[label]["path"][:30]
            ax.plot(p[:, 0], p[:, 1], "o-", color=c, ms=3.5, lw=1.4, label=f"gradient descent, η = {label}")
        ax.plot(*w0, "s", color="C7", ms=7, label="start")
        ax.plot(*P.w_star, "*", color="C1", ms=15, zorder=5, label="minimum w*")
        ax.set_aspect("equal")
        ax.set_xlim(g1.min(), g1.max())
        ax.set_ylim(g2.min(), g2.max())
        ax.set_xlabel("weight w₁")
        ax.set_ylabel("weight w₂")
        ax.set_title("Paths to the minimum")
        ax.legend(loc="upper left", fontsize="small")


def draw_gd_rates(demo, gd, excess0: float, gd_steps: int) -> None:
    """Figure: excess loss of full-batch GD at each step size against its predicted bound."""

    @demo.figure(
        "gd-rates",
        caption="Excess loss f(w) − f(w*) of full-batch gradient descent at three step sizes "
        "(solid) and the bound ρ²ᵏ from the Hessian's eigenvalues (dashed)",
        alt="Log-scale chart of excess loss against step. Three straight descending lines, one per "
        "step size; each runs along or just under its dashed theoretical line. The largest step, "
        "2/(μ+L), falls fastest.",
        notice="Each step size falls along its predicted straight line on the log scale.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        k = np.arange(gd_steps + 1)
        for label, run_ in gd.items():
            c = COLORS[label]
            ax.plot(k, run_["excess"], color=c, label=f"η = {label}: ρ = {run_['theory']:.3f}")
            ax.plot(k, excess0 * run_["theory"] ** (2 * k), "--", color=c, lw=1.2)
        plotting.plain_log_axis(ax.yaxis, LogLocator(numticks=6), fmt=plotting.exponent_label)
        ax.set_xlabel("step k")
        ax.set_ylabel("f(w) − f(w*)")
        ax.set_title("Straight lines on a log scale: linear convergence")
        ax.legend(fontsize="small", loc="lower left")


def draw_sgd_floor(demo, P, gd, sgd: Sgd, excess0, gd_final, sgd_lr, sgd_steps, gd_steps, chains) -> None:
    """Figure: constant-step SGD, decaying-step SGD and full-batch GD by examples processed."""
    best = gd[BEST]

    @demo.figure(
        "sgd-floor",
        caption=f"SGD at a constant step (η = {sgd_lr:g}, one example per step) against a decaying "
        "step and full-batch gradient descent, by the number of single-example gradients computed",
        alt="Log-log chart of excess loss against examples processed. SGD drops fast at first, "
        "then levels off at the predicted noise floor, with a single run jumping up and down "
        "around it. SGD with a decaying step keeps going down. Full-batch gradient descent needs "
        f"{P.n} examples per step, starts later but falls steeply.",
        notice="Constant-step SGD levels off at its noise floor; the decaying step keeps going down.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        k = np.arange(1, sgd_steps + 1)  # step k has used k examples (the start is off the log axis)
        ax.plot(k, sgd.one_chain[1:], color="C3", lw=0.7, alpha=0.45, label="SGD, one run")
        ax.plot(k, sgd.mean[1:], color="C3", lw=2, label=f"SGD, mean of {chains} runs")
        ax.plot(k, sgd.decay_mean[1:], color="C4", lw=2, label="SGD, decaying step (mean)")
        ax.plot(np.arange(1, gd_steps + 1) * P.n, best["excess"][1:], "o-", color="C2", ms=3,
                label="full-batch GD, η = 2/(μ+L)")
        ax.axhline(sgd.floor_theory, color="C7", ls="--", lw=1.2, label="predicted SGD floor")
        plotting.plain_log_axis(ax.xaxis, [1, 10, 100, 1000, 10000], fmt="{:,.0f}")
        plotting.plain_log_axis(ax.yaxis, LogLocator(numticks=6), fmt=plotting.exponent_label)
        ax.set_ylim(max(1e-7, gd_final), excess0 * 3)
        ax.set_xlabel("single-example gradients computed")
        ax.set_ylabel("f(w) − f(w*)")
        ax.set_title("Constant-step SGD stalls at a noise floor")
        ax.legend(fontsize="small", loc="lower left")


def measure(demo, P, gd, sgd: Sgd, excess0, gd_final, sgd_examples, gd_examples, surface_rel_diff,
            ort_train_loss, ort_diff, gd_steps, sgd_lr) -> None:
    """Record the spectrum, measured and predicted rates, the SGD floor and the ORT checks."""
    demo.key_numbers(
        "condition_number", "rate_measured_best", "sgd_floor_measured",
        "decay_final_excess", "sgd_examples_to_target", "gd_examples_to_target")
    mu, L = P.lam_min, P.lam_max
    demo.setting("n_examples", P.n, label="Training examples", fmt=".0f")
    demo.setting("gd_steps", gd_steps, label="Full-batch gradient-descent steps", fmt=".0f")
    demo.setting("target_factor", TARGET_FACTOR, label="'Near the optimum': within this factor of the SGD floor",
                 fmt="g", unit="×")
    demo.metric("lambda_min", mu, label="Smallest Hessian eigenvalue μ", fmt=".3g")
    demo.metric("lambda_max", L, label="Largest Hessian eigenvalue L", fmt=".3g")
    demo.metric("condition_number", L / mu, label="Condition number L/μ", fmt=".3g")
    for key, label in (("half", "0.5/L"), ("one", "1/L"), ("best", "2/(μ+L)")):
        demo.metric(f"lr_{key}", gd[label]["lr"], label=f"Step η = {label}", fmt=".3g")
        demo.metric(f"rate_theory_{key}", gd[label]["theory"], label=f"Predicted rate ρ at η = {label}", fmt=".4f")
        demo.metric(f"rate_measured_{key}", gd[label]["rate"], label=f"Measured rate at η = {label}", fmt=".4f")
    demo.metric("gd_final_excess", gd_final, label=f"GD excess loss after {gd_steps} steps, η = 2/(μ+L)", fmt=".1e")
    demo.setting("sgd_lr", sgd_lr, label="SGD step size", fmt="g")
    demo.metric("sgd_floor_theory", sgd.floor_theory, label="Predicted SGD floor (excess loss)", fmt=".3g")
    demo.metric("sgd_floor_measured", sgd.floor_measured, label="Measured SGD floor (mean excess loss)", fmt=".3g")
    demo.metric("sgd_chain_spread", sgd.chain_spread,
                label=f"One SGD run, max/min excess in its last {SPREAD_WINDOW} steps",
                fmt=".0f", unit="×")
    demo.metric("decay_final_excess", sgd.decay_final, label="Decaying-step SGD, final excess loss", fmt=".2g")
    demo.metric("sgd_examples_to_target", sgd_examples,
                label=f"Examples SGD needed to get within {TARGET_FACTOR:g}× its floor",
                fmt=",.0f")
    demo.metric("gd_examples_to_target", gd_examples, label="Examples full-batch GD needed for the same", fmt=",.0f")
    demo.metric("initial_excess", excess0, label="Excess loss at the start", fmt=".3g")
    demo.metric("surface_max_rel_diff", surface_rel_diff, label="Max relative |ONNX Runtime − NumPy| loss surface",
                fmt=".1e")
    demo.metric("ort_train_loss", ort_train_loss, label="Training loss of the trained model in ONNX Runtime", fmt=".4f")
    demo.metric("loss_star", P.loss_star, label="Minimum training loss f(w*)", fmt=".4f")
    demo.metric("ort_max_abs_diff", ort_diff, label="Max |ONNX Runtime − NumPy| prediction", fmt=".1e")


def claim_findings(demo, gd, sgd: Sgd, sgd_examples, gd_examples, surface_rel_diff, ort_diff, gd_steps) -> None:
    """Claims: monotone GD at the predicted rate; SGD's floor, its decaying fix, its cheapness; ORT."""
    demo.check(
        "With a step below 2/L, full-batch gradient descent lowers the loss at every step, for "
        "all three step sizes",
        holds=all(r["increases"] == 0 for r in gd.values()),
        steps=gd_steps,
        increases=sum(r["increases"] for r in gd.values()),
    )
    demo.check(
        "The measured linear rate equals the rate ρ = max|1 − ηλᵢ| predicted from the Hessian's "
        "eigenvalues (within 0.1%), and ‖w − w*‖ ≤ ρᵏ‖w₀ − w*‖ holds at every step",
        holds=all(abs(r["rate"] / r["theory"] - 1) < 1e-3 and r["bound_ok"] for r in gd.values()),
        **{f"rho_{k}": f"{r['rate']:.4f} vs {r['theory']:.4f}" for k, r in zip(("half", "one", "best"), gd.values(),
                                                                             strict=True)},
    )
    demo.claim(
        "At a constant step SGD stops improving at a noise floor: its mean excess loss matches "
        "the floor predicted for this data within 10%, and a single run keeps fluctuating",
        holds=bool(abs(sgd.floor_measured / sgd.floor_theory - 1) < 0.1 and sgd.chain_spread > 10),
        floor_measured=demo.number(sgd.floor_measured, "measured noise floor"),
        floor_theory=demo.number(sgd.floor_theory, "predicted noise floor"),
        single_run_max_over_min=demo.number(sgd.chain_spread, "spread of a single run's excess loss (max / min)"),
    )
    demo.claim(
        "A decaying step (Robbins–Monro) goes below the constant-step floor, by more than 5×",
        holds=bool(sgd.decay_final < sgd.floor_measured / 5),
        decaying_final=demo.number(sgd.decay_final, "final excess loss, decaying step"),
        constant_floor=demo.number(sgd.floor_measured, "constant-step floor"),
    )
    demo.claim(
        f"SGD gets near the optimum with far less work: it came within {TARGET_FACTOR:g}× its floor "
        "after fewer single-example gradients than full-batch GD needed",
        holds=bool(sgd_examples < gd_examples),
        sgd_examples=demo.number(sgd_examples, "examples SGD used"),
        gd_examples=demo.number(gd_examples, "examples gradient descent used"),
    )
    demo.check(
        "ONNX Runtime's loss surface and predictions agree with NumPy",
        holds=bool(surface_rel_diff < 1e-5 and ort_diff < 1e-4),
        surface_max_rel_diff=surface_rel_diff,
        ort_max_abs_diff=ort_diff,
    )


def _first_below(values: np.ndarray, level: float) -> int:
    """Index of the first entry below ``level`` (``len(values)`` if none)."""
    below = np.flatnonzero(values < level)
    return int(below[0]) if below.size else len(values)
