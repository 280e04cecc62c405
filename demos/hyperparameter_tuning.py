"""Grid search versus random search when only one of two hyperparameters matters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, plotting, ridge_paths
from matplotlib import rcParams

LOG_LAMBDAS = np.linspace(-9.0, 1.0, 81)  # λ from 1e-9 to 10 in steps of 1/8 decade
N_FEATURES = np.arange(20, 61, 4)  # 20, 24, ..., 60 Gaussian-bump features
WIDTH = 0.1
GOOD = 0.05  # "good" = validation MSE within 5% of the best setting in the whole search space
MAX_TRIALS = 64
BUDGET = 9  # trials in the side-by-side example: a 3 x 3 grid against 9 random trials
GRID_SIZES = np.arange(2, 9)  # g x g grids, g^2 trials
SMALL = (GRID_SIZES >= 3) & (GRID_SIZES <= 5)  # the budgets compared (9, 16, 25 trials); with 4, both often tie


@dataclass
class Space:
    """Validation MSE of every (m, λ) model in the search space, from ONNX Runtime."""

    table: np.ndarray  # (len(N_FEATURES), len(LOG_LAMBDAS))
    best: float
    excess: np.ndarray  # relative excess over the best setting
    ort_diff: float


@dataclass
class GridSearch:
    """g x g grids for g = 2..8, cell-centred and at a random offset within the cell per repeat."""

    sizes: np.ndarray
    best: np.ndarray  # excess of the best setting the cell-centred grid finds
    budgets: np.ndarray  # trials: g^2
    good_share: np.ndarray  # per g: share of randomly offset grids that find a good setting
    median_excess: np.ndarray  # per g: median over offsets of the best excess found
    shifted_9: np.ndarray  # (repeats,) best excess of a randomly offset 3 x 3 grid
    excess_3x3: float
    example_l: np.ndarray  # the cell-centred 3 x 3 grid's trials (log λ, m)
    example_m: np.ndarray


@dataclass
class RandomSearch:
    """Many repeats of random search with up to MAX_TRIALS trials each."""

    log_lam: np.ndarray  # (repeats, MAX_TRIALS)
    m: np.ndarray
    q25: np.ndarray  # quartiles over repeats of the best excess so far, per trial
    q50: np.ndarray
    q75: np.ndarray
    median_trials: float  # median trials to a good setting
    p_good_per_trial: float
    good_share: np.ndarray  # per g: share of repeats with a good setting within g^2 trials
    median_excess: np.ndarray  # per g: median over repeats of the best excess within g^2 trials
    good_at_9: float
    beats_grid_9: float  # share of repeats where 9 random trials beat the offset 3 x 3 grid
    loses_grid_9: float  # ... and where the grid beats them


def run(demo) -> None:
    rng = demo.rng
    repeats = int(demo.options.get("repeats", 1000))

    X, y, X_val, y_val = make_data(rng)
    centers = 2.0 * _van_der_corput(64)[: N_FEATURES.max()] - 1.0 + 1.0 / 64
    coefs_all, intercepts_all = fit_search_space(X, y, centers)
    space = score_search_space(demo, X_val, y_val, centers, coefs_all, intercepts_all)
    spread_m, spread_lam = importance(space)
    grid = grid_search(rng, space, repeats)
    rand = random_search(rng, space, repeats, grid.shifted_9)

    draw_search_space(demo, space, grid, rand)
    draw_projection(demo, space, grid, rand)
    draw_best_so_far(demo, grid, rand, repeats)
    measure(demo, space, spread_lam, spread_m, grid, rand, repeats)
    claim_findings(demo, spread_lam, spread_m, grid, rand, repeats, space.ort_diff)


def make_data(rng):
    """60 training and 300 validation points from a noisy smooth curve."""
    X, y = datasets.regression_1d(rng, 60, noise=0.3)
    X_val, y_val = datasets.regression_1d(rng, 300, noise=0.3)
    return X, y, X_val, y_val


def fit_search_space(X: np.ndarray, y: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression on m Gaussian-bump features, for every (m, λ) of the search space."""
    feats = ridge_paths.rbf_features(X, centers, WIDTH)
    lambdas = 10.0**LOG_LAMBDAS
    coefs, intercepts = [], []
    for m in N_FEATURES:  # model (m, λ) uses the first m centres; pad the rest with zeros
        c, b = ridge_paths.ridge_path(feats[:, :m], y, lambdas)
        coefs.append(np.pad(c, ((0, 0), (0, N_FEATURES.max() - m))))
        intercepts.append(b)
    return np.vstack(coefs), np.concatenate(intercepts)


