"""Cross-validation: choose the ridge penalty λ by 5-fold CV and check it on a large test set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from demolib import datasets, plotting, ridge_paths

CENTERS = np.linspace(-1.0, 1.0, 40)  # 40 Gaussian bumps of width 0.1 as features
WIDTH = 0.1
LAMBDAS = np.logspace(-9, 1, 31)
NOISE = 0.3
N_TEST = 5000  # test points standing in for "the truth" about which λ generalises best
TOL = 0.10  # "close to the best": test MSE within 10% of the best λ on the grid


@dataclass
class CV:
    """K-fold cross-validation and the refit models' test error, for every λ on the grid."""

    fold_mse: np.ndarray  # (K, L) validation MSE of each fold
    test_mse: np.ndarray  # (L,) test MSE of the models refit on all training data
    coef: np.ndarray  # the refit models
    intercept: np.ndarray
    predict: Callable[[np.ndarray], np.ndarray]  # (points, K + 1, L) from ONNX Runtime


@dataclass
class Choice:
    """The λ chosen by CV against the best λ on the test set."""

    cv_mse: np.ndarray
    cv_std: np.ndarray
    i_cv: int
    i_test: int
    lam_cv: float
    lam_test: float
    ratio: float  # test MSE at the CV choice / best test MSE
    decades: float  # distance between the two λ, in decades
    single_ratio: np.ndarray  # the same ratio for each fold used alone as a single split


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    n_train = int(opts.get("n_train", 60))
    k_folds = int(opts.get("folds", 5))
    n_repeats = int(opts.get("repeats", 20))

    # Noisy training points, ridge regression on Gaussian-bump features (it can interpolate the
    # data when λ is tiny); a large test set from the same distribution stands in for the truth.
    X, y = datasets.regression_1d(rng, n_train, noise=NOISE)
    X_test, y_test = datasets.regression_1d(rng, N_TEST, noise=NOISE)

    def downloadable(graph):
        return demo.onnx("cv_ridge_sweep", demo.make_model(graph))

    main = cross_validate(downloadable, rng, X, y, X_test, y_test, k_folds)
    choice = choose_lambda(main)
    rep_ratio, rep_single, within = repeat_on_fresh_data(demo, rng, n_train, k_folds, n_repeats)
    grid, grid_pred, ort_diff = check_onnx(main, k_folds)
    loo_diff, lam_loo = check_loo_shortcut(X, y)

    draw_cv_curve(demo, main, choice, k_folds)
    draw_fits(demo, X, y, grid, grid_pred, main, choice)
    draw_repeats(demo, rep_ratio, rep_single, k_folds, n_repeats)
    measure(demo, k_folds, n_train, n_repeats, main, choice, rep_ratio, rep_single, within, ort_diff)
    demo.metric("loo_max_rel_diff", loo_diff, label="Max relative |LOO shortcut − explicit LOO refits|",
                fmt=".1e")
    demo.metric("lambda_loo", lam_loo, label="λ chosen by leave-one-out CV", fmt=".2g")
    claim_findings(demo, n_repeats, main, choice, rep_ratio, rep_single, within)
    demo.check(
        f"Leave-one-out shortcut: for every λ on the grid, the error from (y_i − ŷ_i)/(1 − S_ii) equals "
        f"that of {n_train} explicit refits, each without one point",
        holds=bool(loo_diff < 1e-6),
        max_rel_diff=loo_diff,
    )
    demo.check("ONNX Runtime matches NumPy for the refit models", holds=bool(ort_diff < 1e-3),
               max_abs_diff=ort_diff)


