"""Double descent: test error of random-features regression against the number of features.

A random smooth function of five inputs is learned from a few dozen noisy examples by a linear
model on p random cosine features (a two-layer network whose first layer is random and frozen),
fitted by least squares; once p reaches the number of training points n, by the interpolating
fit with the smallest weights. As p grows, test error first follows the classical U, then
explodes at the interpolation threshold p = n, where the one interpolating fit needs huge
weights, and then falls again as extra features let the fit interpolate with ever smaller
weights, ending below the best small model. A ridge penalty flattens the peak. The run's own fits
for every size are one ONNX graph; a repeat study over fresh targets, data and features gives
the median curves the findings rest on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import plotting
from demolib.graph import Graph, tensor

D_IN = 5  # inputs
TARGET_TERMS, TARGET_SCALE = 6, 3.0  # the target: a sum of cosines with slowly varying frequencies
FEATURE_SCALE = 1.5  # random features: cos(x·ω + b) with ω ~ N(0, I / FEATURE_SCALE²)
N_TEST = 200
N_SIZES = 16  # model sizes on a log grid (the threshold p = n is added)
RIDGE = 1.0  # penalty of the ridge comparison: ||y - Fw||² + RIDGE ||w||²
CUTOFF = 1e-13  # eigenvalues of F Fᵀ below this share of the largest count as zero
TENTH = 0.1


@dataclass
class Problem:
    """One draw: a target function, its training and test data, and a pool of random features."""
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    f_test: np.ndarray  # noise-free target on the test inputs
    omega: np.ndarray  # (D_IN, max size)
    phase: np.ndarray  # (max size,)


@dataclass
class Fits:
    """Every size fitted to one problem: min-norm least squares and ridge (coefficients zero-padded)."""
    W: np.ndarray  # (max size, sizes): min-norm
    W_ridge: np.ndarray
    train_mse: np.ndarray  # min-norm, per size
    smallest_sv: np.ndarray  # smallest singular value of the training features, per size


@dataclass
class Study:
    """Relative test error (‖f̂ − f‖² / ‖f‖² on test inputs) and more, (repeats, sizes)."""
    sizes: np.ndarray
    err: np.ndarray
    err_ridge: np.ndarray
    norm: np.ndarray
    norm_ridge: np.ndarray
    smallest_sv: np.ndarray
    train_mse: np.ndarray

    def median(self, name: str) -> np.ndarray:
        return np.median(getattr(self, name), axis=0)


def run(demo) -> None:
    opts = demo.options
    n = int(opts.get("n_train", 40))
    noise = float(opts.get("noise", 0.1))
    max_size = int(opts.get("max_size", 600))
    repeats = int(opts.get("repeats", 16))
    sizes = np.union1d(np.unique(np.round(np.geomspace(2, max_size, N_SIZES)).astype(int)), [n])

    problems = [make_problem(demo.rng, n, noise, max_size) for _ in range(repeats)]
    fits = [fit_every_size(p, sizes) for p in problems]
    study = score(problems, fits, sizes)
    sess = export(demo, problems[0], fits[0], sizes)
    own = score_in_onnx_runtime(sess, problems[0], fits[0], sizes)

    draw_error_vs_size(demo, study, own, n)
    draw_mechanism(demo, study, n)
    measure(demo, study, own, n, noise, repeats, max_size)
    claim_findings(demo, study, n)
    check_fits(demo, study, own, n)


def make_problem(rng: np.random.Generator, n: int, noise: float, max_size: int) -> Problem:
    """A fresh random target, n noisy training points, test points and a feature pool."""
    t_omega = rng.standard_normal((D_IN, TARGET_TERMS)) / TARGET_SCALE
    t_phase, t_amp = rng.uniform(0, 2 * np.pi, TARGET_TERMS), rng.standard_normal(TARGET_TERMS)

    def target(X: np.ndarray) -> np.ndarray:
        return np.cos(X @ t_omega + t_phase) @ t_amp / np.sqrt(TARGET_TERMS)

    X, X_test = rng.standard_normal((n, D_IN)), rng.standard_normal((N_TEST, D_IN))
    y = target(X) + noise * rng.standard_normal(n)
    omega = rng.standard_normal((D_IN, max_size)) / FEATURE_SCALE
    return Problem(X, y, X_test, target(X_test), omega, rng.uniform(0, 2 * np.pi, max_size))


def features(p: Problem, X: np.ndarray) -> np.ndarray:
    """All random features of the pool; a model of size k uses the first k."""
    return np.cos(X @ p.omega + p.phase)


def fit_every_size(p: Problem, sizes: np.ndarray) -> Fits:
    """Least squares on the first k features for every size k: the minimum-norm solution (the
    unique one below n, the smallest interpolating one from n on) and ridge."""
    F = features(p, p.X)
    n = len(p.y)
    W, W_ridge = np.zeros((F.shape[1], len(sizes))), np.zeros((F.shape[1], len(sizes)))
    train, smallest = np.empty(len(sizes)), np.empty(len(sizes))
    for j, k in enumerate(sizes):
        Fk = F[:, :k]
        ev, V = np.linalg.eigh(Fk @ Fk.T) if k >= n else np.linalg.eigh(Fk.T @ Fk)
        keep = ev > CUTOFF * ev.max()
        if k >= n:  # w = Fᵀ (F Fᵀ + λI)⁻¹ y, in the row space of F
            Vy = V.T @ p.y
            W[:k, j] = Fk.T @ (V[:, keep] @ (Vy[keep] / ev[keep]))
            W_ridge[:k, j] = Fk.T @ (V @ (Vy / (ev + RIDGE)))
        else:  # w = (FᵀF + λI)⁻¹ Fᵀ y
            Vg = V.T @ (Fk.T @ p.y)
            W[:k, j] = V[:, keep] @ (Vg[keep] / ev[keep])
            W_ridge[:k, j] = V @ (Vg / (ev + RIDGE))
        train[j] = np.mean((Fk @ W[:k, j] - p.y) ** 2)
        smallest[j] = np.sqrt(max(ev[keep].min(), 0.0))
    return Fits(W, W_ridge, train, smallest)


def score(problems: list[Problem], fits: list[Fits], sizes: np.ndarray) -> Study:
    """Relative test error of every fit of every repeat (NumPy, float64)."""
    err, err_r = [], []
    for p, f in zip(problems, fits, strict=True):
        Ft, scale = features(p, p.X_test), np.mean(p.f_test**2)
        err.append(np.mean((Ft @ f.W - p.f_test[:, None]) ** 2, axis=0) / scale)
        err_r.append(np.mean((Ft @ f.W_ridge - p.f_test[:, None]) ** 2, axis=0) / scale)
    return Study(sizes, np.array(err), np.array(err_r),
                 np.array([np.linalg.norm(f.W, axis=0) for f in fits]),
                 np.array([np.linalg.norm(f.W_ridge, axis=0) for f in fits]),
                 np.array([f.smallest_sv for f in fits]), np.array([f.train_mse for f in fits]))


def export(demo, p: Problem, f: Fits, sizes: np.ndarray):
    """The run's own fits in one graph: cos(x Ω + b) → MatMul; columns: min-norm per size, then ridge."""
    g = Graph()
    z = g.op("Add", [g.op("MatMul", ["x", g.const("omega", p.omega)], "x_omega"), g.const("phase", p.phase)], "z")
    feats = g.op("Cos", [z], "features")
    g.op("MatMul", [feats, g.const("W", np.hstack([f.W, f.W_ridge]))], "y")
    graph = g.build("random_features", [tensor("x", ["N", D_IN])], [tensor("y", ["N", 2 * len(sizes)])],
                    f"Random cosine features; columns 0..{len(sizes) - 1}: min-norm least squares on the first "
                    f"{', '.join(map(str, sizes))} features; then the same sizes with ridge")
    return demo.onnx("random_features", demo.make_model(graph))


