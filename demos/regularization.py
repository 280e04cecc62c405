"""Regularization side by side: none, L2, L1, early stopping and dropout on one polynomial task.

A degree-15 polynomial is fitted to 40 noisy points. Each of the four methods tunes its own
setting on validation data; all candidates live in one ONNX graph. Unregularized, the fit swings
wildly and its test error is about a hundred times larger; the four methods end close to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, linear, nets, plotting, polynomial

METHODS = ("none", "L2 (ridge)", "L1 (lasso)", "early stopping", "dropout")
KEYS = {"none": "none", "L2 (ridge)": "l2", "L1 (lasso)": "l1",
        "early stopping": "early_stopping", "dropout": "dropout"}  # metric-name stems
N_VAL, N_TEST = 60, 300
STEPS = 5000  # early stopping: gradient-descent steps in all
DROPOUT_STEPS = 1500


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
    """Errors of every candidate, and each method's choice on validation data."""
    grid: np.ndarray
    grid_all: np.ndarray  # column k: candidate k on the grid
    val: dict
    test: dict
    train: dict
    setting: dict  # the chosen value of each method's knob
    curves: dict  # validation error of each method's candidates
    chosen: dict  # column of each method's choice
    worst_reg_val: float
    worst_reg_test: float
    es_final_val: float


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    degree = int(opts.get("degree", 15))
    n_train = int(opts.get("n_train", 40))
    noise = float(opts.get("noise", 0.3))

    data = make_data(rng, n_train, noise)
    c = features(data, degree)

    # Candidates for every method; one ONNX graph holds them all, and every error below is
    # measured on its predictions.
    cands: dict[str, tuple[np.ndarray, list[linear.LinearModel]]] = {}
    cands["none"] = (np.array([0.0]), [polynomial.least_squares(c.F, c.yt)])
    cands["L2 (ridge)"] = fit_ridge(c)
    cands["L1 (lasso)"] = fit_lasso(c)
    lr = step_size(c, n_train)
    cands["early stopping"] = fit_early_stopping(c, lr, n_train, degree)
    cands["dropout"] = fit_dropout(rng, c, lr, n_train, degree)

    sess, offsets = export(demo, cands, degree)
    res = evaluate(sess, data, cands, offsets)

    draw_comparison(demo, res, noise)
    draw_fits(demo, data, res, degree)
    draw_tuning(demo, cands, res)
    measure(demo, res, noise, degree, n_train)
    claim_findings(demo, res, cands, offsets)
    demo.metric("val_mse_early_stopping_end", res.es_final_val,
                label=f"Early stopping: validation MSE after all {STEPS} steps", fmt=".3g")


def make_data(rng: np.random.Generator, n_train: int, noise: float) -> datasets.Split:
    """Noisy points of a wavy curve, split into training, validation and test."""
    # 40 noisy training points of a wavy curve, 60 for validation (every method picks its
    # setting there), 300 held out for the final test. Features: Chebyshev polynomials T_1..T_15.
    X, y = datasets.regression_1d(rng, n_train + N_VAL + N_TEST, noise=noise)
    return datasets.split(rng, X, y, val=N_VAL / len(y), test=N_TEST / len(y))


def features(data: datasets.Split, degree: int) -> Centered:
    """Chebyshev features of the training points, raw and centred."""
    F = polynomial.chebyshev_features(data.X_train[:, 0], degree)
    yt = data.y_train
    fm, ym = F.mean(axis=0), float(yt.mean())
    Fc, yc = F - fm, yt - ym
    return Centered(F, yt, Fc, yc, fm, ym)


def uncentered(w: np.ndarray, c: Centered) -> linear.LinearModel:
    """The model on raw features whose centred weights are ``w``."""
    return linear.LinearModel(w.copy(), c.ym - float(c.fm @ w))


def fit_ridge(c: Centered) -> tuple[np.ndarray, list[linear.LinearModel]]:
    """L2: ridge fits over a grid of penalties."""
    ridge_lams = np.logspace(-6.0, 1.0, 15)
    return ridge_lams, [linear.ridge(c.F, c.yt, float(lam)) for lam in ridge_lams]