def cross_validate(
    sess_factory,
    rng: np.random.Generator,
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    k_folds: int,
) -> CV:
    """Fold-wise validation MSE ``(K, L)`` and test MSE of the refit models ``(L,)``.

    Every fold model and every refit model go into one ONNX graph (``(K + 1) * L`` outputs);
    ``sess_factory(graph)`` turns it into an ONNX Runtime session that makes all predictions.
    """
    n, n_lam = len(y), len(LAMBDAS)
    feats = ridge_paths.rbf_features(X, CENTERS, WIDTH)
    folds = np.array_split(rng.permutation(n), k_folds)
    coefs, intercepts = [], []
    for fold in folds:
        train = np.setdiff1d(np.arange(n), fold)
        c, b = ridge_paths.ridge_path(feats[train], y[train], LAMBDAS)
        coefs.append(c)
        intercepts.append(b)
    c, b = ridge_paths.ridge_path(feats, y, LAMBDAS)  # refit on all training data
    coefs.append(c)
    intercepts.append(b)
    graph = ridge_paths.export_linear_sweep(
        np.vstack(coefs), np.concatenate(intercepts), rbf=(CENTERS, WIDTH), name="cv_ridge_sweep"
    )
    sess = sess_factory(graph)

    def predict(inputs: np.ndarray) -> np.ndarray:
        out = sess.run(None, {"x": inputs.astype(np.float32)})[0].astype(np.float64)
        return out.reshape(len(inputs), k_folds + 1, n_lam)

    pred_train = predict(X)
    fold_mse = np.array([
        np.mean((pred_train[fold, k, :] - y[fold, None]) ** 2, axis=0)
        for k, fold in enumerate(folds)
    ])
    test_mse = np.mean((predict(X_test)[:, k_folds, :] - y_test[:, None]) ** 2, axis=0)
    return CV(fold_mse, test_mse, c, b, predict)


def choose_lambda(main: CV) -> Choice:
    """The λ with the lowest CV error, against the λ with the lowest test error."""
    fold_mse, test_mse = main.fold_mse, main.test_mse
    cv_mse = fold_mse.mean(axis=0)
    cv_std = fold_mse.std(axis=0)
    i_cv, i_test = int(np.argmin(cv_mse)), int(np.argmin(test_mse))
    lam_cv, lam_test = float(LAMBDAS[i_cv]), float(LAMBDAS[i_test])
    ratio = float(test_mse[i_cv] / test_mse[i_test])
    decades = float(abs(np.log10(lam_cv) - np.log10(lam_test)))
    # what a single validation split (one fold alone) would have picked
    single_ratio = test_mse[np.argmin(fold_mse, axis=1)] / test_mse[i_test]
    return Choice(cv_mse, cv_std, i_cv, i_test, lam_cv, lam_test, ratio, decades, single_ratio)


def repeat_on_fresh_data(demo, rng: np.random.Generator, n_train: int, k_folds: int, n_repeats: int):
    """Test MSE at the chosen λ relative to the best, over fresh datasets, for CV and single splits."""
    # The same experiment on fresh datasets (each with its own test set), to see how typical
    # this run is: test MSE at the CV choice relative to the best test MSE on the grid.
    rep_ratio, rep_single = [], []
    for _ in range(n_repeats):
        Xr, yr = datasets.regression_1d(rng, n_train, noise=NOISE)
        Xr_test, yr_test = datasets.regression_1d(rng, 2000, noise=NOISE)
        res = cross_validate(lambda g: demo.session(demo.make_model(g)), rng, Xr, yr,
                             Xr_test, yr_test, k_folds)
        best = res.test_mse.min()
        rep_ratio.append(res.test_mse[np.argmin(res.fold_mse.mean(axis=0))] / best)
        rep_single.append(res.test_mse[np.argmin(res.fold_mse, axis=1)] / best)
    rep_ratio, rep_single = np.array(rep_ratio), np.concatenate(rep_single)  # K per dataset
    within = float(np.mean(rep_ratio <= 1.0 + TOL))
    return rep_ratio, rep_single, within


def check_onnx(main: CV, k_folds: int):
    """The refit models on a grid, from ONNX Runtime, against the NumPy ridge predictions."""
    grid = np.linspace(-1.0, 1.0, 200)[:, None]
    grid_pred = main.predict(grid)[:, k_folds, :]  # refit models, all λ
    numpy_pred = ridge_paths.rbf_features(grid, CENTERS, WIDTH) @ main.coef.T + main.intercept
    ort_diff = float(np.max(np.abs(grid_pred - numpy_pred)))
    return grid, grid_pred, ort_diff


