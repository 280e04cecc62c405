"""Lasso versus ridge on data where only a few features matter: exact zeros and coefficient paths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, linear, polynomial
from matplotlib.ticker import MaxNLocator
from onnx import numpy_helper

N_VAL, N_TEST = 240, 100
MIN_RUN = 3  # consecutive λ values of the path that must recover the support exactly


@dataclass
class Paths:
    """Lasso and ridge fitted over a sweep of λ, strongest penalty first."""

    lasso_lams: np.ndarray
    lasso: list[linear.LinearModel]
    ridge_lams: np.ndarray
    ridge: list[linear.LinearModel]


@dataclass
class Choice:
    """Validation and test error along both paths (from ORT), and the λ each method picks."""

    val_lasso: np.ndarray
    val_ridge: np.ndarray
    test: np.ndarray  # lasso columns, then ridge columns
    i_l: int  # column of the chosen lasso model
    i_r: int  # column of the chosen ridge model (offset by n_lambdas)
    w_lasso: np.ndarray  # the exported float32 weights of the chosen models
    w_ridge: np.ndarray


@dataclass
class Sparsity:
    """Exact zeros along both paths and at the chosen λ."""

    coef_l: np.ndarray  # lasso coefficients along the path, (n_lambdas, d)
    coef_r: np.ndarray
    lasso_zero_irrelevant: int
    lasso_kept_relevant: int
    ridge_zeros_best: int
    ridge_zeros_path: int
    ridge_min_abs: float
    n_zero_path_l: np.ndarray
    exact_support: np.ndarray  # lasso path points that keep exactly the true features
    recovery: np.ndarray  # the longest run of consecutive path points where that happens (its λ values)
    largest_false: float
    smallest_true: float


def run(demo) -> None:
    opts = demo.options
    d = int(opts.get("d", 20))
    k = int(opts.get("k", 4))
    n_train = int(opts.get("n_train", 150))
    n_lambdas = int(opts.get("n_lambdas", 40))

    data, w_true = make_data(demo.rng, d, k, n_train)
    relevant = w_true != 0
    paths = fit_paths(data, n_lambdas)
    sess, W_onnx = export(demo, paths, d, n_lambdas)
    choice = choose(sess, W_onnx, data, n_lambdas)
    sp = sparsity(paths, choice, W_onnx, relevant, n_lambdas)
    ex_lasso, ex_ridge = worked_example()

    draw_paths(demo, paths, sp, choice, relevant, d, k, n_lambdas)
    draw_coefficients(demo, paths, sp, choice, w_true, d)
    draw_zeros_and_error(demo, paths, sp, choice, d, k)
    measure(demo, paths, sp, choice, d, k, n_train, n_lambdas)
    claim_findings(demo, paths, sp, choice, ex_lasso, ex_ridge, d, k, n_lambdas)


def make_data(rng, d: int, k: int, n_train: int):
    """d standard-normal features, only k with nonzero true weights."""
    # n_train training points, N_VAL for validation (choosing λ) and N_TEST held out for the final test.
    X, y, w_true = datasets.sparse_linear(rng, n_train + N_VAL + N_TEST, d, k=k, noise=1.0)
    data = datasets.split(rng, X, y, val=N_VAL / len(y), test=N_TEST / len(y))
    return data, w_true


def fit_paths(data, n_lambdas: int) -> Paths:
    """The lasso path (warm-started coordinate descent) and the ridge path."""
    Xt, yt = data.X_train, data.y_train
    # Lasso path by warm-started coordinate descent, from λ_max (all weights zero) down.
    lam_max = float(np.max(np.abs((Xt - Xt.mean(0)).T @ (yt - yt.mean()))) / len(yt))
    lasso_lams = lam_max * np.logspace(0.05, -3.0, n_lambdas)  # starts just above λ_max
    lasso_path, w = [], None
    for lam in lasso_lams:
        m = linear.lasso(Xt, yt, float(lam), coef_init=w, tol=1e-9)
        w = m.coef
        lasso_path.append(m)
    # Ridge path over a wide grid (same objective scaling: lam/2 * ||w||^2).
    ridge_lams = np.logspace(3.0, -3.0, n_lambdas)
    ridge_path = [linear.ridge(Xt, yt, float(lam)) for lam in ridge_lams]
    return Paths(lasso_lams, lasso_path, ridge_lams, ridge_path)


def export(demo, paths: Paths, d: int, n_lambdas: int):
    """Both whole paths in one ONNX graph: columns 0..L-1 lasso, L..2L-1 ridge."""
    graph = polynomial.export_linear_sweep(
        paths.lasso + paths.ridge, n_features=d, name="lasso_and_ridge_paths",
        doc_string=f"Columns 0..{n_lambdas - 1}: lasso path; {n_lambdas}..: ridge path")
    model = demo.make_model(graph)
    sess = demo.onnx("lasso_ridge_paths", model)
    W_onnx = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "W"))
    return sess, W_onnx


def choose(sess, W_onnx: np.ndarray, data, n_lambdas: int) -> Choice:
    """Score every model in ONNX Runtime and pick each method's λ on the validation data."""
    val = _mse(sess, data.X_val, data.y_val)
    test = _mse(sess, data.X_test, data.y_test)
    val_lasso, val_ridge = val[:n_lambdas], val[n_lambdas:]
    i_l, i_r = int(np.argmin(val_lasso)), n_lambdas + int(np.argmin(val_ridge))
    return Choice(val_lasso, val_ridge, test, i_l, i_r, W_onnx[:, i_l], W_onnx[:, i_r])


