"""Grid search versus random search when only one of two hyperparameters matters."""

from __future__ import annotations

import numpy as np
from demolib import datasets, plotting, ridge_paths
from matplotlib import rcParams

LOG_LAMBDAS = np.linspace(-9.0, 1.0, 81)  # λ from 1e-9 to 10 in steps of 1/8 decade
N_FEATURES = np.arange(20, 61, 4)  # 20, 24, ..., 60 Gaussian-bump features
WIDTH = 0.1
GOOD = 0.05  # "good" = validation MSE within 5% of the best setting in the whole search space


def _van_der_corput(n: int) -> np.ndarray:
    """The first ``n`` points of the base-2 van der Corput sequence in [0, 1): any prefix of
    it is spread evenly, so the first ``m`` centres make a sensible ``m``-feature model."""
    out = np.zeros(n)
    for i in range(n):
        k, step = i, 0.5
        while k:
            out[i] += step * (k & 1)
            k >>= 1
            step /= 2
    return out


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    repeats = int(opts.get("repeats", 1000))
    max_trials = 64

    # The objective: validation MSE of ridge regression on m Gaussian-bump features, as a function
    # of (λ, m). 60 training and 300 validation points from a noisy smooth curve.
    X, y = datasets.regression_1d(rng, 60, noise=0.3)
    X_val, y_val = datasets.regression_1d(rng, 300, noise=0.3)
    centers = 2.0 * _van_der_corput(64)[: N_FEATURES.max()] - 1.0 + 1.0 / 64
    feats = ridge_paths.rbf_features(X, centers, WIDTH)
    lambdas = 10.0**LOG_LAMBDAS
    coefs, intercepts = [], []
    for m in N_FEATURES:  # model (m, λ) uses the first m centres; pad the rest with zeros
        c, b = ridge_paths.ridge_path(feats[:, :m], y, lambdas)
        coefs.append(np.pad(c, ((0, 0), (0, N_FEATURES.max() - m))))
        intercepts.append(b)
    coefs_all, intercepts_all = np.vstack(coefs), np.concatenate(intercepts)

    # Every (m, λ) model in one ONNX graph: column a * L + j is the model with N_FEATURES[a] and
    # lambdas[j]. ONNX Runtime computes all validation predictions in one run.
    graph = ridge_paths.export_linear_sweep(coefs_all, intercepts_all, rbf=(centers, WIDTH),
                                            name="ridge_search_space")
    sess = demo.onnx("ridge_search_space", demo.make_model(graph))
    pred_val = sess.run(None, {"x": X_val.astype(np.float32)})[0].astype(np.float64)
    table = np.mean((pred_val - y_val[:, None]) ** 2, axis=0).reshape(len(N_FEATURES), -1)
    numpy_val = ridge_paths.rbf_features(X_val, centers, WIDTH) @ coefs_all.T + intercepts_all
    ort_diff = float(np.max(np.abs(pred_val - numpy_val)))
    best = float(table.min())
    excess = table / best - 1.0  # relative excess over the best setting

    # How much each hyperparameter matters: spread of the best reachable score along each axis.
    spread_m = float(table.min(axis=1).max() / best - 1.0)  # best over λ, worst m
    spread_lam = float(table.min(axis=0).max() / best - 1.0)  # best over m, worst λ

    def lookup(log_lam: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Excess at (log λ, m), snapped to the 1/8-decade λ grid and the m grid."""
        j = np.clip(np.rint((log_lam - LOG_LAMBDAS[0]) * 8).astype(int), 0, len(LOG_LAMBDAS) - 1)
        a = np.clip(np.rint((m - N_FEATURES[0]) / 4).astype(int), 0, len(N_FEATURES) - 1)
        return excess[a, j]

    # Grid search: g values per axis, evenly spaced and including both ends; g^2 trials.
    grid_sizes = np.arange(2, 9)
    grid_best = []
    for g in grid_sizes:
        lg, mg = np.meshgrid(np.linspace(-9.0, 1.0, g), np.linspace(20.0, 60.0, g))
        grid_best.append(float(lookup(lg.ravel(), mg.ravel()).min()))
    grid_best = np.array(grid_best)
    grid_budgets = grid_sizes**2
    grid_good = grid_best <= GOOD
    grid_trials_needed = int(grid_budgets[np.argmax(grid_good)]) if grid_good.any() else None

    # Random search: log λ uniform on [-9, 1], m uniform on the grid, repeated many times.
    r_log_lam = rng.uniform(-9.0, 1.0, size=(repeats, max_trials))
    r_m = rng.choice(N_FEATURES, size=(repeats, max_trials))
    r_excess = lookup(r_log_lam, r_m)
    r_best_so_far = np.minimum.accumulate(r_excess, axis=1)
    hit = r_excess <= GOOD
    first_hit = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, max_trials + 1)
    random_median_trials = float(np.median(first_hit))
    p_good_per_trial = float(np.mean(hit))
    budget = 9
    random_good_at_9 = float(np.mean(r_best_so_far[:, budget - 1] <= GOOD))
    grid_3x3 = float(grid_best[grid_sizes == 3][0])
    random_beats_grid_9 = float(np.mean(r_best_so_far[:, budget - 1] < grid_3x3))
    trials = np.arange(1, max_trials + 1)
    q25, q50, q75 = np.quantile(r_best_so_far, [0.25, 0.5, 0.75], axis=0)

    # One example of each search with 9 trials, for the pictures.
    ex_grid_l, ex_grid_m = (v.ravel() for v in np.meshgrid(np.linspace(-9.0, 1.0, 3),
                                                           np.linspace(20.0, 60.0, 3)))
    ex_rand_l, ex_rand_m = r_log_lam[0, :budget], r_m[0, :budget]

    # ---- figures (draw only)
    def lam_axis(ax) -> None:
        # the axis holds log10 λ (a linear axis): label each exponent as the power of ten
        plotting.plain_ticks(ax.xaxis, np.arange(-8, 2, 2), fmt=lambda v: f"1e{round(v)}")
        ax.set_xlabel("penalty λ (log scale)")

    @demo.figure(
        "search-space",
        caption="Validation error over the two hyperparameters, with 9 trials of grid search "
        "(squares) and 9 of random search (dots, one of the repeats)",
        alt="Heat map with λ on a log horizontal axis and the number of features vertically. "
        "A band of low error around λ = 0.01 to 0.1 runs from bottom to top, so there the number "
        "of features hardly matters; it matters only at tiny λ, where every setting is poor. The "
        "3 × 3 grid covers only three λ values, none in the band; the nine random trials fall at "
        "nine different λ values.",
        size=(6.4, 4.2),
    )
    def _(fig) -> None:
        ax = fig.subplots()
        half = (LOG_LAMBDAS[1] - LOG_LAMBDAS[0]) / 2
        im = ax.imshow(np.log10(table), origin="lower", aspect="auto", cmap="viridis_r",
                       extent=(LOG_LAMBDAS[0] - half, LOG_LAMBDAS[-1] + half, 18, 62),
                       interpolation="nearest")
        edge = rcParams["text.color"]
        ax.scatter(ex_grid_l, ex_grid_m, marker="s", s=70, c="C3", edgecolors=edge,
                   linewidths=1.0, label="grid (3 × 3)", clip_on=False, zorder=3)
        ax.scatter(ex_rand_l, ex_rand_m, marker="o", s=55, c="C1", edgecolors=edge,
                   linewidths=1.0, label="random (9)", zorder=3)
        lam_axis(ax)
        ax.set_ylabel("number of features m")
        ax.set_title("Validation error: only λ matters much")
        ax.grid(False)
        cbar = fig.colorbar(im, ax=ax, label="validation MSE")
        ticks = [v for v in (0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
                 if table.min() <= v <= table.max()]
        cbar.set_ticks(np.log10(ticks), labels=[f"{v:g}" for v in ticks])
        cbar.minorticks_off()
        fig.legend(loc="outside lower center", ncols=2)

    @demo.figure(
        "projection",
        caption="Validation error against λ for every number of features m (the curves nearly "
        "coincide); the ticks below show which λ values each 9-trial search tried",
        alt="Eleven almost identical U-shaped curves of validation error against log λ, lowest "
        "near λ = 0.03. Under the axis, one row of ticks shows the grid search's three λ values, "
        "far from the minimum; a second row shows random search's nine different λ values.",
        size=(6.4, 4.0),
    )
    def _(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[4, 1])
        for a in range(len(N_FEATURES)):
            top.plot(LOG_LAMBDAS, table[a], color="C0", lw=1.0, alpha=0.6,
                     label="one curve per m (20 … 60)" if a == 0 else None)
        top.axhspan(best, best * (1 + GOOD), color="C2", alpha=0.25, lw=0,
                    label=f"within {GOOD:.0%} of best")
        yt = [v for v in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0) if table.min() / 1.2 <= v <= table.max()]
        plotting.plain_log_axis(top.yaxis, yt)
        top.set_ylabel("validation MSE")
        top.set_title("Projected onto λ: 3 distinct values vs 9")
        top.legend(loc="upper center")
        bottom.plot(np.unique(ex_grid_l), np.full(3, 1.0), "s", color="C3", ms=8)
        bottom.plot(ex_rand_l, np.zeros(budget), "o", color="C1", ms=7)
        bottom.set_yticks([0, 1], ["random", "grid"])
        bottom.set_ylim(-0.6, 1.6)
        bottom.grid(axis="y", visible=False)
        lam_axis(bottom)

    @demo.figure(
        "best-so-far",
        caption=f"Best validation error found so far against the number of trials: random search "
        f"(median and interquartile range over {repeats} repeats) and g × g grids",
        alt="Log-scale chart of excess validation error over the best setting against the number "
        "of trials. The random-search median falls quickly and crosses the 5% line within about "
        "ten trials; the grid results, one point per grid size, stay far above it for small grids.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        floor = 1e-3  # an excess of exactly 0 cannot be drawn on a log axis
        ax.fill_between(trials, np.maximum(q25, floor), np.maximum(q75, floor), color="C1",
                        alpha=0.25, lw=0, label="random: middle 50%")
        ax.plot(trials, np.maximum(q50, floor), color="C1", label="random: median")
        ax.plot(grid_budgets, np.maximum(grid_best, floor), "s-", color="C3", ms=7,
                label="grid g × g")
        ax.axhline(GOOD, color="C2", ls="--", lw=1.2, label=f"good: within {GOOD:.0%}")
        plotting.plain_log_axis(ax.yaxis, fmt=lambda v: f"{v:.0%}" if v >= 0.01 else f"{v:.1%}")
        ax.set_xlabel("number of trials")
        ax.set_ylabel("best so far: excess over optimum")
        ax.set_xlim(0, max_trials + 1)
        ax.set_title("Random search gets good sooner")
        ax.legend(loc="upper right")

    # ---- metrics and claims
    demo.metric("best_val_mse", best, label="Best validation MSE in the search space", fmt=".4f")
    demo.metric("spread_over_lambda", spread_lam,
                label="Worst λ (best m) vs optimum: excess validation MSE", fmt=".0%")
    demo.metric("spread_over_m", spread_m,
                label="Worst m (best λ) vs optimum: excess validation MSE", fmt=".1%")
    demo.metric("p_good_per_trial", p_good_per_trial,
                label="Chance that one random trial is good", fmt=".1%")
    demo.metric("random_median_trials", random_median_trials,
                label="Random search: median trials to a good setting", fmt=".0f")
    demo.metric("grid_trials_needed", grid_trials_needed or 0,
                label="Grid search: trials of the first g × g grid with a good setting", fmt=".0f")
    demo.metric("random_good_at_9", random_good_at_9,
                label="Random search with 9 trials: share of repeats that find a good setting",
                fmt=".0%")
    demo.metric("grid_excess_at_9", grid_3x3, label="3 × 3 grid: excess of its best setting",
                fmt=".0%")
    demo.metric("random_beats_grid_9", random_beats_grid_9,
                label="Share of repeats where 9 random trials beat the 3 × 3 grid", fmt=".0%")
    demo.metric("repeats", repeats, label="Random-search repeats", fmt=".0f")
    demo.metric("ort_max_abs_diff", ort_diff, label="Max |ONNX Runtime − NumPy| prediction",
                fmt=".1e")

    demo.claim(
        "Only λ matters much: the best reachable error varies far more across λ than across m",
        holds=bool(spread_lam > 10 * spread_m),
        excess_worst_lambda=spread_lam,
        excess_worst_m=spread_m,
    )
    demo.claim(
        "Random search reaches a good setting (within 5% of the best) in fewer trials than grid "
        "search: median over repeats versus the first g × g grid that contains one",
        holds=bool(grid_trials_needed is not None and random_median_trials < grid_trials_needed),
        random_median_trials=random_median_trials,
        grid_trials_needed=grid_trials_needed or 0,
        repeats=repeats,
    )
    demo.claim(
        "With 9 trials, random search beats the 3 × 3 grid in most repeats",
        holds=bool(random_beats_grid_9 > 0.5),
        share_of_repeats=random_beats_grid_9,
        grid_excess=grid_3x3,
        random_good_share=random_good_at_9,
    )
