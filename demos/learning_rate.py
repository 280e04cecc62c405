"""Learning rate: the divergence threshold 2/λ_max predicted from the Hessian against the rate at
which training actually blows up, for least squares and for a small tanh network, and training
curves of the network with a too small, a good and a too large rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, nets, onnx_export, optim, plotting
from matplotlib.ticker import LogLocator

SIZES = (1, 24, 1)
N_WEIGHTS = 10  # weights of the least-squares problem
N_POINTS = 64  # training points of the network's regression task


@dataclass
class LeastSquaresSweep:
    """Gradient descent on least squares over learning rates, against the limit 2/λ_max."""

    lam_max: float
    lam_min: float
    limit: float  # predicted limit 2/λ_max
    wide: np.ndarray  # rates of the wide sweep, in units of the limit
    losses_wide: np.ndarray  # (steps + 1, rates)
    observed: float  # observed divergence threshold
    clean_split: bool  # every rate below it converged and every rate above it blew up
    best: float  # the rate with the lowest loss after `steps` steps
    best_theory: float


@dataclass
class Task:
    """The network's 1-D regression task and the flat-parameter tanh MLP that learns it."""

    X: np.ndarray
    y: np.ndarray
    stack: optim.MLPStack

    def loss_grad(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Training MSE and its gradient for each row of flat weights W."""
        return self.stack.loss_grad(W, self.X, self.y, "mse")


@dataclass
class NetworkSweep:
    """Full-batch gradient descent on the network over learning rates, same initial weights."""

    theta0: np.ndarray
    sharp0: float  # largest Hessian eigenvalue at the start
    limit: float  # 2 / sharp0
    rel: np.ndarray  # rates in units of the limit
    W: np.ndarray  # final weights, one row per rate
    losses: np.ndarray  # (steps + 1, rates)
    bad: np.ndarray  # diverged
    final: np.ndarray  # final losses


@dataclass
class Picks:
    """The runs the page shows: too small, good, above the start's limit, too large."""

    i_small: int
    i_good: int  # best rate below the initial limit
    i_best: int
    i_edge: int  # best rate above the initial limit that still trained (-1 if none)
    lr_edge: float
    sharp_edge: float  # largest Hessian eigenvalue at the end of the i_edge run
    edge_peak: float
    i_large: int  # first rate that diverged
    observed_rel: float  # the network's observed threshold, in units of the limit
    blowup_step: int


@dataclass
class Fits:
    """The good-rate network in ONNX Runtime, and what the network learned with every rate."""

    ort_diff: float
    ort_loss: float
    grid: np.ndarray
    preds: np.ndarray  # (grid points, rates) from ONNX Runtime; NaN where the run diverged


def run(demo) -> None:
    rng = demo.rng
    steps = int(demo.options.get("steps", 300))

    ls = sweep_least_squares(rng, steps)
    X, y = datasets.regression_1d(rng, N_POINTS, noise=0.05)
    task = Task(X, y, optim.MLPStack(SIZES, "tanh"))
    net = sweep_network(rng, task, steps)
    picks = pick_runs(rng, task, net, steps)
    fits = export_good(demo, task, net, picks)

    draw_sweep(demo, ls, net, steps)
    draw_mlp_curves(demo, net, picks, steps)
    draw_mlp_fits(demo, task, net, picks, fits, steps)
    measure(demo, ls, net, picks, fits, steps)
    claim_findings(demo, ls, net, picks, fits, steps)


def sweep_least_squares(rng, steps: int) -> LeastSquaresSweep:
    """Least squares with a known Hessian (eigenvalues 0.05 to 4, N_WEIGHTS weights) over learning rates."""
    P = optim.LeastSquares.from_spectrum(rng, 500, np.geomspace(0.05, 4.0, N_WEIGHTS), noise=0.3)
    lam_max, lam_min = P.lam_max, P.lam_min
    limit_ls = 2.0 / lam_max
    w0 = np.zeros(P.d)

    def ls_loss_grad(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return P.excess(W), P.grad(W)

    # A wide sweep, in units of the predicted limit, and a fine one around it.
    wide = np.geomspace(0.01, 1.6, 40)
    _, ls_wide = optim.minimize(optim.GD(wide * limit_ls), ls_loss_grad, np.tile(w0, (wide.size, 1)), steps)
    fine = np.linspace(0.95, 1.05, 101)
    _, ls_fine = optim.minimize(optim.GD(fine * limit_ls), ls_loss_grad, np.tile(w0, (fine.size, 1)), 600)
    # Diverging = still growing at the end: for a step above 2/λ_max the steepest direction grows
    # by |1 - ηλ_max| > 1 per step and ends up dominating the loss.
    growing = ~np.isfinite(ls_fine[-1]) | (ls_fine[-1] > ls_fine[-51])
    first_bad = int(np.argmax(growing))
    observed_ls = 0.5 * (fine[first_bad - 1] + fine[first_bad]) * limit_ls
    clean_split = bool(growing.any() and first_bad > 0 and growing[first_bad:].all() and not growing[:first_bad].any())
    ls_ratio = ls_wide[-1] / ls_wide[0]
    ls_ok = np.isfinite(ls_ratio) & (ls_ratio < 1)
    best_ls = float(wide[np.argmin(np.where(ls_ok, ls_ratio, np.inf))] * limit_ls)
    best_theory = 2.0 / (lam_min + lam_max)  # minimizes max_i |1 - η λ_i|
    return LeastSquaresSweep(lam_max, lam_min, limit_ls, wide, ls_wide, observed_ls, clean_split, best_ls,
                             best_theory)


def sweep_network(rng, task: Task, steps: int) -> NetworkSweep:
    """A small tanh network, full-batch gradient descent, rates in units of 2/λ_max at the start."""
    net0 = nets.init_mlp(rng, SIZES, activation="tanh")
    theta0 = task.stack.flatten(net0)
    sharp0 = optim.sharpness(lambda W: task.loss_grad(W)[1], theta0, rng, iters=40)
    limit_mlp = 2.0 / sharp0
    mlp_rel = np.geomspace(0.01, 4.0, 12)
    W_mlp, mlp_losses = optim.minimize(optim.GD(mlp_rel * limit_mlp), task.loss_grad,
                                       np.tile(theta0, (mlp_rel.size, 1)), steps)
    return NetworkSweep(theta0, sharp0, limit_mlp, mlp_rel, W_mlp, mlp_losses, optim.diverged(mlp_losses),
                        mlp_losses[-1])


def pick_runs(rng, task: Task, net: NetworkSweep, steps: int) -> Picks:
    """Pick the runs to show, and locate the network's own divergence threshold."""
    mlp_rel, bad, final, mlp_losses = net.rel, net.bad, net.final, net.losses
    i_best = int(np.argmin(np.where(bad, np.inf, final)))
    below = ~bad & (mlp_rel < 1.0)
    i_good = int(np.argmin(np.where(below, final, np.inf)))  # best rate below the initial limit
    i_small = 1  # 0.017 of the limit
    # A rate above the initial limit that still trained ("catapult"): its loss first jumps, and
    # it ends where the curvature is low enough for that rate.
    above = np.flatnonzero(~bad & (mlp_rel > 1.0))
    i_edge = int(above[np.argmin(final[above])]) if above.size else -1
    lr_edge = float(mlp_rel[i_edge] * net.limit) if above.size else float("nan")
    sharp_edge = optim.sharpness(lambda W: task.loss_grad(W)[1], net.W[i_edge], rng, iters=40) if above.size else 0.0
    edge_peak = float(mlp_losses[:, i_edge].max()) if above.size else 0.0
    # Locate the network's own threshold between the last rate that trained and the first that
    # did not, with a second, finer sweep.
    first_bad_mlp = int(np.argmax(bad[i_best:])) + i_best
    between = np.geomspace(mlp_rel[first_bad_mlp - 1], mlp_rel[first_bad_mlp], 7)[1:-1]
    _, mlp_between = optim.minimize(optim.GD(between * net.limit), task.loss_grad,
                                    np.tile(net.theta0, (between.size, 1)), steps)
    bad_between = optim.diverged(mlp_between)
    j = int(np.argmax(bad_between)) if bad_between.any() else between.size
    lo_rate = between[j - 1] if j > 0 else mlp_rel[first_bad_mlp - 1]
    hi_rate = between[j] if j < between.size else mlp_rel[first_bad_mlp]
    observed_mlp_rel = float(np.sqrt(lo_rate * hi_rate))
    i_large = first_bad_mlp
    blowup_step = optim.blowup_step(mlp_losses[:, i_large])
    return Picks(i_small, i_good, i_best, i_edge, lr_edge, sharp_edge, edge_peak, i_large, observed_mlp_rel,
                 blowup_step)


def export_good(demo, task: Task, net: NetworkSweep, picks: Picks) -> Fits:
    """ONNX: the network trained with the good rate; then what every rate that trained learned
    (those networks side by side in one graph)."""
    X, y = task.X, task.y
    good_net = task.stack.to_net(net.W[picks.i_good])
    sess = demo.onnx("mlp_good_rate", demo.make_model(onnx_export.export_mlp(good_net, name="mlp_good_rate")))
    pred = sess.run(None, {"x": X.astype(np.float32)})[0].astype(np.float64)
    ort_diff = float(np.max(np.abs(pred - nets.predict(good_net, X))))
    ort_loss = float(np.mean((pred[:, 0] - y) ** 2))
    grid = np.linspace(-1, 1, 200)[:, None]
    trained = np.flatnonzero(~net.bad)
    all_sess = demo.session(demo.make_model(onnx_export.export_mlps(
        [task.stack.to_net(net.W[i]) for i in trained], name="mlp_every_rate")))
    preds = np.full((grid.shape[0], net.rel.size), np.nan)
    preds[:, trained] = all_sess.run(None, {"x": grid.astype(np.float32)})[0]
    return Fits(ort_diff, ort_loss, grid, preds)


def draw_sweep(demo, ls: LeastSquaresSweep, net: NetworkSweep, steps: int) -> None:
    """Figure: final loss against the learning rate, least squares above, the network below."""
    wide, ls_wide, mlp_rel, mlp_losses = ls.wide, ls.losses_wide, net.rel, net.losses

    @demo.figure(
        "sweep",
        caption=f"Loss after {steps} steps of gradient descent against the learning rate, in units "
        "of the limit 2/λ_max computed from the Hessian at the start (× = diverged)",
        alt="Two log-log panels sharing the learning-rate axis. Top, least squares: the final "
        f"loss falls steeply as the rate grows, is lowest at {ls.best / ls.limit:.2g} times the limit "
        "(dashed line), and every rate above the limit diverged. Bottom, the network: the final loss "
        f"falls slowly with the rate, is lowest at {net.rel[int(np.argmin(np.where(net.bad, np.inf, net.final)))]:.2g} "
        f"times the limit, and the rates from about {net.rel[net.bad & (net.rel > 1)].min(initial=np.inf):.2g} "
        "times it on diverged.",
        size=(6.4, 5.6),
        notice="Least squares diverges right above the predicted limit; the network tolerates rates beyond it.",
    )
    def _(fig) -> None:
        upper, lower = fig.subplots(2, 1, sharex=True)
        panels = (
            (upper, wide, ls_wide, "C0", "least squares: f(w) − f(w*)", None),
            (lower, mlp_rel, mlp_losses, "C1", "network: training MSE", 0.05**2),
        )
        for ax, rel, losses, c, ylabel, floor in panels:
            ok = ~optim.diverged(losses)
            vals = losses[-1, ok]
            ax.plot(rel[ok], vals, "o-", color=c, ms=4)
            ax.plot(rel[~ok], np.full((~ok).sum(), vals.max() * 3), "x", color=c, ms=8, mew=2)
            ax.axvline(1.0, color="C7", ls="--", lw=1.2)
            if floor is not None:
                ax.axhline(floor, color="C7", ls=":", lw=1.2)
                ax.text(0.011, floor * 1.25, "noise variance", color="C7", fontsize="small")
            if ax is upper:
                plotting.plain_log_axis(ax.yaxis, LogLocator(numticks=5), fmt=plotting.exponent_label)
            else:
                plotting.plain_log_axis(ax.yaxis, [0.003, 0.01, 0.03, 0.1])
            ax.set_ylabel(ylabel)
        upper.set_title("Faster with larger steps, until it diverges")
        upper.text(0.9, float(ls_wide[-1, 0]), r"$2/\lambda_{\max}$", color="C7", fontsize="small",
                   ha="right", va="top")
        plotting.plain_log_axis(lower.xaxis, [0.01, 0.03, 0.1, 0.3, 1, 3])
        lower.set_xlabel(r"learning rate ÷ $(2/\lambda_{\max})$")


def draw_mlp_curves(demo, net: NetworkSweep, picks: Picks, steps: int) -> None:
    """Figure: the network's training loss with four learning rates."""
    mlp_rel, mlp_losses, limit_mlp = net.rel, net.losses, net.limit
    shown = [(picks.i_small, "C0", "too small"), (picks.i_good, "C2", "good")]
    if picks.i_edge >= 0:
        shown.append((picks.i_edge, "C3", "above the start's limit"))
    shown.append((picks.i_large, "C1", "too large"))

    @demo.figure(
        "mlp-curves",
        caption=f"Training loss of the tanh network with {len(shown)} learning rates (full-batch gradient "
        "descent, same initial weights)",
        alt="Log-scale chart of training loss against step. The too-small rate creeps down and "
        f"ends at {mlp_losses[-1, picks.i_small]:.3g}; the good rate falls quickly and ends at "
        f"{mlp_losses[-1, picks.i_good]:.3g}; " + (
            f"a rate above the limit computed at the start first jumps from {mlp_losses[0, picks.i_edge]:.3g} "
            f"to {picks.edge_peak:.3g}, then drops and ends at {mlp_losses[-1, picks.i_edge]:.3g}; "
            if picks.i_edge >= 0 else "") +
        f"the too-large rate passes its starting loss at step {picks.blowup_step} and leaves the chart.",
        notice="A rate above the starting limit first jumps up, then settles lower; the too-large one leaves the "
        "chart.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        k = np.arange(steps + 1)
        for i, c, word in shown:
            curve = mlp_losses[:, i]
            keep = np.isfinite(curve) & (curve < 1e3)
            ax.plot(k[keep], curve[keep], color=c, label=f"{word}: η = {mlp_rel[i] * limit_mlp:.3g}")
        ax.axhline(0.05**2, color="C7", ls=":", lw=1.2, label="noise variance")
        plotting.plain_log_axis(ax.yaxis, LogLocator(numticks=6), fmt=plotting.exponent_label)
        ax.set_ylim(1e-3, 1e3)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (MSE)")
        ax.set_title(f"{len(shown)} learning rates, same start")
        ax.legend(fontsize="small", loc="upper right")


def draw_mlp_fits(demo, task: Task, net: NetworkSweep, picks: Picks, fits: Fits, steps: int) -> None:
    """Figure with a slider over the learning rate: what the network learned in `steps` steps."""
    X, y, grid, rates = task.X, task.y, fits.grid[:, 0], net.rel * net.limit
    words = {int(i): "too large" for i in np.flatnonzero(net.bad)}
    words |= {picks.i_small: "too small", picks.i_good: "good", picks.i_edge: "above the start's limit"}
    lo, hi = y.min() - 0.3 * np.ptp(y), y.max() + 0.3 * np.ptp(y)  # fixed y range for every rate

    @demo.sweep(
        "mlp-fits", rates, label="learning rate η", fmt=".3g", default=picks.i_good,
        caption=f"What the tanh network learned in {steps} steps of full-batch gradient descent with "
        f"each of {rates.size} learning rates from the same initial weights (as run by ONNX Runtime)",
        alt=f"Scatter of {len(y)} noisy training points along an S-shaped curve that turns back down "
        "at both ends, with the network's fit. With the smallest rates the fit is a plain "
        "S-shaped curve that misses the bends; larger rates up to the good one bend with the data at "
        "both ends; the largest rates diverge and draw no curve",
        notice="Raise η: the fit first learns the S, then the bends at both ends, until the rate is "
        "so large that training diverges.",
        numbers=lambda i: [demo.number(net.final[i] if not net.bad[i] else "diverged",
                                       f"training loss after {steps} steps", ".4f"),
                           demo.number(net.rel[i], "rate ÷ the start's limit 2/λₘₐₓ", ".2g")],
    )
    def _(fig, i: int) -> None:
        ax = fig.subplots()
        ax.plot(grid, datasets.smooth_function(grid), "--", color="C7", lw=1.5, label="true curve")
        ax.plot(X[:, 0], y, "o", color="C7", ms=4, alpha=0.7, label="training data")
        if net.bad[i]:
            ax.text(0.27, 0.85, f"diverged: the loss rose\nabove its start at step "
                    f"{optim.blowup_step(net.losses[:, i])}", ha="center", va="center", color="C1",
                    transform=ax.transAxes)
        else:
            ax.plot(grid, np.clip(fits.preds[:, i], lo - 1, hi + 1), color="C2", label="network")
        ax.set(xlim=(-1, 1), ylim=(lo, hi), xlabel="x", ylabel="y")
        ax.set_title(f"η = {rates[i]:.3g}" + (f" ({words[i]})" if i in words else "") + f", {steps} steps")
        ax.legend(fontsize="small", loc="lower center", ncols=3)


def measure(demo, ls: LeastSquaresSweep, net: NetworkSweep, picks: Picks, fits: Fits, steps: int) -> None:
    """Record predicted and observed thresholds, the rates shown and their losses."""
    demo.key_numbers("limit_ls", "observed_ls", "limit_mlp", "observed_mlp", "loss_small", "loss_good")
    limit_ls, observed_ls, limit_mlp, mlp_rel, final = ls.limit, ls.observed, net.limit, net.rel, net.final
    i_small, i_good, i_edge, i_large = picks.i_small, picks.i_good, picks.i_edge, picks.i_large
    demo.setting("n_weights", N_WEIGHTS, label="Least squares: weights", fmt=".0f")
    demo.setting("steps", steps, label="Gradient-descent steps per run", fmt=".0f")
    demo.setting("n_points", N_POINTS, label="Network: training points", fmt=".0f")
    demo.metric("lambda_max", ls.lam_max, label="Least squares: largest Hessian eigenvalue", fmt=".3g")
    demo.metric("lambda_min", ls.lam_min, label="Least squares: smallest Hessian eigenvalue", fmt=".3g")
    demo.metric("limit_ls", limit_ls, label="Least squares: predicted limit 2/λₘₐₓ", fmt=".4g")
    demo.metric("observed_ls", observed_ls, label="Least squares: observed divergence threshold", fmt=".4g")
    demo.metric("ls_threshold_error", abs(observed_ls / limit_ls - 1), label="Least squares: relative gap", fmt=".1%")
    demo.metric("best_ls", ls.best, label=f"Least squares: lowest loss after {steps} steps at η", fmt=".3g")
    demo.metric("best_theory", ls.best_theory, label="Least squares: 2/(λₘᵢₙ + λₘₐₓ)", fmt=".3g")
    demo.metric("sharpness_init", net.sharp0, label="Network: largest Hessian eigenvalue at the start", fmt=".3g")
    demo.metric("limit_mlp", limit_mlp, label="Network: predicted limit 2/λₘₐₓ at the start", fmt=".3g")
    demo.metric("observed_mlp", picks.observed_rel * limit_mlp, label="Network: observed divergence threshold",
                fmt=".3g")
    demo.metric("observed_mlp_ratio", picks.observed_rel, label="Network: observed ÷ predicted threshold", fmt=".2f")
    demo.metric("lr_small", mlp_rel[i_small] * limit_mlp, label="Network: too-small rate", fmt=".3g")
    demo.metric("lr_good", mlp_rel[i_good] * limit_mlp, label="Network: best rate below the predicted limit", fmt=".3g")
    demo.metric("lr_edge", picks.lr_edge, label="Network: best rate above the predicted limit", fmt=".3g")
    demo.metric("lr_large", mlp_rel[i_large] * limit_mlp, label="Network: too-large rate", fmt=".3g")
    demo.metric("loss_small", final[i_small], label=f"Network: loss after {steps} steps, too-small rate", fmt=".4f")
    demo.metric("loss_good", final[i_good], label=f"Network: loss after {steps} steps, good rate", fmt=".4f")
    demo.metric("loss_edge", final[i_edge], label=f"Network: loss after {steps} steps, rate above the limit", fmt=".4f")
    demo.metric("edge_peak", picks.edge_peak, label="Network, rate above the limit: highest loss on the way",
                fmt=".3g")
    demo.metric("sharpness_edge_end", picks.sharp_edge, label="Network, rate above the limit: λₘₐₓ at the end",
                fmt=".3g")
    demo.metric("edge_stability_limit", 2.0 / picks.lr_edge, label="2/η for the rate above the limit", fmt=".3g")
    demo.metric("loss_start", net.losses[0, 0], label="Network: loss at the start", fmt=".4f")
    demo.metric("blowup_step", picks.blowup_step, label="Network, too-large rate: first step above the start",
                fmt=".0f")
    demo.metric("ort_train_loss", fits.ort_loss, label="Network, good rate: training MSE in ONNX Runtime", fmt=".4f")
    demo.metric("ort_max_abs_diff", fits.ort_diff, label="Max |ONNX Runtime − NumPy| prediction", fmt=".1e")


def claim_findings(demo, ls: LeastSquaresSweep, net: NetworkSweep, picks: Picks, fits: Fits, steps: int) -> None:
    """Findings and checks: exact threshold for least squares, near it for the network, catapults, too small, ORT."""
    limit_ls, observed_ls, mlp_rel, final = ls.limit, ls.observed, net.rel, net.final
    i_small, i_good, i_edge = picks.i_small, picks.i_good, picks.i_edge
    demo.check(
        "For least squares, training diverges exactly where the Hessian says: the observed "
        "threshold is within 0.5% of 2/λ_max, with every rate below it converging and every rate "
        "above it blowing up",
        holds=bool(ls.clean_split and abs(observed_ls / limit_ls - 1) < 0.005),
        predicted=limit_ls,
        observed=observed_ls,
    )
    demo.claim(
        "The best learning rate sits close to the edge: the lowest least-squares loss after "
        f"{steps} steps came from a rate between half the limit and the limit",
        holds=bool(0.5 * limit_ls <= ls.best < limit_ls),
        best_rate=demo.number(ls.best, "best learning rate"),
        limit=demo.number(limit_ls, "stability limit 2/L"),
    )
    demo.claim(
        "For the network, the curvature at the start predicts the threshold to within a factor "
        "of 2 (not exactly, because the curvature changes as the weights move)",
        holds=bool(0.5 <= picks.observed_rel <= 2.0),
        observed_over_predicted=demo.number(picks.observed_rel, "observed threshold over predicted"),
    )
    demo.claim(
        "A rate above the network's starting limit can still train, by moving to flatter ground: "
        "its loss first jumps up, and at the end the largest Hessian eigenvalue is below 2/η, "
        "though it started above",
        holds=bool(i_edge >= 0 and picks.edge_peak > net.losses[0, i_edge]
                   and picks.sharp_edge < 2.0 / picks.lr_edge < net.sharp0),
        highest_loss=demo.number(picks.edge_peak, "highest loss on the way"),
        start_loss=demo.number(net.losses[0, 0], "starting loss"),
        sharpness_start=demo.number(net.sharp0, "sharpness at the start"),
        sharpness_end=demo.number(picks.sharp_edge, "sharpness at the end"),
        two_over_eta=demo.number(2.0 / picks.lr_edge, "2 / learning rate"),
    )
    demo.claim(
        f"A rate {mlp_rel[i_good] / mlp_rel[i_small]:.0f}× below the good one leaves the network far "
        f"behind: after {steps} steps its loss is more than 1.5× as high",
        holds=bool(final[i_small] > 1.5 * final[i_good]),
        loss_too_small=demo.number(final[i_small], "final loss at the too-small rate"),
        loss_good=final[i_good],
    )
    demo.check(
        "ONNX Runtime reproduces the trained network",
        holds=bool(fits.ort_diff < 1e-4),
        ort_max_abs_diff=fits.ort_diff,
    )
