"""Elastic net versus lasso on a group of strongly correlated features that all matter.

Four features are noisy copies of one hidden signal and each carries the same true weight; six
independent features carry none. The lasso tends to pick one or two members of the group and
drop the rest, and which member it leans on changes from one training set to the next; the
elastic net (half L1, half L2) keeps the whole group with similar weights. Both whole paths of
the run's own training set are one ONNX graph; a repeat study on fresh training sets (NumPy)
measures how often each method keeps the group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import elastic_net as en
from demolib import linear, polynomial
from matplotlib.ticker import MaxNLocator

GROUP, N_OTHER = 4, 6  # correlated features that matter, independent ones that do not
SPREAD = 0.2  # each group member = hidden signal + SPREAD * its own noise
W_GROUP = 1.0  # true weight of every group member
L1_RATIO = 0.5  # the elastic net's mix: half L1, half L2
N_VAL, N_TEST = 300, 300
DECADES = 2.0  # each path runs from λ_max down to λ_max / 10^DECADES
FEW, MOST = 0.3, 0.6  # "few" / "most" training sets in the repeat study's findings
ONE_MEMBER, EVEN = 0.5, 0.4  # the largest member's share of the group's weight: lasso above, net below


@dataclass
class Data:
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@dataclass
class Paths:
    """Both paths on the run's training set; row k of a path is the fit with λ = lams[k]."""
    lams: dict[str, np.ndarray]
    coefs: dict[str, np.ndarray]  # (L, d)
    intercepts: dict[str, np.ndarray]  # (L,)


@dataclass
class Chosen:
    """The λ each method picks on validation data (ONNX Runtime) and what it keeps."""
    index: dict[str, int]
    weights: dict[str, np.ndarray]
    kept: dict[str, int]  # group members with a nonzero weight
    val_mse: dict[str, np.ndarray]
    test_mse: dict[str, float]
    ort_diff: float


@dataclass
class Repeats:
    """Fresh training sets, each method's λ picked on the shared validation set (NumPy)."""
    kept: dict[str, np.ndarray]  # group members kept, per training set
    top_share: dict[str, np.ndarray]  # largest member's share of the group's total |weight|
    top_member: np.ndarray  # which group member carries the lasso's largest weight
    count: int


def run(demo) -> None:
    opts = demo.options
    n_train = int(opts.get("n_train", 40))
    noise = float(opts.get("noise", 3.0))
    n_lambdas = int(opts.get("n_lambdas", 30))
    repeats = int(opts.get("repeats", 50))

    data = make_data(demo.rng, n_train, noise)
    paths = fit_paths(data, n_lambdas)
    sess = export(demo, paths)
    chosen = choose_on_validation(sess, paths, data)
    reps = repeat_on_fresh_sets(demo.rng, n_train, noise, n_lambdas, repeats, data)
    optimality = kkt_violation(data, paths, chosen)
    example = duplicated_feature_example()

    draw_paths(demo, paths, chosen)
    draw_weights(demo, chosen)
    draw_repeats(demo, reps)
    measure(demo, chosen, reps, paths, n_train, noise, n_lambdas)
    claim_findings(demo, reps)
    check_solver(demo, chosen, optimality, example)


def make_data(rng: np.random.Generator, n_train: int, noise: float) -> Data:
    """Training, validation and test sets from the same distribution."""
    X, y = draw(rng, n_train, noise)
    X_val, y_val = draw(rng, N_VAL, noise)
    X_test, y_test = draw(rng, N_TEST, noise)
    return Data(X, y, X_val, y_val, X_test, y_test)


def draw(rng: np.random.Generator, n: int, noise: float, sets: tuple[int, ...] = ()):
    """``n`` points (``sets`` leading axes for many training sets at once): the group is one hidden
    signal plus a little noise per member; y sums the group plus noise."""
    hidden = rng.standard_normal((*sets, n, 1))
    group = hidden + SPREAD * rng.standard_normal((*sets, n, GROUP))
    X = np.concatenate([group, rng.standard_normal((*sets, n, N_OTHER))], axis=-1)
    y = W_GROUP * group.sum(axis=-1) + noise * rng.standard_normal((*sets, n))
    return X, y