def fit_lasso(c: Centered) -> tuple[np.ndarray, list[linear.LinearModel]]:
    """L1: lasso fits along a warm-started path of penalties."""
    lasso_lams = np.logspace(-0.5, -3.0, 11)  # warm-started path, strong to weak
    path, w = [], None
    for lam in lasso_lams:
        m = linear.lasso(c.F, c.yt, float(lam), coef_init=w, tol=1e-8, max_iter=3000)
        w = m.coef
        path.append(m)
    return lasso_lams, path


def step_size(c: Centered, n_train: int) -> float:
    """Gradient-descent step: one over the largest curvature of the squared error."""
    return 1.0 / float(np.linalg.eigvalsh(c.Fc.T @ c.Fc / n_train).max())


def fit_early_stopping(c: Centered, lr: float, n_train: int,
                       degree: int) -> tuple[np.ndarray, list[linear.LinearModel]]:
    """Early stopping: checkpoints of gradient descent on the plain squared error."""
    # Early stopping: full-batch gradient descent on the plain squared error, from zero;
    # a checkpoint at log-spaced steps.
    checkpoints = np.unique(np.round(np.logspace(0, np.log10(STEPS), 40)).astype(int))
    w, snaps = np.zeros(degree), []
    for s in range(1, STEPS + 1):
        w -= lr * (c.Fc.T @ (c.Fc @ w - c.yc)) / n_train
        if s in checkpoints:
            snaps.append(uncentered(w, c))
    return checkpoints.astype(float), snaps


