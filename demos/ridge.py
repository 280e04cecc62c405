"""Ridge regression: coefficient paths over λ, the shrinking norm, and a validation-chosen λ.

Twelve correlated features, five of them irrelevant, are fitted with ridge for 31 values of λ in
one ONNX graph. Every coefficient shrinks smoothly toward zero but none reaches it, the weight norm
falls monotonically, and a middle λ gives the lowest validation error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import plotting, ridge_paths

N_FEATURES, RHO = 12, 0.3  # pairwise correlation between features
W_TRUE = [3.0, -2.0, 1.5, 1.0, -1.0, 0.5, -0.5]  # the first 7 coefficients; the other 5 are exactly 0
N_VAL = 300
REPEATS = 200  # fresh training sets in the repeat study


@dataclass
class Data:
    w_true: np.ndarray
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


@dataclass
class RidgePath:
    """The ridge path: row k of ``coefs`` is the model fitted with lambdas[k]."""
    lambdas: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    norms: np.ndarray


@dataclass
class Scores:
    train_mse: np.ndarray
    val_mse: np.ndarray
    ort_diff: float
    i_best: int
    lam_best: float


@dataclass
class Repeats:
    """The same fit on fresh training sets (NumPy): how typical a middle best λ is."""
    mean_val: np.ndarray  # validation MSE at every λ, averaged over the training sets
    middle_share: float  # share of training sets where a middle λ beats both ends of the path
    count: int


@dataclass
class Shape:
    """How the coefficients shrink along the path."""
    abs_coefs: np.ndarray
    min_abs: float  # smallest |wⱼ| anywhere on the grid
    smallest_to_largest_last: float
    sign_changes: int
    norm_ratio: float


def run(demo) -> None:
    opts = demo.options
    n_train = int(opts.get("n_train", 30))
    noise = float(opts.get("noise", 3.0))
    lambdas = np.logspace(-3, 3, int(opts.get("n_lambdas", 31)))

    data = make_data(demo.rng, n_train, noise)
    path = fit_path(data, lambdas)
    sess = export(demo, path)
    scores = evaluate(sess, data, path)
    shape = describe_shape(path)
    reps = repeat_on_fresh_sets(demo.rng, n_train, noise, lambdas, int(opts.get("repeats", REPEATS)))

    relevant = data.w_true != 0
    draw_paths(demo, path, scores, relevant)
    draw_weights(demo, path, scores, data.w_true)
    draw_validation(demo, path, scores, noise)
    measure(demo, path, scores, shape, data, reps)
    claim_findings(demo, path, scores, shape, reps)


def make_data(rng: np.random.Generator, n_train: int, noise: float) -> Data:
    """Correlated features, a sparse true model, and noisy targets for training and validation."""
    # 12 features (pairwise correlation 0.3); 7 matter, 5 have a true coefficient of exactly 0.
    w_true = np.zeros(N_FEATURES)
    w_true[:7] = W_TRUE
    X = _correlated_features(rng, n_train, N_FEATURES, RHO)
    y = X @ w_true + noise * rng.standard_normal(n_train)
    X_val = _correlated_features(rng, N_VAL, N_FEATURES, RHO)
    y_val = X_val @ w_true + noise * rng.standard_normal(N_VAL)
    return Data(w_true, X, y, X_val, y_val)


def repeat_on_fresh_sets(rng: np.random.Generator, n_train: int, noise: float, lambdas: np.ndarray,
                         repeats: int) -> Repeats:
    """Fit the whole path again on fresh training sets and score each on its own validation set."""
    vals = []
    for _ in range(repeats):
        data = make_data(rng, n_train, noise)
        coefs, intercepts = ridge_paths.ridge_path(data.X, data.y, lambdas)
        vals.append(np.mean((data.X_val @ coefs.T + intercepts - data.y_val[:, None]) ** 2, axis=0))
    vals = np.array(vals)
    best = np.argmin(vals, axis=1)
    return Repeats(vals.mean(axis=0), float(np.mean((best > 0) & (best < len(lambdas) - 1))), repeats)


def _correlated_features(rng: np.random.Generator, n: int, d: int, rho: float) -> np.ndarray:
    """Standard-normal features with pairwise correlation ``rho`` (one shared factor)."""
    return np.sqrt(1.0 - rho) * rng.standard_normal((n, d)) + np.sqrt(rho) * rng.standard_normal(
        (n, 1)
    )


def fit_path(data: Data, lambdas: np.ndarray) -> RidgePath:
    """Fit ridge for every λ and take the norm of each coefficient vector."""
    # Objective: 1/(2n) ||y - Xw - b||^2 + λ/2 ||w||^2, solved for all λ with one SVD.
    coefs, intercepts = ridge_paths.ridge_path(data.X, data.y, lambdas)
    norms = np.linalg.norm(coefs, axis=1)
    return RidgePath(lambdas, coefs, intercepts, norms)


def export(demo, path: RidgePath):
    """Export the whole path as one ONNX graph and open it in ONNX Runtime."""
    # One ONNX graph holds the whole path: output column k is the model fitted with lambdas[k].
    graph = ridge_paths.export_linear_sweep(path.coefs, path.intercepts, name="ridge_path")
    return demo.onnx("ridge_path", demo.make_model(graph))


def evaluate(sess, data: Data, path: RidgePath) -> Scores:
    """Training and validation error at every λ, predicted by ONNX Runtime, and the best λ."""
    def predict(inputs: np.ndarray) -> np.ndarray:
        return sess.run(None, {"x": inputs.astype(np.float32)})[0].astype(np.float64)

    pred_train, pred_val = predict(data.X), predict(data.X_val)
    train_mse = np.mean((pred_train - data.y[:, None]) ** 2, axis=0)
    val_mse = np.mean((pred_val - data.y_val[:, None]) ** 2, axis=0)
    ort_diff = float(np.max(np.abs(pred_val - (data.X_val @ path.coefs.T + path.intercepts))))
    i_best = int(np.argmin(val_mse))
    lam_best = float(path.lambdas[i_best])
    return Scores(train_mse, val_mse, ort_diff, i_best, lam_best)


def describe_shape(path: RidgePath) -> Shape:
    """Smallest coefficient, zero crossings and norm shrinkage along the path."""
    coefs, norms = path.coefs, path.norms
    abs_coefs = np.abs(coefs)
    min_abs = float(abs_coefs.min())  # smallest |wⱼ| anywhere on the grid
    last = abs_coefs[-1]
    smallest_to_largest_last = float(last.min() / last.max())
    sign_changes = int(np.sum(np.diff(np.sign(coefs), axis=0) != 0))
    norm_ratio = float(norms[-1] / norms[0])
    return Shape(abs_coefs, min_abs, smallest_to_largest_last, sign_changes, norm_ratio)


def log_lambda_axis(ax) -> None:
    """Label an x axis as the log-scaled penalty λ."""
    plotting.plain_log_axis(ax.xaxis, 10.0 ** np.arange(-3, 4))
    ax.set_xlabel("penalty λ (log scale)")


def draw_paths(demo, path: RidgePath, scores: Scores, relevant: np.ndarray) -> None:
    """Figure: every coefficient against λ, with the best λ marked."""
    lambdas, coefs, d = path.lambdas, path.coefs, N_FEATURES

    @demo.figure(
        "paths",
        caption=f"Ridge coefficient paths: each line is one of the {d} coefficients as λ grows",
        alt=f"Line chart of {d} coefficients against λ on a log axis. All start spread between about "
        f"{coefs[0].min():.1f} and {coefs[0].max():.1f} at small λ and shrink smoothly together toward "
        "zero at large λ; a path may cross the zero line, none stays on it. A dashed vertical line "
        "marks the λ with the lowest validation error.",
        notice="All coefficients shrink smoothly together; a path may cross zero but none stays there.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.axhline(0.0, color="C7", lw=1)
        for j in range(d):
            ax.plot(lambdas, coefs[:, j], color="C0" if relevant[j] else "C1",
                    ls="-" if relevant[j] else "--", lw=1.6,
                    label=None if j not in (0, d - 1) else
                    ("true coefficient ≠ 0" if relevant[j] else "true coefficient = 0"))
        ax.axvline(scores.lam_best, color="C2", ls=":", lw=1.5, label="best λ (validation)")
        log_lambda_axis(ax)
        ax.set_ylabel("coefficient value")
        ax.set_title("Ridge paths: shrink, but never to exactly 0")
        ax.legend(loc="upper right")


def draw_weights(demo, path: RidgePath, scores: Scores, w_true: np.ndarray) -> None:
    """Figure with a slider over λ: every weight of the ridge model there against the true ones,
    with the smallest |weight| (never exactly 0) and the validation error."""
    shown = sorted(set(range(0, len(path.lambdas), 2)) | {scores.i_best})
    everything = np.concatenate([w_true, path.coefs.ravel()])
    lim = (float(everything.min()) - 0.3, float(everything.max()) + 0.3)  # fixed for every frame
    idx = np.arange(N_FEATURES)

    @demo.sweep(
        "weights", path.lambdas[shown], label="penalty λ", fmt=".2g", default=shown.index(scores.i_best),
        caption=f"The {N_FEATURES} ridge weights at each λ (every other value of the path, and the best), "
        "against the true weights",
        alt=f"Markers for each of the {N_FEATURES} features: the true weight and the ridge weight. At "
        "small λ the ridge weights scatter around the true ones, the irrelevant features included; "
        "as λ grows all of them shrink together toward zero, and none reaches it",
        notice="Raise λ: every weight shrinks toward zero together, the irrelevant ones too, and the "
        "smallest |weight| stays above zero.",
        numbers=lambda k: [demo.number(scores.val_mse[shown[k]], "validation error", ".3g"),
                           demo.number(float(np.abs(path.coefs[shown[k]]).min()), "smallest |weight|", ".2g")],
    )
    def _(fig, k: int) -> None:
        i = shown[k]
        ax = fig.subplots()
        ax.axhline(0.0, color="C7", lw=1)
        ax.plot(idx, w_true, "_", color="C7", ms=14, mew=2.5, label="true")
        ax.plot(idx, path.coefs[i], "o", color="C0", ms=6, label="ridge")
        ax.set_xticks(idx, [str(j) for j in idx])
        ax.set(ylim=lim, xlabel="feature", ylabel="weight")
        ax.set_title(f"λ = {plotting.plain_label(float(f'{path.lambdas[i]:.2g}'))}"
                     + (" (best on validation)" if i == scores.i_best else ""))
        ax.legend(fontsize="small", loc="upper right")


def draw_validation(demo, path: RidgePath, scores: Scores, noise: float) -> None:
    """Figure: training and validation error (top) and the weight norm (bottom) against λ."""
    lambdas = path.lambdas

    @demo.figure(
        "validation",
        caption="Training and validation error (top) and the coefficient norm (bottom) against λ",
        alt="Two panels sharing a log λ axis. Top: training error rises steadily with λ; "
        "validation error falls a little, reaches its minimum at a middle λ, then climbs steeply. "
        "Bottom: the norm of the coefficients falls monotonically toward zero.",
        size=(6.4, 5.0),
        notice="Validation error is lowest at a middle λ while the norm keeps falling.",
    )
    def _(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.plot(lambdas, scores.train_mse, color="C0", label="train")
        top.plot(lambdas, scores.val_mse, color="C1", label="validation")
        top.plot(scores.lam_best, scores.val_mse[scores.i_best], "*", color="C3", ms=14, label="best λ")
        top.axhline(noise**2, ls=":", color="C7", label=f"noise variance {noise**2:g}")
        top.set_ylabel("mean squared error")
        top.set_title("Error and weight norm along the ridge path")
        top.legend(loc="upper left")
        bottom.plot(lambdas, path.norms, color="C2")
        bottom.set_ylabel("‖w‖")
        log_lambda_axis(bottom)


def measure(demo, path: RidgePath, scores: Scores, shape: Shape, data: Data, reps: Repeats) -> None:
    """Record the setup, the best λ, errors and norms at both ends of the path, how coefficients shrink."""
    demo.key_numbers(
        "best_lambda", "val_mse_best", "val_mse_smallest_lambda", "val_mse_largest_lambda", "repeat_middle_share")
    val_mse, norms = scores.val_mse, path.norms
    lo, hi = f"{path.lambdas[0]:g}", f"{path.lambdas[-1]:g}"
    demo.setting("n_features", N_FEATURES, label="Features", fmt=".0f")
    demo.setting("n_irrelevant", int(np.sum(data.w_true == 0)), label="Features whose true coefficient is 0",
                 fmt=".0f")
    demo.setting("feature_correlation", RHO, label="Correlation between any two features", fmt="g")
    demo.setting("n_train", len(data.y), label="Training points", fmt=".0f")
    demo.setting("lambda_min", path.lambdas[0], label="Smallest λ", fmt="g")
    demo.setting("lambda_max", path.lambdas[-1], label="Largest λ", fmt="g")
    demo.setting("n_lambdas", len(path.lambdas), label="Values of λ on the path", fmt=".0f")
    demo.setting("repeats", reps.count, label="Fresh training sets in the repeat study", fmt=".0f")
    demo.metric("repeat_best_lambda", path.lambdas[np.argmin(reps.mean_val)],
                label="Repeat study: best λ of the mean validation curve", fmt=".3g")
    demo.metric("repeat_middle_share", reps.middle_share,
                label="Repeat study: share of training sets where a middle λ validates best", fmt=".0%")
    demo.metric("best_lambda", scores.lam_best, label="Best λ (validation)", fmt=".3g")
    demo.metric("val_mse_best", val_mse[scores.i_best], label="Validation MSE at best λ", fmt=".3g")
    demo.metric("val_mse_smallest_lambda", val_mse[0], label=f"Validation MSE at λ = {lo}", fmt=".3g")
    demo.metric("val_mse_largest_lambda", val_mse[-1], label=f"Validation MSE at λ = {hi}", fmt=".3g")
    demo.metric("norm_smallest_lambda", norms[0], label=f"‖w‖ at λ = {lo}", fmt=".3g")
    demo.metric("norm_largest_lambda", norms[-1], label=f"‖w‖ at λ = {hi}", fmt=".2g")
    demo.metric("norm_ratio", shape.norm_ratio, label=f"‖w‖ at λ = {hi} / ‖w‖ at λ = {lo}", fmt=".2g")
    demo.metric("min_abs_coef", shape.min_abs, label="Smallest |wⱼ| anywhere on the path", fmt=".2g")
    demo.metric("smallest_to_largest_last", shape.smallest_to_largest_last,
                label=f"Smallest / largest |wⱼ| at λ = {hi}", fmt=".2g")
    demo.metric("sign_changes", shape.sign_changes, label="Times a path crosses zero", fmt=".0f")
    demo.metric("ort_max_abs_diff", scores.ort_diff, label="Max |ONNX Runtime − NumPy| prediction",
                fmt=".1e")


def claim_findings(demo, path: RidgePath, scores: Scores, shape: Shape, reps: Repeats) -> None:
    """Findings: a middle λ validates best, on average and in most training sets. Checks (properties
    of ridge): no coefficient is ever exactly zero, the norm falls monotonically, ORT matches NumPy."""
    norms, n_rep = path.norms, reps.count
    i_mean = int(np.argmin(reps.mean_val))
    demo.claim(
        f"Averaged over {n_rep} fresh training sets, a middle λ gives the lowest validation error: lower "
        "than both the weakest and the strongest penalty on the path",
        holds=bool(0 < i_mean < len(path.lambdas) - 1),
        best_lambda=float(path.lambdas[i_mean]),
        mean_val_mse_best=demo.number(reps.mean_val[i_mean], "mean validation error at the best λ"),
        mean_val_mse_smallest_lambda=demo.number(reps.mean_val[0], "at the smallest λ"),
        mean_val_mse_largest_lambda=demo.number(reps.mean_val[-1], "at the largest λ"),
    )
    demo.claim(
        "In most training sets a middle λ validates best",
        holds=bool(reps.middle_share > 0.5),
        share=demo.number(reps.middle_share, "share of training sets where a middle λ validates best", fmt=".0%"),
        this_run_best_lambda=demo.number(scores.lam_best, "best λ in this run"),
    )
    demo.check(
        "No coefficient is exactly zero at any λ, even those whose true value is zero",
        holds=bool(shape.min_abs > 0.0),
        min_abs_coef=shape.min_abs,
        smallest_to_largest_at_largest_lambda=shape.smallest_to_largest_last,
    )
    demo.check(
        "The coefficient norm falls monotonically as λ grows",
        holds=bool(np.all(np.diff(norms) < 0)),
        norm_smallest_lambda=norms[0],
        norm_largest_lambda=norms[-1],
    )
    demo.check(
        "ONNX Runtime matches NumPy on every model of the path",
        holds=bool(scores.ort_diff < 1e-4),
        max_abs_diff=scores.ort_diff,
    )