def lambda_grid(c: np.ndarray, l1_ratio: float, n_lambdas: int) -> np.ndarray:
    """From λ_max (all weights zero) down DECADES decades, for each problem."""
    return en.lam_max(c, l1_ratio)[..., None] * np.logspace(0.0, -DECADES, n_lambdas)


def fit_paths(data: Data, n_lambdas: int) -> Paths:
    """Lasso (L1 ratio 1) and elastic-net paths by coordinate descent."""
    G, c, xm, ym = en.moments(data.X, data.y)
    lams, coefs, icpt = {}, {}, {}
    for name, ratio in (("lasso", 1.0), ("net", L1_RATIO)):
        lams[name] = lambda_grid(c, ratio, n_lambdas)
        coefs[name] = en.path(G, c, lams[name], ratio, tol=1e-10)
        icpt[name] = en.intercepts(coefs[name], xm, ym)
    return Paths(lams, coefs, icpt)


def export(demo, paths: Paths):
    """Both paths in one ONNX graph: the lasso's columns first, then the elastic net's."""
    W = np.vstack([paths.coefs["lasso"], paths.coefs["net"]])
    b = np.concatenate([paths.intercepts["lasso"], paths.intercepts["net"]])
    models = [linear.LinearModel(w, float(c)) for w, c in zip(W, b, strict=True)]
    L = len(paths.lams["lasso"])
    graph = polynomial.export_linear_sweep(
        models, n_features=W.shape[1], name="lasso_and_elastic_net_paths",
        doc_string=f"Columns 0..{L - 1}: lasso path; {L}..{2 * L - 1}: elastic-net path (L1 ratio {L1_RATIO})")
    return demo.onnx("lasso_elastic_net_paths", demo.make_model(graph))


def choose_on_validation(sess, paths: Paths, data: Data) -> Chosen:
    """Score every fit in ONNX Runtime; each method keeps its λ with the lowest validation error."""
    L = len(paths.lams["lasso"])
    val = _mse(polynomial.run_sweep(sess, data.X_val), data.y_val)
    test = _mse(polynomial.run_sweep(sess, data.X_test), data.y_test)
    W = np.vstack([paths.coefs["lasso"], paths.coefs["net"]])
    b = np.concatenate([paths.intercepts["lasso"], paths.intercepts["net"]])
    pred_np = data.X_test @ W.T + b
    ort_diff = float(np.max(np.abs(polynomial.run_sweep(sess, data.X_test) - pred_np)) / np.max(np.abs(pred_np)))
    index, weights, kept, val_mse, test_mse = {}, {}, {}, {}, {}
    for offset, name in ((0, "lasso"), (L, "net")):
        val_mse[name] = val[offset:offset + L]
        index[name] = int(np.argmin(val_mse[name]))
        weights[name] = paths.coefs[name][index[name]]
        kept[name] = int(np.sum(weights[name][:GROUP] != 0))
        test_mse[name] = float(test[offset + index[name]])
    return Chosen(index, weights, kept, val_mse, test_mse, ort_diff)


def repeat_on_fresh_sets(rng, n_train: int, noise: float, n_lambdas: int, repeats: int, data: Data) -> Repeats:
    """Both methods on many fresh training sets at once; λ picked on the run's validation set."""
    X, y = draw(rng, n_train, noise, (repeats,))
    G, c, xm, ym = en.moments(X, y)
    kept, share = {}, {}
    for name, ratio in (("lasso", 1.0), ("net", L1_RATIO)):
        W = en.path(G, c, lambda_grid(c, ratio, n_lambdas), ratio, tol=1e-6)  # (R, L, d)
        pred = np.einsum("nd,rld->rln", data.X_val, W) + en.intercepts(W, xm, ym)[..., None]
        best = W[np.arange(repeats), np.argmin(np.mean((pred - data.y_val) ** 2, axis=-1), axis=1)]
        group = np.abs(best[:, :GROUP])
        kept[name] = np.sum(group != 0, axis=1)
        share[name] = group.max(axis=1) / np.maximum(group.sum(axis=1), 1e-300)
        if name == "lasso":
            top = np.argmax(group, axis=1)
    return Repeats(kept, share, top, repeats)


