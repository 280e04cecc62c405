"""Regularization side by side: none, L2, L1, early stopping and dropout on one polynomial task.

A high-degree polynomial is fitted to a few noisy points, the whole comparison repeated on several independent draws
of the data (one is shown in the figures). Each method tunes its own setting on validation data; every candidate of
every draw lives in one ONNX graph. The dropout arm has a control, the same gradient-descent schedule with drop rate
0: how much of dropout's gain is implicit early stopping."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, linear, nets, plotting, polynomial

METHODS = ("none", "L2 (ridge)", "L1 (lasso)", "early stopping", "dropout", "p = 0 control")
KEYS = {"none": "none", "L2 (ridge)": "l2", "L1 (lasso)": "l1", "early stopping": "early_stopping",
        "dropout": "dropout", "p = 0 control": "dropout_control"}  # metric-name stems
TUNED = METHODS[1:5]  # the four methods that choose a setting on validation data
N_VAL, N_TEST = 60, 300
STEPS = 5000  # early stopping: gradient-descent steps in all
DROPOUT_STEPS = 1500
DROP_PS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)  # 0: the schedule alone


@dataclass
class Centered:
    """Chebyshev features of the training points, and the same centred (for gradient descent)."""
    F: np.ndarray
    yt: np.ndarray
    Fc: np.ndarray
    yc: np.ndarray
    fm: np.ndarray
    ym: float


@dataclass
class Results:
    """Errors of every candidate on every draw (rows), each method's choice, and their medians."""
    val: dict  # method -> (R,) validation MSE of the method's choice on each draw
    test: dict
    train: dict
    curves: dict  # method -> (R, K) validation MSE of every candidate on every draw
    test_curves: dict  # method -> (R, K) test MSE of every candidate on every draw
    chosen: dict  # method -> (R,) index of the choice within the method's candidates
    grid: np.ndarray
    grid_pred: dict  # method -> prediction of draw 0's choice on the grid
    ort_diff: float


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    degree = int(opts.get("degree", 15))
    n_train = int(opts.get("n_train", 40))
    noise = float(opts.get("noise", 0.3))
    repeats = int(opts.get("repeats", 10))

    draws = [make_data(rng, n_train, noise) for _ in range(repeats)]
    cands = [fit_all(rng, d, degree) for d in draws]
    knobs = {m: cands[0][m][0] for m in METHODS}

    sess = export(demo, cands, degree)
    res = evaluate(sess, draws, cands)

    draw_comparison(demo, res, noise)
    draw_fits(demo, draws[0], res, degree)
    draw_tuning(demo, knobs, res, repeats)
    measure(demo, res, knobs, noise, degree, n_train, repeats)
    claim_findings(demo, res, knobs, repeats)


def make_data(rng: np.random.Generator, n_train: int, noise: float) -> datasets.Split:
    """Noisy points of a wavy curve, split into training, validation and test."""
    # n_train noisy training points of a wavy curve, N_VAL for validation (every method picks its
    # setting there), N_TEST held out for the final test.
    X, y = datasets.regression_1d(rng, n_train + N_VAL + N_TEST, noise=noise)
    return datasets.split(rng, X, y, val=N_VAL / len(y), test=N_TEST / len(y))


def fit_all(rng: np.random.Generator, data: datasets.Split, degree: int) -> dict:
    """Every method's candidates on one draw: method -> (knob values, models)."""
    c = features(data, degree)
    lr = step_size(c)
    return {
        "none": (np.array([0.0]), [polynomial.least_squares(c.F, c.yt)]),
        "L2 (ridge)": fit_ridge(c),
        "L1 (lasso)": fit_lasso(c),
        "early stopping": fit_early_stopping(c, lr, degree),
        "dropout": (drop := fit_dropout(rng, c, lr, degree, DROP_PS)),
        "p = 0 control": (drop[0][:1], drop[1][:1]),  # the same schedule with nothing dropped
    }


def features(data: datasets.Split, degree: int) -> Centered:
    """Chebyshev features T_1..T_degree of the training points, raw and centred."""
    F = polynomial.chebyshev_features(data.X_train[:, 0], degree)
    yt = data.y_train
    fm, ym = F.mean(axis=0), float(yt.mean())
    return Centered(F, yt, F - fm, yt - ym, fm, ym)


def uncentered(w: np.ndarray, c: Centered) -> linear.LinearModel:
    """The model on raw features whose centred weights are ``w``."""
    return linear.LinearModel(w.copy(), c.ym - float(c.fm @ w))