def score_search_space(demo, X_val, y_val, centers, coefs_all, intercepts_all) -> Space:
    """The objective: validation MSE as a function of (λ, m), every model run in ONNX Runtime."""
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
    return Space(table, best, table / best - 1.0, ort_diff)


def importance(space: Space) -> tuple[float, float]:
    """How much each hyperparameter matters: spread of the best reachable score along each axis."""
    spread_m = float(space.table.min(axis=1).max() / space.best - 1.0)  # best over λ, worst m
    spread_lam = float(space.table.min(axis=0).max() / space.best - 1.0)  # best over m, worst λ
    return spread_m, spread_lam


def grid_search(rng, space: Space, repeats: int) -> GridSearch:
    """Grid search: g values per axis at the centres of g equal cells (no value wasted on an edge of
    the range), and the same grid shifted by a random offset within its cell in every repeat."""
    centred, good_share, shifted = [], [], {}
    for g in GRID_SIZES:
        centred.append(float(_lookup(space.excess, *_grid(g, 0.5, 0.5)).min()))
        offsets = rng.uniform(size=(repeats, 2))
        shifted[g] = np.array([_lookup(space.excess, *_grid(g, u, v)).min() for u, v in offsets])
        good_share.append(float(np.mean(shifted[g] <= GOOD)))
    ex_l, ex_m = _grid(3, 0.5, 0.5)
    best = np.array(centred)
    median_excess = np.array([np.median(shifted[g]) for g in GRID_SIZES])
    return GridSearch(GRID_SIZES, best, GRID_SIZES**2, np.array(good_share), median_excess, shifted[3],
                      float(best[GRID_SIZES == 3][0]), ex_l, ex_m)


def random_search(rng, space: Space, repeats: int, grid_9: np.ndarray) -> RandomSearch:
    """Random search: log λ uniform on the range, m uniform on the grid, repeated many times."""
    r_log_lam = rng.uniform(LOG_LAMBDAS[0], LOG_LAMBDAS[-1], size=(repeats, MAX_TRIALS))
    r_m = rng.choice(N_FEATURES, size=(repeats, MAX_TRIALS))
    r_excess = _lookup(space.excess, r_log_lam, r_m)
    r_best_so_far = np.minimum.accumulate(r_excess, axis=1)
    hit = r_excess <= GOOD
    first_hit = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, MAX_TRIALS + 1)
    q25, q50, q75 = np.quantile(r_best_so_far, [0.25, 0.5, 0.75], axis=0)
    best_9 = r_best_so_far[:, BUDGET - 1]
    return RandomSearch(
        log_lam=r_log_lam,
        m=r_m,
        q25=q25,
        q50=q50,
        q75=q75,
        median_trials=float(np.median(first_hit)),
        p_good_per_trial=float(np.mean(hit)),
        good_share=np.mean(r_best_so_far[:, GRID_SIZES**2 - 1] <= GOOD, axis=0),
        median_excess=np.median(r_best_so_far[:, GRID_SIZES**2 - 1], axis=0),
        good_at_9=float(np.mean(best_9 <= GOOD)),
        beats_grid_9=float(np.mean(best_9 < grid_9)),
        loses_grid_9=float(np.mean(best_9 > grid_9)),
    )