def sparsity(paths: Paths, choice: Choice, W_onnx: np.ndarray, relevant: np.ndarray, n_lambdas: int) -> Sparsity:
    """Count exact zeros on both paths, and where the lasso keeps exactly the true features."""
    coef_paths_l = np.array([m.coef for m in paths.lasso])
    coef_paths_r = np.array([m.coef for m in paths.ridge])
    w_lasso, w_ridge = choice.w_lasso, choice.w_ridge
    exact_support = np.array([np.array_equal(c != 0, relevant) for c in coef_paths_l])
    return Sparsity(
        coef_l=coef_paths_l,
        coef_r=coef_paths_r,
        lasso_zero_irrelevant=int(np.sum(w_lasso[~relevant] == 0)),
        lasso_kept_relevant=int(np.sum(w_lasso[relevant] != 0)),
        ridge_zeros_best=int(np.sum(w_ridge == 0)),
        ridge_zeros_path=int(np.sum(W_onnx[:, n_lambdas:] == 0)),
        ridge_min_abs=float(np.min(np.abs(coef_paths_r))),
        n_zero_path_l=np.sum(coef_paths_l == 0, axis=1),
        exact_support=exact_support,
        recovery=paths.lasso_lams[_longest_run(exact_support)],
        largest_false=float(np.max(np.abs(w_lasso[~relevant]))),
        smallest_true=float(np.min(np.abs(w_lasso[relevant]))),
    )


def worked_example() -> tuple[np.ndarray, np.ndarray]:
    """The page's example: orthogonal features (X^T X = n I), least-squares coefficients
    (3.0, -0.8, 0.2); lasso with λ = 0.5 and ridge with λ = 1 (which halves every coefficient)."""
    h = np.array([[1.0]])
    for _ in range(3):
        h = np.block([[h, h], [h, -h]])  # 8 x 8 Hadamard matrix
    X = h[:, 1:4]  # three orthogonal ±1 columns with mean 0, so X^T X = 8 I
    w_ls = np.array([3.0, -0.8, 0.2])
    y = X @ w_ls + 0.3 * h[:, 5]  # add a residual orthogonal to the features
    lasso = linear.lasso(X, y, 0.5, tol=1e-12).coef
    ridge = linear.ridge(X, y, 1.0).coef
    return lasso, ridge