def fit_ridge(c: Centered) -> tuple[np.ndarray, list[linear.LinearModel]]:
    """L2: ridge fits over a grid of penalties."""
    ridge_lams = np.logspace(-6.0, 1.0, 15)
    return ridge_lams, [linear.ridge(c.F, c.yt, float(lam)) for lam in ridge_lams]


def fit_lasso(c: Centered) -> tuple[np.ndarray, list[linear.LinearModel]]:
    """L1: lasso fits along a warm-started path of penalties, strong to weak."""
    lasso_lams = np.logspace(-0.5, -3.0, 11)
    path, w = [], None
    for lam in lasso_lams:
        m = linear.lasso(c.F, c.yt, float(lam), coef_init=w, tol=1e-8, max_iter=3000)
        w = m.coef
        path.append(m)
    return lasso_lams, path


def step_size(c: Centered) -> float:
    """Gradient-descent step: one over the largest curvature of the squared error."""
    return 1.0 / float(np.linalg.eigvalsh(c.Fc.T @ c.Fc / len(c.yc)).max())


def fit_early_stopping(c: Centered, lr: float, degree: int) -> tuple[np.ndarray, list[linear.LinearModel]]:
    """Early stopping: checkpoints (log-spaced steps) of full-batch gradient descent from zero."""
    checkpoints = np.unique(np.round(np.logspace(0, np.log10(STEPS), 40)).astype(int))
    w, snaps = np.zeros(degree), []
    for s in range(1, STEPS + 1):
        w -= lr * (c.Fc.T @ (c.Fc @ w - c.yc)) / len(c.yc)
        if s in checkpoints:
            snaps.append(uncentered(w, c))
    return checkpoints.astype(float), snaps