def check_loo_shortcut(X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Leave-one-out error at every λ, from the linear-smoother shortcut and from n explicit refits."""
    feats, n = ridge_paths.rbf_features(X, CENTERS, WIDTH), len(y)
    # The fit is ŷ = S y with S = 11ᵀ/n + U diag(s²/(s² + nλ)) Uᵀ (centred features Xc = U s Vᵀ;
    # ridge_path penalises nλ/2 ‖w‖² against ½ ‖residual‖², the intercept unpenalised).
    U, s, _ = np.linalg.svd(feats - feats.mean(axis=0), full_matrices=False)
    shrink = s**2 / (s**2 + n * LAMBDAS[:, None])  # (L, r)
    fitted = y.mean() + (shrink * (U.T @ (y - y.mean()))) @ U.T  # (L, n)
    s_ii = 1.0 / n + shrink @ (U**2).T  # (L, n)
    shortcut = np.mean(((y - fitted) / (1.0 - s_ii)) ** 2, axis=1)
    errors = np.empty((n, len(LAMBDAS)))
    for i in range(n):  # refit without point i, with the same penalty per squared residual
        keep = np.arange(n) != i
        c, b = ridge_paths.ridge_path(feats[keep], y[keep], LAMBDAS * n / (n - 1))
        errors[i] = y[i] - (c @ feats[i] + b)
    explicit = np.mean(errors**2, axis=0)
    rel = float(np.max(np.abs(shortcut - explicit) / explicit))
    return rel, float(LAMBDAS[np.argmin(shortcut)])


def draw_cv_curve(demo, main: CV, choice: Choice, k_folds: int) -> None:
    """Figure: the fold and mean CV curves against λ, with the test error and both choices."""
    fold_mse, test_mse = main.fold_mse, main.test_mse
    cv_mse, cv_std, i_cv, i_test = choice.cv_mse, choice.cv_std, choice.i_cv, choice.i_test

    @demo.figure(
        "cv-curve",
        caption=f"{k_folds}-fold CV error against λ (thin lines: single folds; band: ± one standard "
        f"deviation across folds) and the error of the refit model on {N_TEST:,} test points",
        alt="Log-log chart of mean squared error against λ. The thin per-fold curves scatter "
        "widely, especially at small λ. Their mean, the CV curve, is lowest at a middle λ, which is "
        f"marked; the test-error curve has its own minimum, also marked, and the CV choice's test "
        f"error is {choice.ratio:.2f} times that minimum.",
        size=(6.4, 4.4),
        notice="Single folds disagree widely, but their mean puts the CV choice close to the test minimum.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for k in range(k_folds):
            ax.plot(LAMBDAS, fold_mse[k], color="C7", lw=0.8, alpha=0.7,
                    label="single folds" if k == 0 else None)
        ax.fill_between(LAMBDAS, np.maximum(cv_mse - cv_std, 1e-3), cv_mse + cv_std,
                        color="C0", alpha=0.18, lw=0, label="CV mean ± 1 sd")
        ax.plot(LAMBDAS, cv_mse, color="C0", label=f"{k_folds}-fold CV mean")
        ax.plot(LAMBDAS, test_mse, color="C1", label=f"test ({N_TEST:,} points)")
        ax.plot(choice.lam_cv, cv_mse[i_cv], "*", color="C0", ms=15, label="CV choice")
        ax.plot(choice.lam_test, test_mse[i_test], "D", color="C1", ms=8, label="best on test")
        ax.axhline(NOISE**2, ls=":", color="C7", lw=1)
        top = max(2.0, float(np.quantile(fold_mse, 0.97)))
        plotting.plain_log_axis(ax.yaxis, [v for v in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if v <= top])
        ax.set_ylim(0.05, top)
        ax.set_ylabel("mean squared error")
        _lam_axis(ax)
        ax.set_title("Cross-validation curve and the test truth")
        fig.legend(loc="outside lower center", ncols=3)


def draw_fits(demo, X: np.ndarray, y: np.ndarray, grid: np.ndarray, grid_pred: np.ndarray, main: CV,
              choice: Choice) -> None:
    """Figure with a slider over λ: the ridge model refit on all points at every other λ of the
    grid (and CV's choice), with its CV and test error."""
    shown = sorted(set(range(0, len(LAMBDAS), 2)) | {choice.i_cv})
    tags = {0: "smallest λ", choice.i_cv: "CV choice", len(LAMBDAS) - 1: "largest λ"}

    @demo.sweep(
        "fits", LAMBDAS[shown], label="penalty λ", fmt=".2g", default=shown.index(choice.i_cv),
        caption=f"Ridge fits (refit on all {len(y)} points) for {len(shown)} values of λ, from the grid's "
        "smallest to its largest",
        alt=f"Scatter of {len(y)} noisy points around a wavy curve and the ridge fit. The smallest λ "
        "wiggles through the noise, the CV-chosen λ follows the true curve, and the largest λ is far "
        "too flat",
        notice="Too small a λ chases the noise, too large a λ flattens the curve; CV's choice sits between.",
        numbers=lambda k: [demo.number(choice.cv_mse[shown[k]], "cross-validation error", ".3g"),
                           demo.number(main.test_mse[shown[k]], "test error", ".3g")],
    )
    def _(fig, k: int) -> None:
        i = shown[k]
        ax = fig.subplots()
        ax.plot(grid[:, 0], datasets.smooth_function(grid[:, 0]), "--", color="C7", label="truth")
        ax.plot(X[:, 0], y, "o", color="C7", ms=4, alpha=0.7, label="training data")
        ax.plot(grid[:, 0], grid_pred[:, i], color="C0", lw=2, label="ridge fit")
        ax.set(xlim=(-1.0, 1.0), ylim=(float(y.min()) - 0.5, float(y.max()) + 0.5), xlabel="x", ylabel="y")
        ax.set_title(f"λ = {plotting.plain_label(float(f'{LAMBDAS[i]:.2g}'))}" + (f" ({tags[i]})" if i in tags else "")
                     + f", {len(CENTERS)} bump features")
        fig.legend(ncols=3, loc="outside lower center")


def draw_repeats(demo, rep_ratio: np.ndarray, rep_single: np.ndarray, k_folds: int, n_repeats: int) -> None:
    """Figure: over fresh datasets, how close CV's and single splits' choices come to the best λ."""

    @demo.figure(
        "repeats",
        caption=f"The same experiment on {n_repeats} fresh datasets: test error at the chosen λ "
        f"relative to the best λ on the grid, for {k_folds}-fold CV (one dot per dataset) and for "
        f"a single {_split(k_folds)} validation split (one dot per fold: {k_folds * n_repeats} splits)",
        alt=f"Strip chart with two rows of dots on a log axis. For {k_folds}-fold CV the dots cluster just "
        "above one, meaning the chosen λ is nearly as good as the best; for single validation "
        "splits the dots spread much further to the right.",
        size=(6.4, 3.2),
        notice="CV's dots stay close to one; single splits land further from the best λ.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(rep_ratio, 1 + np.linspace(-0.15, 0.15, len(rep_ratio)), "o", color="C0",
                alpha=0.8)
        ax.plot(rep_single, np.linspace(-0.2, 0.2, len(rep_single)), "s", color="C1", ms=4,
                alpha=0.7)
        ax.axvline(1.0, color="C7", lw=1)
        ax.set_yticks([0, 1], ["single\nsplit", f"{k_folds}-fold\nCV"])
        ticks = [1, 1.25, 1.5, 2, 3, 5, 10, 20, 50, 100, 200, 500]
        top = max(float(rep_single.max()), float(rep_ratio.max())) * 1.2
        plotting.plain_log_axis(ax.xaxis, [t for t in ticks if t <= top], fmt="{:g}×")
        ax.set_xlim(0.97, top)
        ax.set_ylim(-0.5, 1.5)
        ax.set_xlabel("test MSE at chosen λ / best test MSE (log scale)")
        ax.set_title("How close is the chosen λ, over many datasets?")


def measure(demo, k_folds: int, n_train: int, n_repeats: int, main: CV, choice: Choice, rep_ratio: np.ndarray,
            rep_single: np.ndarray, within: float, ort_diff: float) -> None:
    """Record the chosen λ, its test error, and how typical that is over fresh datasets."""
    demo.key_numbers("lambda_cv", "lambda_test_best", "test_ratio", "repeat_ratio_median", "repeat_single_ratio_median")
    i_cv, i_test = choice.i_cv, choice.i_test
    demo.setting("folds", k_folds, label="Folds", fmt=".0f")
    demo.setting("n_train", n_train, label="Training points", fmt=".0f")
    demo.setting("n_features", len(CENTERS), label="Gaussian-bump features", fmt=".0f")
    demo.setting("n_test", N_TEST, label="Test points", fmt=",.0f")
    demo.setting("tolerance", TOL, label="Close to the best: test MSE within this of the best λ", fmt=".0%")
    demo.setting("lambda_min", LAMBDAS[0], label="Smallest λ on the grid", fmt="g")
    demo.setting("lambda_max", LAMBDAS[-1], label="Largest λ on the grid", fmt="g")
    demo.setting("n_lambdas", len(LAMBDAS), label="Values of λ on the grid", fmt=".0f")
    demo.metric("lambda_cv", choice.lam_cv, label="λ chosen by CV", fmt=".2g")
    demo.metric("lambda_test_best", choice.lam_test, label="Best λ on the test set", fmt=".2g")
    demo.metric("lambda_decades_apart", choice.decades, label="Distance between them (decades)",
                fmt=".2g")
    demo.metric("cv_mse_at_choice", choice.cv_mse[i_cv], label="CV estimate of MSE at the CV choice",
                fmt=".3f")
    demo.metric("cv_fold_sd_at_choice", choice.cv_std[i_cv], label="Fold-to-fold sd at the CV choice",
                fmt=".3f")
    demo.metric("test_mse_at_cv", main.test_mse[i_cv], label="Test MSE at the CV choice", fmt=".4f")
    demo.metric("test_mse_best", main.test_mse[i_test], label="Best test MSE on the grid", fmt=".4f")
    demo.metric("test_ratio", choice.ratio, label="Test MSE at CV choice / best", fmt=".3f")
    demo.metric("single_split_ratio_median", float(np.median(choice.single_ratio)),
                label=f"Same ratio for a single {_split(k_folds)} split (median over the folds)", fmt=".3f")
    demo.setting("repeats", n_repeats, label="Fresh datasets in the repeat study", fmt=".0f")
    demo.metric("repeat_ratio_median", float(np.median(rep_ratio)),
                label="Median ratio over the repeats (CV)", fmt=".3f")
    demo.metric("repeat_single_ratio_median", float(np.median(rep_single)),
                label="Median ratio over the repeats (single split)", fmt=".3f")
    demo.metric("repeat_ratio_mean", float(np.mean(rep_ratio)),
                label="Mean ratio over the repeats (CV)", fmt=".3f")
    demo.metric("repeat_single_ratio_mean", float(np.mean(rep_single)),
                label="Mean ratio over the repeats (single split)", fmt=".3g")
    demo.metric("repeat_within_10pct", within, label=f"Repeats where CV is within {TOL:.0%} of best",
                fmt=".0%")
    demo.metric("ort_max_abs_diff", ort_diff, label="Max |ONNX Runtime − NumPy| prediction",
                fmt=".1e")


def claim_findings(demo, n_repeats: int, main: CV, choice: Choice, rep_ratio: np.ndarray, rep_single: np.ndarray,
                   within: float) -> None:
    """Findings over fresh datasets: CV's λ is typically near the best, and better than a single
    split's (one dataset alone can mislead CV, so no finding rests on it)."""
    demo.claim(
        f"Over fresh datasets, CV's choice is typically (median) within {TOL:.0%} of the best test error",
        holds=bool(np.median(rep_ratio) <= 1.0 + TOL),
        repeats=n_repeats,
        median_ratio=demo.number(float(np.median(rep_ratio)), "median test error of CV's choice over the best"),
        share_within_10pct=demo.number(within, "share of datasets within 10%", fmt=".0%"),
    )
    demo.claim(
        "Averaging over folds picks a better λ than a single validation split (one fold held out) "
        "(lower median and lower mean ratio over the fresh datasets)",
        holds=bool(np.median(rep_ratio) < np.median(rep_single)
                   and np.mean(rep_ratio) < np.mean(rep_single)),
        median_ratio_cv=demo.number(float(np.median(rep_ratio)), "median ratio to the best test error, 5-fold CV"),
        median_ratio_single_split=demo.number(float(np.median(rep_single)), "median ratio, single split"),
        mean_ratio_cv=demo.number(float(np.mean(rep_ratio)), "mean ratio, 5-fold CV"),
        mean_ratio_single_split=demo.number(float(np.mean(rep_single)), "mean ratio, single split"),
    )


# ---- helpers


def _split(k_folds: int) -> str:
    """A single split that holds out one of k folds, as train/validation percentages."""
    return f"{100 * (k_folds - 1) / k_folds:.0f}/{100 / k_folds:.0f}"


def _lam_axis(ax) -> None:
    """A log λ axis labelled in powers of ten."""
    plotting.plain_log_axis(ax.xaxis, 10.0 ** np.arange(-8, 1, 2), fmt=plotting.exponent_label)
    ax.set_xlabel("penalty λ (log scale)")