def score_in_onnx_runtime(sess, p: Problem, f: Fits, sizes: np.ndarray) -> dict[str, np.ndarray | float]:
    """The run's own test errors from ONNX Runtime, and how far they are from NumPy's."""
    pred = sess.run(None, {"x": p.X_test.astype(np.float32)})[0].astype(np.float64)
    scale, k = np.mean(p.f_test**2), len(sizes)
    err = np.mean((pred - p.f_test[:, None]) ** 2, axis=0) / scale
    ref = features(p, p.X_test) @ np.hstack([f.W, f.W_ridge])
    # float32 features carry ~1e-7 relative error, which the huge weights at the threshold amplify:
    # compare each column against the size of its own weights.
    bound = np.sum(np.abs(np.hstack([f.W, f.W_ridge])), axis=0)
    return {"err": err[:k], "err_ridge": err[k:],
            "ort_diff": float(np.max(np.abs(pred - ref).max(axis=0) / bound))}


def draw_error_vs_size(demo, study: Study, own: dict, n: int) -> None:
    """Figure: relative test error against the number of features (log–log)."""
    sizes, med, med_r = study.sizes, study.median("err"), study.median("err_ridge")
    under = sizes < n
    lo, hi = np.percentile(study.err, [25, 75], axis=0)

    @demo.figure(
        "error-vs-size",
        caption=f"Relative test error against the number of random features (median and middle half of "
        f"{len(study.err)} repeats; the dotted line marks p = n = {n} training points)",
        alt=f"Log–log line chart over {sizes[0]} to {sizes[-1]} features. Without a penalty the median error "
        f"falls to {med[under].min():.2g} at {sizes[under][np.argmin(med[under])]} features, rises to a sharp "
        f"peak of {med.max():.3g} at {n} features, then falls again to {med[-1]:.2g} at {sizes[-1]}. With "
        f"ridge the error at {n} features is only {med_r[sizes == n][0]:.2g}.",
        size=(6.4, 5.0),
        notice="The error peaks where the model can first fit every training point, then falls again.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.fill_between(sizes, lo, hi, color="C0", alpha=0.15, lw=0)
        ax.plot(sizes, med, "o-", color="C0", ms=4, label="least squares, smallest weights")
        ax.plot(sizes, own["err"], color="C0", lw=1, alpha=0.6, label="the same, this run")
        ax.plot(sizes, med_r, "s-", color="C1", ms=4, label="ridge")
        ax.axhline(med[under].min(), ls="--", color="C7", lw=1, label="best model below n")
        ax.axvline(n, ls=":", color="C3", label="p = n")
        plotting.plain_log_axis(ax.xaxis, [2, 5, 10, 20, 50, 100, 200, 500, 1000])
        plotting.plain_log_axis(ax.yaxis, 10.0 ** np.arange(-3, 5), fmt=plotting.exponent_label)
        ax.set_xlabel("random features p (model size)")
        ax.set_ylabel("relative test error")
        ax.set_title("Double descent")
        ax.legend(fontsize="small", ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))