def fit_dropout(rng: np.random.Generator, c: Centered, lr: float, degree: int,
                drop_ps) -> tuple[np.ndarray, list[linear.LinearModel]]:
    """Dropout on the input features: one gradient-descent schedule per drop rate.

    A fresh inverted-dropout mask each step; the weights are averaged over the second half of
    training. Drop rate 0 runs the very same schedule without masks: the control arm.
    """
    models = []
    for p in drop_ps:
        w, acc = np.zeros(degree), np.zeros(degree)
        for s in range(DROPOUT_STEPS):
            Fm = c.Fc * nets.dropout_mask(rng, c.Fc.shape, float(p)) if p > 0 else c.Fc
            w -= 0.5 * lr * (Fm.T @ (Fm @ w - c.yc)) / len(c.yc)
            if s >= DROPOUT_STEPS // 2:
                acc += w
        models.append(uncentered(acc / (DROPOUT_STEPS - DROPOUT_STEPS // 2), c))
    return np.array(drop_ps, float), models


def export(demo, cands: list[dict], degree: int):
    """Every candidate of every draw as one ONNX graph, columns draw by draw in METHODS order."""
    models = [m for draw in cands for name in METHODS for m in draw[name][1]]
    per_draw = sum(len(cands[0][name][1]) for name in METHODS)
    graph = polynomial.export_linear_sweep(
        models, chebyshev=degree, name="regularization_candidates",
        doc_string=f"{len(cands)} draws of {per_draw} candidate models each, in the order "
        + ", ".join(METHODS))
    return demo.onnx("candidates", demo.make_model(graph))


def evaluate(sess, draws: list[datasets.Split], cands: list[dict]) -> Results:
    """Errors of every candidate from ONNX Runtime; each method keeps its best on validation."""
    sizes = [len(cands[0][name][1]) for name in METHODS]
    offsets = np.cumsum([0] + sizes)
    per_draw = int(offsets[-1])
    val, test, train, curves, test_curves, chosen = ({m: [] for m in METHODS} for _ in range(6))
    ort_diff = 0.0
    for r, (data, draw) in enumerate(zip(draws, cands, strict=True)):
        cols = slice(r * per_draw, (r + 1) * per_draw)
        errs = {}
        models = [m for name in METHODS for m in draw[name][1]]
        scale = 1.0 + np.array([np.abs(m.coef).sum() + abs(m.intercept) for m in models])
        for part, (Xp, yp) in {"val": (data.X_val, data.y_val), "test": (data.X_test, data.y_test),
                               "train": (data.X_train, data.y_train)}.items():
            pred = polynomial.run_sweep(sess, Xp)[:, cols]
            numpy_pred = np.column_stack([polynomial.predict(m, Xp) for m in models])
            # training errors from float64 NumPy: least squares' optimality is exact there
            errs[part] = np.mean(((numpy_pred if part == "train" else pred) - yp[:, None]) ** 2, axis=0)
            # float32 evaluation errs in proportion to the coefficients' size
            ort_diff = max(ort_diff, float(np.max(np.abs(pred - numpy_pred) / scale)))
        for i, name in enumerate(METHODS):
            v = errs["val"][offsets[i]:offsets[i + 1]]
            j = int(np.argmin(v))
            curves[name].append(v)
            test_curves[name].append(errs["test"][offsets[i]:offsets[i + 1]])
            chosen[name].append(j)
            for store, part in ((val, "val"), (test, "test"), (train, "train")):
                store[name].append(errs[part][offsets[i] + j])
    grid = np.linspace(-1.0, 1.0, 201)
    grid_all = polynomial.run_sweep(sess, grid)
    grid_pred = {name: grid_all[:, offsets[i] + chosen[name][0]] for i, name in enumerate(METHODS)}
    def arrays(store: dict) -> dict:
        return {k: np.array(v) for k, v in store.items()}

    return Results(arrays(val), arrays(test), arrays(train), arrays(curves), arrays(test_curves),
                   arrays(chosen), grid, grid_pred, ort_diff)


def _decades(lo: float, hi: float) -> np.ndarray:
    """The powers of ten from just below ``lo`` to just above ``hi``: log-axis ticks."""
    return 10.0 ** np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)


def _median_choice(res: Results, knobs: dict, name: str) -> tuple[int, float]:
    """Index and value of the setting with the lowest median validation error over the draws."""
    k = int(np.argmin(np.median(res.curves[name], axis=0)))
    return k, float(knobs[name][k])


def draw_comparison(demo, res: Results, noise: float) -> None:
    """Figure: median validation and test error of each method, and every draw's test error."""
    med_val = {m: float(np.median(res.val[m])) for m in METHODS}
    med_test = {m: float(np.median(res.test[m])) for m in METHODS}
    repeats = len(res.test["none"])

    @demo.figure(
        "comparison",
        caption=f"Median validation and test error of each method over {repeats} draws of the "
        "data (log scale); dots are the test errors of the single draws",
        alt="Horizontal bar chart on a log scale. Without regularization the median errors are "
        "far larger than with any of the four methods, and its single-draw test errors spread "
        "over several decades; L2, L1, early stopping, dropout and the dropout control with drop "
        "rate 0 end close to each other, near the noise variance.",
        notice="Every method is far below no regularization, and the four end close to each other.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        pos = np.arange(len(METHODS))[::-1]
        ax.barh(pos + 0.2, [med_val[m] for m in METHODS], 0.4, color="C0", label="validation (median)")
        ax.barh(pos - 0.2, [med_test[m] for m in METHODS], 0.4, color="C1", label="test (median)")
        for p, m in zip(pos, METHODS, strict=True):
            ax.plot(res.test[m], np.full(repeats, p - 0.2), "o", color="C7", ms=2.5, alpha=0.7)
        ax.axvline(noise**2, ls=":", color="C7", label="noise variance")
        all_vals = np.concatenate([res.test[m] for m in METHODS] + [list(med_val.values())])
        lo, hi = min(noise**2, float(all_vals.min())) * 0.7, float(all_vals.max()) * 1.5
        plotting.plain_log_axis(ax.xaxis, _decades(lo, hi)[::max(1, len(_decades(lo, hi)) // 6)])
        ax.set_xlim(lo, hi)
        ax.set_yticks(pos, METHODS)
        ax.set_axisbelow(True)
        ax.set_xlabel("mean squared error")
        ax.set_title("One task, several draws, five ways to regularize")
        ax.legend(fontsize="small", loc="lower right")


def draw_fits(demo, data: datasets.Split, res: Results, degree: int) -> None:
    """Figure: the unregularized fit beside the four regularized ones, on the first draw."""
    grid = res.grid

    @demo.figure(
        "fits",
        caption=f"Degree-{degree} polynomial fits on the first draw: no regularization (left) and "
        "the four methods at their chosen settings (right)",
        alt="Two panels with the same training points and the true curve. Left: the "
        "unregularized fit passes close to the points and swings away from the curve between "
        "and beyond them. Right: the four regularized fits lie close together and follow the "
        "true curve.",
        size=(6.4, 4.2),
        notice="The unregularized fit swings away from the curve; the regularized fits follow it.",
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2, sharey=True)
        for ax in (left, right):
            ax.plot(grid, datasets.smooth_function(grid), "--", color="C7", lw=1.5,
                    label="truth" if ax is left else None)
            ax.plot(data.X_train[:, 0], data.y_train, "o", color="C7", ms=3.5, alpha=0.8)
            ax.set_ylim(-2.5, 2.5)
            ax.set_xlabel("x")
        left.plot(grid, res.grid_pred["none"], color="C0", lw=1.8, label="no regularization")
        left.set_title("No regularization")
        left.set_ylabel("y")
        for c, name in enumerate(TUNED, start=1):
            right.plot(grid, res.grid_pred[name], color=f"C{c}", lw=1.6, label=name)
        right.set_title("Regularized")
        fig.legend(loc="outside lower center", ncols=3, fontsize="small")


def draw_tuning(demo, knobs: dict, res: Results, repeats: int) -> None:
    """Figure: median validation error against each method's own knob, with its minimum starred."""
    @demo.figure(
        "tuning",
        caption=f"Median validation error over {repeats} draws against each method's own "
        "setting; the star marks the lowest median. Dropout's dashed line is the control: "
        "nothing dropped, the same schedule",
        alt="Four small panels. L2 and L1: median validation error against the penalty λ, lowest "
        "at a middle value. Early stopping: against the gradient-descent step, lowest early and "
        "rising later. Dropout: against the drop rate p, lowest at a middle rate, with the "
        "drop-rate-0 control as a dashed horizontal line.",
        size=(6.4, 4.6),
        notice="Each method is best at a middle setting: too little and too much both do worse.",
    )
    def _(fig) -> None:
        axes = fig.subplots(2, 2).ravel()
        labels = {"L2 (ridge)": "λ", "L1 (lasso)": "λ", "early stopping": "step",
                  "dropout": "drop rate p"}
        for c, (ax, name) in enumerate(zip(axes, TUNED, strict=True), start=1):
            knob, curve = knobs[name], np.median(res.curves[name], axis=0)
            k, _best = _median_choice(res, knobs, name)
            ax.plot(knob, curve, "o-", color=f"C{c}", ms=3)
            ax.plot(knob[k], curve[k], "*", color="C6", ms=14)
            if name == "dropout":
                ax.axhline(float(np.median(res.curves["p = 0 control"])), ls="--", color="C7")
            if name == "dropout":  # the grid starts at p = 0: linear near zero
                ax.set_xscale("symlog", linthresh=float(knob[knob > 0].min()))
                plotting.plain_ticks(ax.xaxis, knob[::2])
            else:
                decades = _decades(knob.min(), knob.max())
                plotting.plain_log_axis(ax.xaxis, decades[::2] if len(decades) > 5 else decades)
            ax.set_ylim(0.0, min(float(curve.max()), 4 * float(curve[k])) * 1.05)
            ax.set_title(name, fontsize="medium")
            ax.set_xlabel(labels[name], labelpad=1)
        axes[0].set_ylabel("median validation MSE")
        axes[2].set_ylabel("median validation MSE")


def measure(demo, res: Results, knobs: dict, noise: float, degree: int, n_train: int, repeats: int) -> None:
    """Record the setup, every method's median errors and settings, and the gains."""
    demo.key_numbers("test_mse_none", "test_mse_l2", "test_mse_l1", "test_mse_early_stopping", "test_mse_dropout")
    demo.setting("degree", degree, label="Polynomial degree")
    demo.setting("n_train", n_train, label="Training points per draw")
    demo.setting("n_val", N_VAL, label="Validation points per draw")
    demo.setting("n_test", N_TEST, label="Test points per draw")
    demo.setting("repeats", repeats, label="Independent draws of the data")
    demo.setting("es_steps", STEPS, label="Early stopping: gradient-descent steps in all")
    demo.setting("dropout_steps", DROPOUT_STEPS, label="Dropout: gradient-descent steps per rate")
    demo.setting("noise_variance", noise**2, label="Noise variance", fmt=".3g")
    med = {m: float(np.median(res.test[m])) for m in METHODS}
    for name, key in KEYS.items():
        val = float(np.median(res.val[name]))
        demo.metric(f"val_mse_{key}", val, label=f"{name}: median validation MSE", fmt=".3g")
        demo.metric(f"test_mse_{key}", med[name], label=f"{name}: median test MSE", fmt=".3g")
    demo.metric("train_mse_none", float(np.median(res.train["none"])), label="none: median training MSE", fmt=".3g")
    for name, key, fmt in (("L2 (ridge)", "l2_lambda", ".2g"), ("L1 (lasso)", "l1_lambda", ".2g"),
                           ("early stopping", "early_stopping_step", ".0f"), ("dropout", "dropout_p", ".2g")):
        demo.metric(key, _median_choice(res, knobs, name)[1],
                    label=f"{name}: setting with the lowest median validation MSE", fmt=fmt)
    demo.metric("wins_min", min(int(np.sum(res.test[m] < res.test["none"])) for m in TUNED),
                label="Draws in which the weakest method beats none on test error", fmt=".0f")
    demo.metric("gain_worst_method", med["none"] / max(med[m] for m in TUNED),
                label="Median test MSE of none / of the worst regularized method", fmt=".3g")
    demo.metric("gain_control", med["none"] / med["p = 0 control"],
                label="Median test MSE of none / of the p = 0 control", fmt=".3g")
    demo.metric("gain_dropout_over_control", med["p = 0 control"] / med["dropout"],
                label="Median test MSE of the p = 0 control / of dropout", fmt=".3g")
    demo.metric("val_mse_early_stopping_end", float(np.median(res.curves["early stopping"][:, -1])),
                label=f"Early stopping: median validation MSE after all {STEPS} steps", fmt=".3g")
    demo.metric("test_mse_early_stopping_end", float(np.median(res.test_curves["early stopping"][:, -1])),
                label=f"Early stopping: median test MSE after all {STEPS} steps", fmt=".3g")
    demo.metric("ort_max_rel_diff", res.ort_diff,
                label="Max |ONNX Runtime − NumPy| prediction / (1 + sum of |coefficients|)", fmt=".1e")


def claim_findings(demo, res: Results, knobs: dict, repeats: int) -> None:
    """Findings over the draws: methods beat none, settings inside their grids, running on hurts,
    dropout beyond its schedule; checks: none trains best (by definition), ORT = NumPy."""
    med = {m: float(np.median(res.test[m])) for m in METHODS}
    wins = {m: int(np.sum(res.test[m] < res.test["none"])) for m in TUNED}
    demo.claim(
        f"Each of the four methods has a lower test error than the unregularized fit in more "
        f"than half of the {repeats} draws",
        holds=bool(min(wins.values()) > repeats / 2),
        **{f"wins_{KEYS[m]}": demo.number(wins[m], f"draws won, {m}") for m in TUNED},
    )
    inside = {m: 0 < _median_choice(res, knobs, m)[0] < len(knobs[m]) - 1 for m in TUNED}
    demo.claim(
        "Each method's median validation error over the draws is lowest strictly inside its "
        "range of settings: too little and too much regularization both do worse",
        holds=bool(all(inside.values())),
        **{KEYS[m]: demo.number(_median_choice(res, knobs, m)[1], f"setting chosen, {m}") for m in TUNED},
    )
    es_end = float(np.median(res.test_curves["early stopping"][:, -1]))
    demo.claim(
        "Gradient descent left running past the early-stopping point does worse: its median "
        "test error after all steps is higher than at the chosen step",
        holds=bool(es_end > med["early stopping"]),
        test_mse_early_stopping=med["early stopping"], test_mse_early_stopping_end=es_end,
    )
    demo.claim(
        "Dropout adds to its schedule: with the same gradient-descent schedule, the drop rate "
        "chosen on validation data has a lower median test error than drop rate 0",
        holds=bool(med["dropout"] < med["p = 0 control"]),
        test_mse_dropout=med["dropout"], test_mse_dropout_control=med["p = 0 control"],
    )
    demo.check(
        "The unregularized fit has the lowest training error of all methods on every draw "
        "(least squares minimizes it by definition)",
        holds=bool(all(np.all(res.train["none"] <= res.train[m] * (1 + 1e-9)) for m in METHODS)),
        train_mse_none=float(np.median(res.train["none"])),
    )
    demo.check("ONNX Runtime (float32) reproduces every candidate's NumPy predictions to within "
               "float32 rounding of its coefficients",
               holds=bool(res.ort_diff < 1e-5), max_rel_diff=res.ort_diff)