def draw_search_space(demo, space: Space, grid: GridSearch, rand: RandomSearch) -> None:
    """Figure: validation error over both hyperparameters, with 9 grid and 9 random trials."""
    table = space.table
    ex_rand_l, ex_rand_m = rand.log_lam[0, :BUDGET], rand.m[0, :BUDGET]

    @demo.figure(
        "search-space",
        caption=f"Validation error over the two hyperparameters, with {BUDGET} trials of grid search "
        f"(squares, cell-centred) and {BUDGET} of random search (dots, one of the repeats)",
        alt="Heat map with λ on a log horizontal axis and the number of features vertically. "
        "A vertical band of low error at moderate λ runs from bottom to top, so there the number "
        "of features hardly matters; it matters only at tiny λ, where every setting is poor. The "
        f"{_side()} × {_side()} grid covers only {_side()} λ values; the {BUDGET} random trials fall "
        f"at {BUDGET} different λ values.",
        size=(6.4, 4.2),
        notice="The low-error band runs vertically: λ matters, the number of features hardly does.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        half = (LOG_LAMBDAS[1] - LOG_LAMBDAS[0]) / 2
        im = ax.imshow(np.log10(table), origin="lower", aspect="auto", cmap="viridis_r",
                       extent=(LOG_LAMBDAS[0] - half, LOG_LAMBDAS[-1] + half, 18, 62),
                       interpolation="nearest")
        edge = rcParams["text.color"]
        ax.scatter(grid.example_l, grid.example_m, marker="s", s=70, c="C3", edgecolors=edge,
                   linewidths=1.0, label=f"grid ({_side()} × {_side()})", clip_on=False, zorder=3)
        ax.scatter(ex_rand_l, ex_rand_m, marker="o", s=55, c="C1", edgecolors=edge,
                   linewidths=1.0, label=f"random ({BUDGET})", zorder=3)
        _lam_axis(ax)
        ax.set_ylabel("number of features m")
        ax.set_title("Validation error: only λ matters much")
        ax.grid(False)
        cbar = fig.colorbar(im, ax=ax, label="validation MSE")
        ticks = [v for v in (0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
                 if table.min() <= v <= table.max()]
        cbar.set_ticks(np.log10(ticks), labels=[plotting.plain_label(v) for v in ticks])
        cbar.minorticks_off()
        fig.legend(loc="outside lower center", ncols=2)


def draw_projection(demo, space: Space, grid: GridSearch, rand: RandomSearch) -> None:
    """Figure: validation error against λ for every m, and the λ values each search tried."""
    table, best = space.table, space.best
    ex_rand_l = rand.log_lam[0, :BUDGET]

    @demo.figure(
        "projection",
        caption="Validation error against λ for every number of features m (the curves nearly "
        f"coincide); the ticks below show which λ values each {BUDGET}-trial search tried",
        alt=f"{len(N_FEATURES)} almost identical U-shaped curves of validation error against log λ, "
        f"lowest near λ = {10.0 ** LOG_LAMBDAS[np.argmin(table.min(axis=0))]:.2g}. Under the axis, "
        f"one row of ticks shows the grid search's {_side()} λ values; a second row shows random "
        f"search's {BUDGET} different λ values.",
        size=(6.4, 4.0),
        notice="The curves nearly coincide; the grid tries only three λ values, random search nine.",
    )
    def _(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[4, 1])
        for a in range(len(N_FEATURES)):
            top.plot(LOG_LAMBDAS, table[a], color="C0", lw=1.0, alpha=0.6,
                     label=f"one curve per m ({N_FEATURES[0]} … {N_FEATURES[-1]})" if a == 0 else None)
        top.axhspan(best, best * (1 + GOOD), color="C2", alpha=0.25, lw=0,
                    label=f"within {GOOD:.0%} of best")
        yt = [v for v in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0) if table.min() / 1.2 <= v <= table.max()]
        plotting.plain_log_axis(top.yaxis, yt)
        top.set_ylabel("validation MSE")
        top.set_title(f"Projected onto λ: {_side()} distinct values vs {BUDGET}")
        top.legend(loc="upper center")
        bottom.plot(np.unique(grid.example_l), np.full(_side(), 1.0), "s", color="C3", ms=8)
        bottom.plot(ex_rand_l, np.zeros(BUDGET), "o", color="C1", ms=7)
        bottom.set_yticks([0, 1], ["random", "grid"])
        bottom.set_ylim(-0.6, 1.6)
        bottom.grid(axis="y", visible=False)
        _lam_axis(bottom)


def draw_best_so_far(demo, grid: GridSearch, rand: RandomSearch, repeats: int) -> None:
    """Figure: best error found so far against trials, random search against g x g grids."""
    trials = np.arange(1, MAX_TRIALS + 1)

    @demo.figure(
        "best-so-far",
        caption=f"Best validation error found so far against the number of trials: random search "
        f"(median and interquartile range over {repeats} repeats) and g × g grids, cell-centred and "
        "at a random offset (median over the repeats)",
        alt="Log-scale chart of excess validation error over the best setting against the number "
        f"of trials. The random-search median falls quickly and crosses the {GOOD:.0%} line after "
        f"{rand.median_trials:.0f} trials; the grid results are one point per grid size.",
        notice="Random search gets close to the best setting within a few trials.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        floor = 1e-3  # an excess of exactly 0 cannot be drawn on a log axis
        ax.fill_between(trials, np.maximum(rand.q25, floor), np.maximum(rand.q75, floor), color="C1",
                        alpha=0.25, lw=0, label="random: middle 50%")
        ax.plot(trials, np.maximum(rand.q50, floor), color="C1", label="random: median")
        ax.plot(grid.budgets, np.maximum(grid.best, floor), "s-", color="C3", ms=7,
                label="grid g × g (cell-centred)")
        ax.plot(grid.budgets, np.maximum(grid.median_excess, floor), "D--", color="C4", ms=5,
                label="grid g × g (random offset: median)")
        ax.axhline(GOOD, color="C2", ls="--", lw=1.2, label=f"good: within {GOOD:.0%}")
        plotting.plain_log_axis(ax.yaxis, fmt=lambda v: f"{v:.0%}" if v >= 0.01 else f"{v:.1%}")
        ax.set_xlabel("number of trials")
        ax.set_ylabel("best so far: excess over optimum")
        ax.set_xlim(0, MAX_TRIALS + 1)
        ax.set_title("Best setting found so far")
        ax.legend(loc="upper right")


def measure(demo, space: Space, spread_lam, spread_m, grid: GridSearch, rand: RandomSearch, repeats) -> None:
    """Record the search space, how much each hyperparameter matters and how each search does."""
    demo.key_numbers(
        "spread_over_lambda", "spread_over_m", "random_median_trials", "random_good_at_9", "grid_good_at_9")
    demo.setting("lambda_min", 10.0 ** LOG_LAMBDAS[0], label="Smallest λ searched", fmt="g")
    demo.setting("lambda_max", 10.0 ** LOG_LAMBDAS[-1], label="Largest λ searched", fmt="g")
    demo.setting("m_min", N_FEATURES.min(), label="Fewest features m", fmt=".0f")
    demo.setting("m_max", N_FEATURES.max(), label="Most features m", fmt=".0f")
    demo.setting("good_tolerance", GOOD, label="A good setting: validation MSE within this of the best",
                 fmt=".0%")
    demo.setting("budget", BUDGET, label="Trials in the side-by-side comparison", fmt=".0f")
    demo.setting("grid_side", round(np.sqrt(BUDGET)), label="Values per axis in its grid", fmt=".0f")
    demo.setting("budget_min", grid.budgets[SMALL].min(), label="Smallest budget compared", fmt=".0f")
    demo.setting("budget_max", grid.budgets[SMALL].max(), label="Largest budget compared", fmt=".0f")
    demo.setting("repeats", repeats, label="Repeats of each search", fmt=".0f")
    demo.metric("best_val_mse", space.best, label="Best validation MSE in the search space", fmt=".4f")
    demo.metric("spread_over_lambda", spread_lam,
                label="Worst λ (best m) vs optimum: excess validation MSE", fmt=".0%")
    demo.metric("spread_over_m", spread_m,
                label="Worst m (best λ) vs optimum: excess validation MSE", fmt=".1%")
    demo.metric("p_good_per_trial", rand.p_good_per_trial,
                label="Chance that one random trial is good", fmt=".1%")
    demo.metric("random_median_trials", rand.median_trials,
                label="Random search: median trials to a good setting", fmt=".0f")
    demo.metric("random_good_at_9", rand.good_at_9,
                label=f"Random search with {BUDGET} trials: share of repeats that find a good setting",
                fmt=".0%")
    demo.metric("grid_good_at_9", float(grid.good_share[GRID_SIZES**2 == BUDGET][0]),
                label=f"Grid with {BUDGET} trials at a random offset: share that find a good setting",
                fmt=".0%")
    demo.metric("grid_excess_at_9", grid.excess_3x3, label="Cell-centred 3 × 3 grid: excess of its best setting",
                fmt=".0%")
    demo.metric("random_beats_grid_9", rand.beats_grid_9,
                label=f"Share of repeats where {BUDGET} random trials beat the offset grid", fmt=".0%")
    demo.metric("grid_beats_random_9", rand.loses_grid_9,
                label="Share of repeats where the grid beats them", fmt=".0%")
    demo.metric("ort_max_abs_diff", space.ort_diff, label="Max |ONNX Runtime − NumPy| prediction",
                fmt=".1e")


def claim_findings(demo, spread_lam, spread_m, grid: GridSearch, rand: RandomSearch, repeats, ort_diff) -> None:
    """Findings: only λ matters, and so random search does better than a grid of the same budget."""
    demo.claim(
        "Only λ matters much: the best reachable error varies far more across λ than across m",
        holds=bool(spread_lam > 10 * spread_m),
        excess_worst_lambda=demo.number(spread_lam, "excess error at the worst λ"),
        excess_worst_m=demo.number(spread_m, "excess error at the worst m"),
    )
    demo.claim(
        f"At each small budget ({', '.join(map(str, grid.budgets[SMALL]))} trials), the median best "
        "setting random search finds is closer to the optimum than that of a g × g grid of the same "
        "budget placed at a random offset",
        holds=bool(np.all(rand.median_excess[SMALL] < grid.median_excess[SMALL])),
        random=demo.number(
            ", ".join(f"{v:.1%}" for v in rand.median_excess[SMALL]), "median excess error, random search, by budget"),
        grid=demo.number(
            ", ".join(f"{v:.1%}" for v in grid.median_excess[SMALL]), "median excess error, grid search, by budget"),
        repeats=repeats,
    )
    demo.claim(
        f"With {BUDGET} trials, random search beats the grid of the same budget more often than the "
        "grid beats it",
        holds=bool(rand.beats_grid_9 > rand.loses_grid_9),
        random_better=demo.number(rand.beats_grid_9, "share of draws where random search wins", fmt=".0%"),
        grid_better=demo.number(rand.loses_grid_9, "share where the grid wins", fmt=".0%"),
        repeats=repeats,
    )
    demo.check(
        "ONNX Runtime matches NumPy on every model of the search space (float32 rounding; the "
        "weakest penalties give large, ill-conditioned weights)",
        holds=bool(ort_diff < 1e-3),
        max_abs_diff=ort_diff,
    )


def _side() -> int:
    """Values per axis of the grid with BUDGET trials."""
    return round(np.sqrt(BUDGET))


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


def _grid(g: int, u: float, v: float) -> tuple[np.ndarray, np.ndarray]:
    """A g x g grid over (log λ, m): g equal cells per axis, one trial at offset (u, v) in each
    (0.5, 0.5 is the cell centre)."""
    lo, hi = LOG_LAMBDAS[0], LOG_LAMBDAS[-1]
    m_lo, m_hi = N_FEATURES[0], N_FEATURES[-1]
    lg, mg = np.meshgrid(lo + (np.arange(g) + u) * (hi - lo) / g, m_lo + (np.arange(g) + v) * (m_hi - m_lo) / g)
    return lg.ravel(), mg.ravel()


def _lookup(excess: np.ndarray, log_lam: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Excess at (log λ, m), snapped to the 1/8-decade λ grid and the m grid."""
    j = np.clip(np.rint((log_lam - LOG_LAMBDAS[0]) * 8).astype(int), 0, len(LOG_LAMBDAS) - 1)
    a = np.clip(np.rint((m - N_FEATURES[0]) / 4).astype(int), 0, len(N_FEATURES) - 1)
    return excess[a, j]


def _lam_axis(ax) -> None:
    """λ axis: the axis holds log10 λ (a linear axis); label each exponent as the power of ten."""
    plotting.plain_ticks(ax.xaxis, np.arange(-8, 2, 2), fmt=lambda v: f"$10^{{{round(v)}}}$")
    ax.set_xlabel("penalty λ (log scale)")