def kkt_violation(data: Data, paths: Paths, chosen: Chosen) -> float:
    """Largest violation of the optimality conditions at both chosen fits (zero at the exact optimum)."""
    G, c, _, _ = en.moments(data.X, data.y)
    worst = 0.0
    for name, ratio in (("lasso", 1.0), ("net", L1_RATIO)):
        lam, w = paths.lams[name][chosen.index[name]], chosen.weights[name]
        grad = c - G @ w - lam * (1.0 - ratio) * w  # must equal lam*ratio*sign(w) where w != 0
        on = w != 0
        worst = max(worst, float(np.max(np.abs(grad[on] - lam * ratio * np.sign(w[on])), initial=0.0)),
                    float(np.max(np.abs(grad[~on]) - lam * ratio, initial=-np.inf)))
    return worst


def duplicated_feature_example() -> dict[str, np.ndarray]:
    """The page's example: a feature entered twice, y = 2x, λ = 1 for both methods."""
    x = np.array([1.0, -1.0] * 4)  # mean 0, variance 1
    X, y = np.column_stack([x, x]), 2.0 * x
    G, c, _, _ = en.moments(X, y)
    return {name: en.path(G, c, np.array([1.0]), ratio, tol=1e-14)[0]
            for name, ratio in (("lasso", 1.0), ("net", L1_RATIO))}


def draw_paths(demo, paths: Paths, chosen: Chosen) -> None:
    """Figure: coefficient paths of both methods, group members in colour."""

    @demo.figure(
        "paths",
        caption=f"Coefficient paths on one training set: the {GROUP} correlated features in colour, "
        f"the {N_OTHER} irrelevant ones in grey; dotted line = λ chosen on validation data",
        alt=f"Two panels of coefficients against λ, strong penalty on the left. Lasso: the correlated "
        f"features leave zero one after another and their weights stay uneven; at the chosen λ it keeps "
        f"{chosen.kept['lasso']} of the {GROUP}. Elastic net: the correlated features rise close together; "
        f"at its chosen λ it keeps {chosen.kept['net']} of the {GROUP}.",
        size=(6.4, 3.6),
        notice="The lasso's correlated features enter one by one; the elastic net's rise together.",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, 2, sharey=True)
        for ax, name, title in zip(axes, ("lasso", "net"), ("Lasso", f"Elastic net (L1 ratio {L1_RATIO:g})"),
                                   strict=True):
            t = np.log10(paths.lams[name] / paths.lams[name][0])
            ax.plot(t, paths.coefs[name][:, GROUP:], color="C7", lw=0.9, alpha=0.7)
            for j in range(GROUP):
                ax.plot(t, paths.coefs[name][:, j], color=f"C{j}", lw=2)
            ax.axvline(t[chosen.index[name]], ls=":", color="C7")
            ax.axhline(W_GROUP, ls="--", color="C7", lw=1)
            ax.invert_xaxis()
            ax.set_xlabel("log₁₀ (λ / λ max)")
            ax.set_title(title)
        axes[0].set_ylabel("coefficient")