def fit_dropout(rng: np.random.Generator, c: Centered, lr: float, n_train: int,
                degree: int) -> tuple[np.ndarray, list[linear.LinearModel]]:
    """Dropout: gradient descent with input features dropped, for a few drop rates."""
    # Dropout on the input features (demolib's inverted-dropout masks, a fresh mask each step);
    # the weights are averaged over the second half of training.
    drop_ps = np.array([0.05, 0.1, 0.2, 0.3, 0.5])
    drop_models = []
    for p in drop_ps:
        w, acc, n_steps = np.zeros(degree), np.zeros(degree), DROPOUT_STEPS
        for s in range(n_steps):
            Fm = c.Fc * nets.dropout_mask(rng, c.Fc.shape, float(p))
            w -= 0.5 * lr * (Fm.T @ (Fm @ w - c.yc)) / n_train
            if s >= n_steps // 2:
                acc += w
        drop_models.append(uncentered(acc / (n_steps - n_steps // 2), c))
    return drop_ps, drop_models


def export(demo, cands: dict, degree: int):
    """Export every candidate as one ONNX graph; return the session and each method's first column."""
    all_models = [m for name in METHODS for m in cands[name][1]]
    offsets = np.cumsum([0] + [len(cands[name][1]) for name in METHODS])
    graph = polynomial.export_linear_sweep(
        all_models, chebyshev=degree, name="regularization_candidates",
        doc_string="Every candidate model of every method, columns in the order "
        + ", ".join(f"{name} {offsets[i]}..{offsets[i + 1] - 1}" for i, name in enumerate(METHODS)))
    return demo.onnx("candidates", demo.make_model(graph)), offsets


def evaluate(sess, data: datasets.Split, cands: dict, offsets: np.ndarray) -> Results:
    """Errors of every candidate from ONNX Runtime; each method keeps its best on validation."""
    def mse(Xp: np.ndarray, yp: np.ndarray) -> np.ndarray:
        return np.mean((polynomial.run_sweep(sess, Xp) - yp[:, None]) ** 2, axis=0)

    val_all = mse(data.X_val, data.y_val)
    test_all = mse(data.X_test, data.y_test)
    train_all = mse(data.X_train, data.y_train)
    grid = np.linspace(-1.0, 1.0, 201)
    grid_all = polynomial.run_sweep(sess, grid)
    val, test, train, setting, curves, chosen = {}, {}, {}, {}, {}, {}
    for i, name in enumerate(METHODS):
        v = val_all[offsets[i]:offsets[i + 1]]
        j = offsets[i] + int(np.argmin(v))
        curves[name] = v
        chosen[name] = j
        setting[name] = float(cands[name][0][j - offsets[i]])
        val[name], test[name], train[name] = val_all[j], test_all[j], train_all[j]
    regs = METHODS[1:]
    worst_reg_val = max(val[m] for m in regs)
    worst_reg_test = max(test[m] for m in regs)
    es_final_val = float(curves["early stopping"][-1])
    return Results(grid, grid_all, val, test, train, setting, curves, chosen,
                   worst_reg_val, worst_reg_test, es_final_val)


def _decades(lo: float, hi: float) -> np.ndarray:
    """The powers of ten from just below ``lo`` to just above ``hi``: log-axis ticks."""
    return 10.0 ** np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)


def draw_comparison(demo, res: Results, noise: float) -> None:
    """Figure: validation and test error of each method at its best setting."""
    val, test = res.val, res.test

    @demo.figure(
        "comparison",
        caption="Validation and test error of each method at its best setting (log scale)",
        alt="Horizontal bar chart. Without regularization the validation and test errors are "
        "about a hundred times larger than with any of the four methods; L2, L1, early stopping "
        "and dropout end close to each other, near the noise variance.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        pos = np.arange(len(METHODS))[::-1]
        ax.barh(pos + 0.2, [val[m] for m in METHODS], 0.4, color="C0", label="validation")
        ax.barh(pos - 0.2, [test[m] for m in METHODS], 0.4, color="C1", label="test")
        ax.axvline(noise**2, ls=":", color="C7", label="noise variance")
        lo = min(noise**2, min(val.values()), min(test.values())) * 0.7
        hi = max(max(val.values()), max(test.values())) * 1.5
        plotting.plain_log_axis(ax.xaxis, _decades(lo, hi))
        ax.set_xlim(lo, hi)
        ax.set_yticks(pos, METHODS)
        ax.set_axisbelow(True)
        ax.set_xlabel("mean squared error")
        ax.set_title("One task, five ways to regularize")
        ax.legend(fontsize="small", loc="lower right")


def draw_fits(demo, data: datasets.Split, res: Results, degree: int) -> None:
    """Figure: the unregularized fit beside the four regularized ones."""
    grid, grid_all, chosen, regs = res.grid, res.grid_all, res.chosen, METHODS[1:]

    @demo.figure(
        "fits",
        caption=f"Degree-{degree} polynomial fits: no regularization (left) and the four "
        "methods at their chosen settings (right)",
        alt="Two panels with the same training points and the true curve. Left: the "
        "unregularized fit passes close to the points but swings wildly near the edges. Right: "
        "the four regularized fits lie almost on top of each other and follow the true curve.",
        size=(6.4, 4.2),
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2, sharey=True)
        for ax in (left, right):
            ax.plot(grid, datasets.smooth_function(grid), "--", color="C7", lw=1.5,
                    label="truth" if ax is left else None)
            ax.plot(data.X_train[:, 0], data.y_train, "o", color="C7", ms=3.5, alpha=0.8)
            ax.set_ylim(-2.5, 2.5)
            ax.set_xlabel("x")
        left.plot(grid, grid_all[:, chosen["none"]], color="C0", lw=1.8, label="no regularization")
        left.set_title("No regularization")
        left.set_ylabel("y")
        for c, name in enumerate(regs, start=1):
            right.plot(grid, grid_all[:, chosen[name]], color=f"C{c}", lw=1.6, label=name)
        right.set_title("Regularized")
        fig.legend(loc="outside lower center", ncols=3, fontsize="small")


def draw_tuning(demo, cands: dict, res: Results) -> None:
    """Figure: validation error against each method's own knob, with the choice starred."""
    curves, setting, val, regs = res.curves, res.setting, res.val, METHODS[1:]

    @demo.figure(
        "tuning",
        caption="Validation error against each method's own setting; the star marks the choice",
        alt="Four small panels. L2 and L1: validation error against the penalty λ, lowest at a "
        "middle value. Early stopping: validation error against the gradient-descent step, "
        "lowest early and rising later. Dropout: validation error against the drop rate p.",
        size=(6.4, 4.6),
    )
    def _(fig) -> None:
        axes = fig.subplots(2, 2).ravel()
        labels = {"L2 (ridge)": "λ", "L1 (lasso)": "λ", "early stopping": "step",
                  "dropout": "drop rate p"}
        for c, (ax, name) in enumerate(zip(axes, regs, strict=True), start=1):
            knob = cands[name][0]
            ax.plot(knob, curves[name], "o-", color=f"C{c}", ms=3)
            ax.plot(setting[name], val[name], "*", color="C6", ms=14)
            if name == "L2 (ridge)":  # seven decades: label every second one
                plotting.plain_log_axis(ax.xaxis, 10.0 ** np.arange(-6, 2, 2))
            elif name != "dropout":
                plotting.plain_log_axis(ax.xaxis, _decades(knob.min(), knob.max()))
            ax.set_ylim(0.0, min(float(curves[name].max()), 4 * val[name]) * 1.05)
            ax.set_title(name, fontsize="medium")
            ax.set_xlabel(labels[name], labelpad=1)
        axes[0].set_ylabel("validation MSE")
        axes[2].set_ylabel("validation MSE")


def measure(demo, res: Results, noise: float, degree: int, n_train: int) -> None:
    """Record every method's errors and chosen setting, and the gain over no regularization."""
    val, test, train, setting = res.val, res.test, res.train, res.setting
    for name, key in KEYS.items():
        demo.metric(f"val_mse_{key}", val[name], label=f"{name}: validation MSE", fmt=".3g")
        demo.metric(f"test_mse_{key}", test[name], label=f"{name}: test MSE", fmt=".3g")
    demo.metric("train_mse_none", train["none"], label="none: training MSE", fmt=".3g")
    demo.metric("l2_lambda", setting["L2 (ridge)"], label="L2: chosen λ", fmt=".2g")
    demo.metric("l1_lambda", setting["L1 (lasso)"], label="L1: chosen λ", fmt=".2g")
    demo.metric("early_stopping_step", setting["early stopping"],
                label="Early stopping: chosen step", fmt=".0f")
    demo.metric("dropout_p", setting["dropout"], label="Dropout: chosen rate p", fmt=".2g")
    demo.metric("noise_variance", noise**2, label="Noise variance", fmt=".3g")
    demo.metric("degree", degree, label="Polynomial degree", fmt=".0f")
    demo.metric("n_train", n_train, label="Training points", fmt=".0f")
    demo.metric("gain_worst_method", test["none"] / res.worst_reg_test,
                label="Test MSE of none / worst regularized method", fmt=".3g")


def claim_findings(demo, res: Results, cands: dict, offsets: np.ndarray) -> None:
    """Claim: every method beats none, none overfits, settings are interior, running on hurts."""
    val, test, train, setting, chosen, regs = res.val, res.test, res.train, res.setting, res.chosen, METHODS[1:]
    demo.claim(
        "Every regularization method beats the unregularized fit on validation and test data, "
        "each by more than a factor of 10",
        holds=bool(val["none"] > 10 * res.worst_reg_val and test["none"] > 10 * res.worst_reg_test),
        val_mse_none=val["none"],
        worst_val_mse_regularized=res.worst_reg_val,
        test_mse_none=test["none"],
        worst_test_mse_regularized=res.worst_reg_test,
    )
    demo.claim(
        "The unregularized fit has the lowest training error of all: it overfits",
        holds=bool(all(train["none"] < train[m] for m in regs)),
        train_mse_none=train["none"],
        **{f"train_mse_{KEYS[m]}": train[m] for m in regs},
    )
    demo.claim(
        "Each method's best setting lies strictly inside its range: too little regularization "
        "and too much both do worse on validation data",
        holds=bool(all(0 < chosen[m] - offsets[i] < len(cands[m][1]) - 1
                       for i, m in enumerate(METHODS) if m != "none")),
        **{KEYS[m]: setting[m] for m in regs},
    )
    demo.claim(
        "Gradient descent left running past the early-stopping point does worse on "
        "validation data",
        holds=bool(res.es_final_val > 1.2 * val["early stopping"]),
        val_mse_at_stop=val["early stopping"],
        val_mse_after_all_steps=res.es_final_val,
        steps=STEPS,
    )