def draw_mechanism(demo, study: Study, n: int) -> None:
    """Figure: weight norm and the smallest singular value of the training features against p."""
    sizes, norm, sv = study.sizes, study.median("norm"), study.median("smallest_sv")

    @demo.figure(
        "mechanism",
        caption="Why the peak: the size of the fitted weights and the smallest singular value of the "
        "training features, against the number of features (medians)",
        alt=f"Two stacked log–log panels. Top: the norm of the fitted weights climbs to {norm.max():.3g} at "
        f"{n} features and falls to {norm[-1]:.2g} at {sizes[-1]}, while the ridge weights stay small. "
        f"Bottom: the smallest singular value of the training features dips to {sv.min():.2g} at {n} "
        "features and grows on both sides.",
        size=(6.4, 4.6),
        notice="At p = n the features barely span the data, so fitting every point takes huge weights.",
    )
    def _(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.plot(sizes, norm, "o-", color="C0", ms=4, label="smallest weights")
        top.plot(sizes, study.median("norm_ridge"), "s-", color="C1", ms=4, label="ridge")
        top.legend(fontsize="small", loc="upper right")
        bottom.plot(sizes, sv, "o-", color="C2", ms=4)
        for ax in (top, bottom):
            ax.axvline(n, ls=":", color="C3")
            plotting.plain_log_axis(ax.yaxis, 10.0 ** np.arange(-4, 5), fmt=plotting.exponent_label)
        plotting.plain_log_axis(bottom.xaxis, [2, 5, 10, 20, 50, 100, 200, 500, 1000])
        top.set_ylabel("weight norm")
        top.set_title("Huge weights where the features barely fit")
        bottom.set_ylabel("smallest singular value")
        bottom.set_xlabel("random features p (model size)")


def measure(demo, study: Study, own: dict, n: int, noise: float, repeats: int, max_size: int) -> None:
    """Record the setup and the median curve's landmarks."""
    demo.key_numbers("best_under_err", "peak_err", "largest_err", "ridge_threshold_err")
    sizes, med, med_r = study.sizes, study.median("err"), study.median("err_ridge")
    under, at_n = sizes < n, int(np.flatnonzero(sizes == n)[0])
    demo.setting("n_train", n, label="Training points n", fmt=".0f")
    demo.setting("d_in", D_IN, label="Inputs", fmt=".0f")
    demo.setting("noise_sd", noise, label="Noise standard deviation", fmt="g")
    demo.setting("n_sizes", len(sizes), label="Model sizes tried", fmt=".0f")
    demo.setting("smallest_size", sizes[0], label="Fewest features", fmt=".0f")
    demo.setting("max_size", max_size, label="Most features", fmt=".0f")
    demo.setting("repeats", repeats, label="Repeats (fresh target, data and features)", fmt=".0f")
    demo.setting("ridge_lambda", RIDGE, label="Ridge penalty λ", fmt="g")
    demo.metric("best_under_size", sizes[under][np.argmin(med[under])], label="Best size below n (median)",
                fmt=".0f")
    demo.metric("best_under_err", med[under].min(), label="Relative test error of the best size below n (median)",
                fmt=".2g")
    demo.metric("peak_size", sizes[np.argmax(med)], label="Size with the highest median test error", fmt=".0f")
    demo.metric("peak_err", med.max(), label="Highest median relative test error", fmt=".3g")
    demo.metric("largest_err", med[-1], label="Relative test error of the largest model (median)", fmt=".2g")
    demo.metric("largest_vs_best_under", med[-1] / med[under].min(),
                label="Largest model's error / best error below n", fmt=".2f")
    demo.metric("largest_beats_share", float(np.mean(study.err[:, -1] < study.err[:, under].min(axis=1))),
                label="Repeats where the largest model beats every size below n", fmt=".0%")
    demo.metric("ridge_threshold_err", med_r[at_n], label="Ridge: relative test error at p = n (median)", fmt=".2g")
    demo.metric("ridge_largest_err", med_r[-1], label="Ridge: relative test error of the largest model (median)",
                fmt=".2g")
    demo.metric("peak_norm", study.median("norm")[at_n], label="Weight norm at p = n (median)", fmt=".3g")
    demo.metric("largest_norm", study.median("norm")[-1], label="Weight norm of the largest model (median)", fmt=".2g")
    demo.metric("run_peak_err", own["err"][at_n], label="This run: relative test error at p = n", fmt=".3g")
    demo.metric("run_largest_err", own["err"][-1], label="This run: relative test error of the largest model",
                fmt=".2g")


def claim_findings(demo, study: Study, n: int) -> None:
    """Findings on the median curves: the peak at p = n, the second descent, the weights, ridge."""
    sizes, med, med_r = study.sizes, study.median("err"), study.median("err_ridge")
    under, at_n = sizes < n, int(np.flatnonzero(sizes == n)[0])
    demo.claim(
        f"The median test error is highest exactly at the interpolation threshold, p = n = {n}",
        holds=bool(int(np.argmax(med)) == at_n),
        peak_size=int(sizes[np.argmax(med)]),
        peak_err=float(med.max()),
    )
    demo.claim(
        f"Past the threshold the error descends again: the largest model ({sizes[-1]} features) has less than "
        f"{TENTH:.0%} of the peak's error and beats the best model below n",
        holds=bool(med[-1] < TENTH * med.max() and med[-1] < med[under].min()),
        largest_err=float(med[-1]),
        peak_err=float(med.max()),
        best_under_err=float(med[under].min()),
    )
    norm, sv = study.median("norm"), study.median("smallest_sv")
    demo.claim(
        "At the threshold the features barely span the training data: the smallest singular value of the "
        "training features is lowest and the fitted weights are largest there (medians)",
        holds=bool(int(np.argmin(sv)) == at_n and int(np.argmax(norm)) == at_n),
        peak_norm=float(norm[at_n]),
        largest_norm=float(norm[-1]),
        smallest_sv=demo.number(float(sv[at_n]), "smallest singular value at p = n"),
    )
    demo.claim(
        f"A ridge penalty (λ = {RIDGE:g}) flattens the peak: at p = n its median error is less than "
        f"{TENTH:.0%} of the unpenalized fit's",
        holds=bool(med_r[at_n] < TENTH * med[at_n]),
        ridge_threshold_err=float(med_r[at_n]),
        peak_err=float(med[at_n]),
    )


def check_fits(demo, study: Study, own: dict, n: int) -> None:
    """Checks: interpolation from p = n on, and ONNX Runtime = NumPy."""
    over, under = study.sizes >= n, study.sizes < n
    worst_over = float(study.train_mse[:, over].max())
    demo.check(
        "Every fit with p ≥ n passes through all training points (training MSE below 10⁻¹² in float64), "
        "and no fit with p < n does (above 10⁻⁶)",
        holds=bool(worst_over < 1e-12 and study.train_mse[:, under].min() > 1e-6),
        largest_over=worst_over,
        smallest_under=float(study.train_mse[:, under].min()),
    )
    demo.check(
        "ONNX Runtime (float32) matches NumPy on every fit, relative to the sum of that fit's absolute weights",
        holds=bool(own["ort_diff"] < 1e-5),
        max_rel_diff=own["ort_diff"],
    )