def draw_weights(demo, chosen: Chosen) -> None:
    """Figure: the chosen weights of both methods against the true weights."""
    d = GROUP + N_OTHER

    @demo.figure(
        "weights",
        caption="Weights at the λ each method picks on validation data, against the true weights",
        alt=f"Markers for each of the {d} features. On the {GROUP} correlated features, whose true "
        f"weight is {W_GROUP:g}, the lasso keeps {chosen.kept['lasso']} with uneven weights; the elastic "
        f"net keeps {chosen.kept['net']} with similar weights. On the other features both stay near zero.",
        notice="The lasso piles the group's weight on few members; the elastic net shares it out.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        idx = np.arange(d)
        truth = np.r_[np.full(GROUP, W_GROUP), np.zeros(N_OTHER)]
        ax.axvspan(-0.5, GROUP - 0.5, color="C2", alpha=0.12, lw=0)
        ax.axhline(0.0, color="C7", lw=1)
        ax.plot(idx, truth, "_", color="C7", ms=14, mew=2.5, label="true")
        ax.plot(idx - 0.18, chosen.weights["lasso"], "o", color="C0", ms=6, label="lasso")
        ax.plot(idx + 0.18, chosen.weights["net"], "s", color="C1", ms=6, label="elastic net")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("feature (shaded: the correlated group)")
        ax.set_ylabel("weight")
        ax.set_title("Chosen models, feature by feature")
        ax.legend(fontsize="small", ncols=3, loc="upper right")


def draw_repeats(demo, reps: Repeats) -> None:
    """Figure: how many group members each method keeps, over the fresh training sets."""
    share_l, share_n = np.mean(reps.kept["lasso"] == GROUP), np.mean(reps.kept["net"] == GROUP)

    @demo.figure(
        "kept",
        caption=f"How many of the {GROUP} correlated features each method keeps, over {reps.count} "
        "fresh training sets (λ chosen on validation data each time)",
        alt=f"Bar chart over the number of group members kept, 0 to {GROUP}. The elastic net keeps all "
        f"{GROUP} in {share_n:.0%} of the training sets; the lasso keeps all {GROUP} in {share_l:.0%} and "
        f"most often {int(np.bincount(reps.kept['lasso']).argmax())}.",
        notice="The elastic net almost always keeps the whole group; the lasso rarely does.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        k = np.arange(GROUP + 1)
        for off, name, label, color in ((-0.2, "lasso", "lasso", "C0"), (0.2, "net", "elastic net", "C1")):
            ax.bar(k + off, np.bincount(reps.kept[name], minlength=GROUP + 1), width=0.4, color=color, label=label)
        ax.set_xticks(k)
        ax.set_xlabel("correlated features kept")
        ax.set_ylabel("training sets")
        ax.set_title("Keeping the group, set after set")
        ax.legend(fontsize="small", loc="upper left")


def measure(demo, chosen: Chosen, reps: Repeats, paths: Paths, n_train, noise, n_lambdas) -> None:
    """Record the setup, the run's chosen models and the repeat study's rates."""
    demo.key_numbers("repeat_net_all_share", "repeat_lasso_all_share", "repeat_lasso_top_share",
                     "repeat_net_top_share", "lasso_test_mse", "net_test_mse")
    group_corr = 1.0 / (1.0 + SPREAD**2)
    demo.setting("n_group", GROUP, label="Correlated features, each with a true weight", fmt=".0f")
    demo.setting("w_group", W_GROUP, label="True weight of each correlated feature", fmt="g")
    demo.setting("group_corr", group_corr, label="Correlation between two group members", fmt=".2f")
    demo.setting("n_other", N_OTHER, label="Independent features with true weight 0", fmt=".0f")
    demo.setting("n_train", n_train, label="Training points", fmt=".0f")
    demo.setting("noise_sd", noise, label="Noise standard deviation", fmt="g")
    demo.setting("l1_ratio", L1_RATIO, label="Elastic net: share of the penalty that is L1", fmt="g")
    demo.setting("n_lambdas", n_lambdas, label="Values of λ on each path", fmt=".0f")
    demo.setting("repeats", reps.count, label="Fresh training sets in the repeat study", fmt=".0f")
    demo.setting("few_share", FEW, label="'Few': at most this share of the training sets", fmt=".0%")
    demo.setting("most_share", MOST, label="'Most': at least this share of the training sets", fmt=".0%")
    demo.metric("lasso_kept", chosen.kept["lasso"], label="This run: group members the lasso keeps", fmt=".0f")
    demo.metric("net_kept", chosen.kept["net"], label="This run: group members the elastic net keeps", fmt=".0f")
    demo.metric("lasso_lambda", paths.lams["lasso"][chosen.index["lasso"]], label="Lasso λ (validation)", fmt=".3g")
    demo.metric("net_lambda", paths.lams["net"][chosen.index["net"]], label="Elastic-net λ (validation)", fmt=".3g")
    demo.metric("lasso_test_mse", chosen.test_mse["lasso"], label="This run: lasso test MSE", fmt=".3g")
    demo.metric("net_test_mse", chosen.test_mse["net"], label="This run: elastic-net test MSE", fmt=".3g")
    demo.metric("noise_variance", noise**2, label="Noise variance (the best possible test MSE)", fmt=".3g")
    for name, who in (("lasso", "lasso"), ("net", "elastic net")):
        demo.metric(f"repeat_{name}_all_share", float(np.mean(reps.kept[name] == GROUP)),
                    label=f"Repeat study: share of training sets where the {who} keeps the whole group", fmt=".0%")
        demo.metric(f"repeat_{name}_median_kept", float(np.median(reps.kept[name])),
                    label=f"Repeat study: median group members the {who} keeps", fmt="g")
        demo.metric(f"repeat_{name}_top_share", float(np.median(reps.top_share[name])),
                    label=f"Repeat study: median share of the group's weight on the {who}'s largest member",
                    fmt=".0%")
    demo.metric("repeat_lasso_top_least", int(np.bincount(reps.top_member, minlength=GROUP).min()),
                label="Repeat study: training sets in which the least favoured member is the lasso's largest",
                fmt=".0f")


def claim_findings(demo, reps: Repeats) -> None:
    """Findings of the repeat study: who keeps the group, how evenly, and how stable the lasso's pick is."""
    all_l, all_n = float(np.mean(reps.kept["lasso"] == GROUP)), float(np.mean(reps.kept["net"] == GROUP))
    demo.claim(
        f"Over {reps.count} fresh training sets, the elastic net keeps all {GROUP} correlated features in "
        f"most of them (at least {MOST:.0%}), the lasso in few (at most {FEW:.0%})",
        holds=bool(all_n >= MOST and all_l <= FEW),
        repeat_net_all_share=all_n,
        repeat_lasso_all_share=all_l,
    )
    top_l, top_n = float(np.median(reps.top_share["lasso"])), float(np.median(reps.top_share["net"]))
    demo.claim(
        f"The lasso puts more than {ONE_MEMBER:.0%} of the group's weight on a single member (median over "
        f"the training sets); the elastic net spreads it nearly evenly, less than {EVEN:.0%} on its largest "
        f"(an even split is {1 / GROUP:.0%})",
        holds=bool(top_l > ONE_MEMBER and top_n < EVEN),
        repeat_lasso_top_share=top_l,
        repeat_net_top_share=top_n,
    )
    counts = np.bincount(reps.top_member, minlength=GROUP)
    demo.claim(
        f"Which member the lasso leans on changes with the training set: each of the {GROUP} correlated "
        "features carries its largest weight in some of the training sets",
        holds=bool(counts.min() > 0),
        repeat_lasso_top_least=int(counts.min()),
        most_often=demo.number(int(counts.max()), "training sets in which the most favoured member is largest"),
    )


def check_solver(demo, chosen: Chosen, optimality: float, example: dict[str, np.ndarray]) -> None:
    """Checks: the solver's optimality conditions, ONNX Runtime = NumPy, the worked example."""
    demo.check(
        "Both chosen fits satisfy the elastic-net optimality conditions (coordinate descent converged)",
        holds=bool(optimality < 1e-8),
        largest_violation=optimality,
    )
    demo.check(
        "ONNX Runtime (float32) matches NumPy on every fit of both paths, relative to the largest prediction",
        holds=bool(chosen.ort_diff < 1e-5),
        max_rel_diff=chosen.ort_diff,
    )
    las, net = example["lasso"], example["net"]
    demo.check(
        "Worked example (a feature entered twice, y = 2x, λ = 1): the lasso gives (1, 0), one of its "
        "many equally good splits; the elastic net gives the only solution, (0.6, 0.6)",
        holds=bool(np.allclose(las, [1.0, 0.0], atol=1e-12) and np.allclose(net, [0.6, 0.6], atol=1e-12)),
        lasso_1=las[0], lasso_2=las[1], net_1=net[0], net_2=net[1],
    )


def _mse(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean squared error of every column of a sweep's predictions."""
    return np.mean((pred - y[:, None]) ** 2, axis=0)