def draw_paths(demo, paths: Paths, sp: Sparsity, choice: Choice, relevant, d, k, n_lambdas) -> None:
    """Figure: lasso and ridge coefficient paths side by side."""

    @demo.figure(
        "paths",
        caption=f"Coefficient paths: {k} true features in colour, {d - k} irrelevant ones in "
        "grey; dotted line = λ chosen on validation data",
        alt="Two panels of coefficients against λ, strong penalty on the left. Lasso: every "
        "coefficient starts at exactly zero; the true features leave zero first and the grey "
        "irrelevant ones stay at zero until λ is small. Ridge: all coefficients grow smoothly "
        "from near zero together, none is ever exactly zero.",
        size=(6.4, 3.6),
        notice="Lasso coefficients sit at exactly zero until λ is small; ridge coefficients are never exactly zero.",
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2, sharey=True)
        _path_panel(left, paths.lasso_lams, sp.coef_l, choice.i_l, "Lasso (L1)", relevant)
        _path_panel(right, paths.ridge_lams, sp.coef_r, choice.i_r - n_lambdas, "Ridge (L2)", relevant)
        left.set_ylabel("coefficient")


def draw_coefficients(demo, paths: Paths, sp: Sparsity, choice: Choice, w_true: np.ndarray, d: int) -> None:
    """Figure with a slider over the lasso's λ: its weights there, against the true weights and
    ridge's weights at the λ ridge picks on validation data."""
    shown = sorted(set(range(0, len(paths.lasso_lams), 3)) | {choice.i_l})
    everything = np.concatenate([w_true, sp.coef_l.ravel(), choice.w_ridge])
    lim = (float(everything.min()) - 0.3, float(everything.max()) + 0.3)  # fixed for every frame

    @demo.sweep(
        "coefficients", paths.lasso_lams[shown], label="lasso penalty λ", fmt=".3g",
        default=shown.index(choice.i_l),
        caption="The lasso's weights at each λ of its path (strong to weak), against the true weights "
        "and ridge's weights at the λ ridge picks on validation data",
        alt=f"Markers for each of the {d} features. At the strongest λ every lasso weight is exactly "
        "zero; as λ weakens the true features leave zero first, and near the λ chosen on validation "
        "data the irrelevant features mostly stay at exactly zero while every ridge weight is small "
        "but nonzero",
        notice="Weaken λ: the true features leave zero first; on the irrelevant ones the lasso stays at "
        "exactly zero long after, while ridge's weights are never exactly zero.",
        numbers=lambda j: [demo.number(float(sp.n_zero_path_l[shown[j]]), "weights exactly zero", ".0f"),
                           demo.number(choice.val_lasso[shown[j]], "validation error", ".3g")],
    )
    def _(fig, j: int) -> None:
        i, idx = shown[j], np.arange(d)
        ax = fig.subplots()
        ax.axhline(0.0, color="C7", lw=1)
        ax.plot(idx, w_true, "_", color="C7", ms=14, mew=2.5, label="true")
        zero = sp.coef_l[i] == 0
        ax.plot((idx - 0.18)[~zero], sp.coef_l[i][~zero], "o", color="C0", ms=5, label="lasso")
        ax.plot((idx - 0.18)[zero], sp.coef_l[i][zero], "o", mfc="none", color="C0", ms=5,
                label="lasso, exactly 0")
        ax.plot(idx + 0.18, choice.w_ridge, "s", color="C1", ms=4, alpha=0.6, label="ridge (its best λ)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(ylim=lim, xlabel="feature", ylabel="weight")
        ax.set_title(f"Lasso at λ = {paths.lasso_lams[i]:.3g}" + (" (chosen)" if i == choice.i_l else ""))
        ax.legend(fontsize="small", ncols=2, loc="best")


def draw_zeros_and_error(demo, paths: Paths, sp: Sparsity, choice: Choice, d: int, k: int) -> None:
    """Figure: exact zeros and validation error along the lasso path."""
    recovery, val_lasso, i_l = sp.recovery, choice.val_lasso, choice.i_l

    @demo.figure(
        "zeros-and-error",
        caption="Lasso along its path: exact zeros and validation error (shaded: λ values "
        "that keep exactly the true features)",
        alt=f"Two stacked panels against log10 λ, strong penalty on the left. Top: the lasso "
        f"has all {d} weights at exactly zero for the strongest λ and fewer as λ weakens, "
        f"passing through exactly {d - k} over the shaded range; ridge has no exact zeros at any λ. "
        "Bottom: the lasso's validation error falls steeply as λ weakens, with its minimum marked "
        "by a star; a dashed line marks ridge's best validation error.",
        size=(6.4, 5.0),
        notice="Over the shaded range the lasso keeps exactly the true features.",
    )
    def _(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        t = np.log10(paths.lasso_lams)
        for ax in (top, bottom):
            if recovery.size:
                ax.axvspan(np.log10(recovery.max()), np.log10(recovery.min()), color="C2",
                           alpha=0.15, lw=0)
        top.plot(t, sp.n_zero_path_l, "o-", color="C0", ms=3, label="lasso")
        top.axhline(0, color="C1", label="ridge (any λ)")
        top.axhline(d - k, ls=":", color="C7", label="irrelevant features")
        top.set_ylabel("weights exactly 0")
        top.set_title("Exact zeros and validation error along the lasso path")
        top.legend(fontsize="small", loc="center right")
        bottom.plot(t, val_lasso, color="C0", label="lasso")
        bottom.plot(t[i_l], val_lasso[i_l], "*", color="C3", ms=13, label="lowest")
        bottom.axhline(choice.val_ridge.min(), ls="--", color="C1", label="best ridge")
        bottom.set_ylim(0.0, 3.0 * val_lasso.min())  # the strongest λ (all zero) is off the top
        bottom.set_ylabel("validation MSE")
        bottom.set_xlabel("log₁₀ λ (strong → weak)")
        bottom.legend(fontsize="small", loc="lower right", ncols=3)
        bottom.invert_xaxis()


def measure(demo, paths: Paths, sp: Sparsity, choice: Choice, d, k, n_train, n_lambdas) -> None:
    """Record the setup, the chosen λ values, exact zeros and test errors."""
    demo.key_numbers("lasso_kept_relevant", "lasso_zero_irrelevant", "ridge_zeros", "lasso_test_mse", "ridge_test_mse")
    recovery = sp.recovery
    demo.setting("n_features", d, label="Features", fmt=".0f")
    demo.setting("n_true_features", k, label="Features with a nonzero true weight", fmt=".0f")
    demo.setting("n_irrelevant", d - k, label="Irrelevant features", fmt=".0f")
    demo.setting("n_train", n_train, label="Training points", fmt=".0f")
    demo.setting("n_lambdas", n_lambdas, label="Values of λ on each path", fmt=".0f")
    demo.metric("lasso_recovery_points", recovery.size,
                label="Consecutive λ values on the path with exactly the true features", fmt=".0f")
    demo.metric("lasso_recovery_factor", recovery.max() / recovery.min() if recovery.size else 0.0,
                label="Width of that range: largest / smallest λ", fmt=".2g")
    demo.metric("lasso_best_lambda", paths.lasso_lams[choice.i_l], label="Lasso λ (validation)", fmt=".3g")
    demo.metric("ridge_best_lambda", paths.ridge_lams[choice.i_r - n_lambdas], label="Ridge λ (validation)",
                fmt=".3g")
    demo.metric("lasso_zero_irrelevant", sp.lasso_zero_irrelevant,
                label="Lasso: irrelevant weights exactly 0", fmt=".0f")
    demo.metric("lasso_kept_relevant", sp.lasso_kept_relevant, label="Lasso: true features kept",
                fmt=".0f")
    demo.metric("lasso_recovery_lambda_low", recovery.min() if recovery.size else 0.0,
                label="Smallest λ with exactly the true features", fmt=".3g")
    demo.metric("lasso_recovery_lambda_high", recovery.max() if recovery.size else 0.0,
                label="Largest λ with exactly the true features", fmt=".3g")
    demo.metric("lasso_largest_irrelevant_weight", sp.largest_false,
                label="Lasso: largest irrelevant |weight| at chosen λ", fmt=".2g")
    demo.metric("ridge_zeros", sp.ridge_zeros_best, label="Ridge: weights exactly 0", fmt=".0f")
    demo.metric("ridge_min_abs_weight", sp.ridge_min_abs,
                label="Ridge: smallest |weight| anywhere on its path", fmt=".2g")
    demo.metric("lasso_test_mse", choice.test[choice.i_l], label="Lasso: test MSE", fmt=".3g")
    demo.metric("ridge_test_mse", choice.test[choice.i_r], label="Ridge: test MSE", fmt=".3g")


def claim_findings(demo, paths: Paths, sp: Sparsity, choice: Choice, ex_lasso, ex_ridge, d, k,
                   n_lambdas) -> None:
    """Claims: the lasso recovers the support, its chosen λ is weaker, ridge never zeros; worked example."""
    recovery = sp.recovery
    demo.claim(
        f"Over a contiguous range of λ (at least {MIN_RUN} consecutive values of the path) the lasso "
        f"keeps exactly the {k} true features and sets all {d - k} irrelevant weights exactly to zero",
        holds=bool(recovery.size >= MIN_RUN),
        consecutive_values=demo.number(recovery.size, "consecutive λ values with exactly the true features"),
        values_in_all=demo.number(int(sp.exact_support.sum()), "λ values with exactly the true features, in all"),
        lambda_low=demo.number(float(recovery.min()) if recovery.size else 0.0, "smallest such λ"),
        lambda_high=demo.number(float(recovery.max()) if recovery.size else 0.0, "largest such λ"),
    )
    demo.claim(
        "The λ with the lowest validation error keeps every true feature, and any irrelevant weights "
        "it lets back in are all smaller than every true one",
        holds=bool(sp.lasso_kept_relevant == k and sp.largest_false < sp.smallest_true),
        irrelevant_exactly_zero=demo.number(sp.lasso_zero_irrelevant, "irrelevant features set exactly to zero"),
        irrelevant=demo.number(d - k, "irrelevant features"),
        largest_irrelevant_weight=demo.number(sp.largest_false, "largest irrelevant weight"),
        smallest_true_weight=demo.number(sp.smallest_true, "smallest true weight"),
    )
    demo.check(
        f"Ridge sets no weight exactly to zero, at any of the {n_lambdas} values of λ",
        holds=bool(sp.ridge_zeros_path == 0),
        exact_zeros_on_path=sp.ridge_zeros_path,
        smallest_abs_weight=sp.ridge_min_abs,
    )
    demo.check(
        "Worked example (orthogonal features, least squares (3.0, −0.8, 0.2)): lasso with "
        "λ = 0.5 gives (2.5, −0.3, 0); halving ridge gives (1.5, −0.4, 0.1)",
        holds=bool(np.allclose(ex_lasso, [2.5, -0.3, 0.0], atol=1e-9) and ex_lasso[2] == 0.0
                   and np.allclose(ex_ridge, [1.5, -0.4, 0.1], atol=1e-9)),
        lasso_1=ex_lasso[0], lasso_2=ex_lasso[1], lasso_3=ex_lasso[2],
        ridge_1=ex_ridge[0], ridge_2=ex_ridge[1], ridge_3=ex_ridge[2],
    )


def _longest_run(mask: np.ndarray) -> slice:
    """The longest run of consecutive True entries (an empty slice if there is none)."""
    best, start = slice(0, 0), None
    for i, v in enumerate([*mask, False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            best = max(best, slice(start, i), key=lambda s: s.stop - s.start)
            start = None
    return best


def _mse(sess, Xp: np.ndarray, yp: np.ndarray) -> np.ndarray:
    """Mean squared error of every column of the exported sweep."""
    return np.mean((polynomial.run_sweep(sess, Xp) - yp[:, None]) ** 2, axis=0)


def _path_panel(ax, lams, paths, best, title, relevant) -> None:
    """One panel of coefficient paths: true features in colour, irrelevant ones in grey."""
    # log10(λ) on a linear axis: the same picture as a log axis, much cheaper to draw
    t = np.log10(lams)
    ax.plot(t, paths[:, ~relevant], color="C7", lw=0.9, alpha=0.7)
    for c, j in enumerate(np.flatnonzero(relevant)):
        ax.plot(t, paths[:, j], color=f"C{c}", lw=2)
    ax.axvline(t[best], ls=":", color="C7")
    ax.invert_xaxis()
    ax.set_xlabel("log₁₀ λ (strong → weak)")
    ax.set_title(title)
