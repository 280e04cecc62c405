"""Overfitting: polynomials of rising degree on ten noisy points of a sine curve.

Every degree from 0 to 9 is fitted by least squares and exported as one ONNX graph. Training
error falls at every step, while error on fresh points is lowest at a middle degree and climbs
after it: the degree-9 polynomial passes through every training point and swings wildly between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import plotting, polynomial
from matplotlib.ticker import MaxNLocator

N_VAL = 500  # fresh validation points
N_GRID = 300  # points on [-1, 1] where the fitted curves are drawn
CLOSE = 2.0  # "close to the noise variance": the best validation MSE within this factor of it (median)
CUBIC = 3
FAR = 3.0  # "far worse": at least this many times the cubic's validation error
REPEATS = 200  # fresh training sets of the same size in the repeat study


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass
class Fits:
    degrees: np.ndarray
    train_mse: np.ndarray
    val_mse: np.ndarray
    grid: np.ndarray
    grid_pred: np.ndarray  # column k: the degree-k fit on the grid
    ort_diff: float
    i_best: int
    d_max: int
    train_mse_np: np.ndarray  # training error in float64 NumPy (ONNX Runtime's float32 rounds the
    #                           nearly singular high-degree fits)


@dataclass
class Repeats:
    """The same experiment on fresh training sets of the same size (NumPy, float64)."""
    best_over_noise: np.ndarray  # lowest validation MSE over the degrees / noise variance
    max_over_cubic: np.ndarray  # validation MSE of the highest degree / the cubic's


def run(demo) -> None:
    opts = demo.options
    n_train = int(opts.get("n_train", 10))
    noise = float(opts.get("noise", 0.25))
    degrees = np.arange(0, n_train)  # degree n_train - 1 can pass through every point

    data = make_data(demo.rng, n_train, noise)
    models = [polynomial.fit(data.x_train, data.y_train, int(d)) for d in degrees]
    sess = export(demo, models, degrees)
    fits = evaluate(sess, models, data, degrees)
    reps = repeat_on_fresh_sets(demo.rng, n_train, noise, degrees, int(opts.get("repeats", REPEATS)))

    draw_error_vs_degree(demo, fits, noise)
    draw_fits(demo, data, fits, n_train)
    measure(demo, fits, reps, n_train, noise)
    claim_findings(demo, fits, reps, noise)


def make_data(rng: np.random.Generator, n_train: int, noise: float) -> Data:
    """Ten training points and 500 fresh validation points from the same noisy sine."""
    x_train = np.sort(rng.uniform(-1.0, 1.0, n_train))
    y_train = truth(x_train) + noise * rng.standard_normal(n_train)
    x_val = rng.uniform(-1.0, 1.0, N_VAL)
    y_val = truth(x_val) + noise * rng.standard_normal(N_VAL)
    return Data(x_train, y_train, x_val, y_val)


def truth(x: np.ndarray) -> np.ndarray:
    """The curve behind the noise."""
    return np.sin(np.pi * x)


def export(demo, models: list, degrees: np.ndarray):
    """Export all fits as one ONNX graph (column k: degree k) and open it in ONNX Runtime."""
    graph = polynomial.export_linear_sweep(
        models, chebyshev=int(degrees[-1]), name="polynomial_degree_sweep",
        doc_string="Column k: least-squares polynomial of degree k (Chebyshev basis)")
    return demo.onnx("polynomials", demo.make_model(graph))


def evaluate(sess, models: list, data: Data, degrees: np.ndarray) -> Fits:
    """Training and validation error of every degree, predicted by ONNX Runtime."""
    def mse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.mean((polynomial.run_sweep(sess, x) - y[:, None]) ** 2, axis=0)

    train_mse = mse(data.x_train, data.y_train)
    val_mse = mse(data.x_val, data.y_val)
    grid = np.linspace(-1.0, 1.0, N_GRID)
    grid_pred = polynomial.run_sweep(sess, grid)
    numpy_pred = np.column_stack([polynomial.predict(m, grid) for m in models])
    ort_diff = float(np.max(np.abs(grid_pred - numpy_pred)) / np.max(np.abs(numpy_pred)))
    train_mse_np = np.array([np.mean((polynomial.predict(m, data.x_train) - data.y_train) ** 2) for m in models])

    i_best = int(np.argmin(val_mse))
    d_max = int(degrees[-1])
    return Fits(degrees, train_mse, val_mse, grid, grid_pred, ort_diff, i_best, d_max, train_mse_np)


def repeat_on_fresh_sets(rng: np.random.Generator, n_train: int, noise: float, degrees: np.ndarray,
                         repeats: int) -> Repeats:
    """How typical the run is: every degree fitted again on fresh training sets (NumPy)."""
    best, worse = [], []
    for _ in range(repeats):
        data = make_data(rng, n_train, noise)
        val = np.array([np.mean((polynomial.predict(polynomial.fit(data.x_train, data.y_train, int(d)),
                                                    data.x_val) - data.y_val) ** 2) for d in degrees])
        best.append(val.min() / noise**2)
        worse.append(val[-1] / val[CUBIC])
    return Repeats(np.array(best), np.array(worse))


def draw_error_vs_degree(demo, fits: Fits, noise: float) -> None:
    """Figure: training and validation error against degree."""
    degrees, train_mse, val_mse, i_best = fits.degrees, fits.train_mse, fits.val_mse, fits.i_best

    @demo.figure(
        "error-vs-degree",
        caption="Training and validation error against polynomial degree (log scale)",
        alt=f"Line chart over degree {degrees[0]} to {degrees[-1]}. Training error falls at every step "
        f"to almost zero at degree {degrees[-1]}. Validation error falls to a minimum at degree "
        f"{degrees[i_best]}, then climbs steeply.",
        notice="Training error keeps falling with the degree; validation error is lowest at a middle degree.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        floor = 1e-4  # an exact fit has (almost) zero training error: draw it on the floor
        ax.plot(degrees, np.maximum(train_mse, floor), "o-", color="C0", label="training")
        if train_mse[-1] < floor:
            ax.annotate("exact fit:\nerror ≈ 0", (degrees[-1], floor), xytext=(-12, 0),
                        textcoords="offset points", ha="right", va="center", fontsize="small", color="C0")
        ax.plot(degrees, val_mse, "s-", color="C1", label="validation")
        ax.plot(degrees[i_best], val_mse[i_best], "*", color="C2", ms=16, label="best validation")
        ax.axhline(noise**2, ls=":", color="C7", label="noise variance")
        plotting.plain_log_axis(ax.yaxis, 10.0 ** np.arange(-4, 2))
        ax.set_ylim(floor * 0.25, None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("polynomial degree")
        ax.set_ylabel("mean squared error")
        ax.set_title("Training error falls, validation error turns up")
        ax.legend(fontsize="small", loc="lower left")


def draw_fits(demo, data: Data, fits: Fits, n_train: int) -> None:
    """Figure with a slider over the degree: that degree's fit over the training points, with its
    training and validation error."""
    degrees, d_max, grid, i_best = fits.degrees, fits.d_max, fits.grid, fits.i_best
    lim = 2.2  # fixed y range; wild high-degree swings are clipped just beyond it

    @demo.sweep(
        "fits", degrees, label="polynomial degree", fmt=".0f", default=i_best,
        caption=f"The least-squares polynomial of each degree from {degrees[0]} to {d_max} on the "
        f"{n_train} training points",
        alt=f"{n_train} noisy points around a sine curve and the fitted polynomial. Low degrees miss the "
        f"curve; degree {degrees[i_best]} follows it; degree {d_max} passes through every point but "
        "swings far away from the curve between them",
        notice="Raise the degree: the fit first finds the sine, then bends to reach every point and "
        "swings away between them; training error keeps falling while validation error turns up.",
        numbers=lambda k: [demo.number(fits.train_mse_np[k], "training error", ".3f"),
                           demo.number(fits.val_mse[k], "validation error", ".3f")],
    )
    def _(fig, k: int) -> None:
        ax = fig.subplots()
        ax.plot(grid, truth(grid), "--", color="C7", lw=1.5, label="true curve")
        ax.plot(grid, np.clip(fits.grid_pred[:, k], -1.2 * lim, 1.2 * lim), color="C0", lw=2,
                label=f"degree {degrees[k]} fit")
        ax.plot(data.x_train, data.y_train, "o", color="C4", ms=7, zorder=5, label="training points")
        ax.set_xlim(-1.0, 1.0)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(f"Degree {degrees[k]} polynomial, same {n_train} points")
        ax.legend(fontsize="small", ncols=3, loc="lower center")


def measure(demo, fits: Fits, reps: Repeats, n_train: int, noise: float) -> None:
    """Record the setup and the errors at the best degree, the cubic and the highest degree."""
    demo.key_numbers("best_degree", "val_mse_best", "train_mse_deg3", "val_mse_max_degree", "val_ratio_max_vs_deg3")
    degrees, train_mse, val_mse, i_best, d_max = (
        fits.degrees, fits.train_mse, fits.val_mse, fits.i_best, fits.d_max)
    demo.setting("n_train", n_train, label="Training points", fmt=".0f")
    demo.setting("n_val", N_VAL, label="Fresh validation points", fmt=".0f")
    demo.setting("min_degree", degrees[0], label="Lowest degree", fmt=".0f")
    demo.setting("max_degree", d_max, label="Highest degree", fmt=".0f")
    demo.setting("noise_variance", noise**2, label="Noise variance", fmt=".3g")
    demo.setting("close_factor", CLOSE, label="'Close to the noise variance': within this factor", fmt="g")
    demo.setting("far_factor", FAR, label="'Far worse': at least this many times the validation MSE", fmt="g")
    demo.setting("repeats", len(reps.best_over_noise), label="Fresh training sets in the repeat study", fmt=".0f")
    demo.metric("best_degree", degrees[i_best], label="Degree with lowest validation error", fmt=".0f")
    demo.metric("val_mse_best", val_mse[i_best], label="Validation MSE at best degree", fmt=".3g")
    demo.metric("val_best_over_noise", val_mse[i_best] / noise**2,
                label="Validation MSE at best degree / noise variance", fmt=".2f")
    demo.metric("repeat_best_over_noise", float(np.median(reps.best_over_noise)),
                label="Repeat study: median of (lowest validation MSE / noise variance)", fmt=".2f")
    demo.metric("repeat_close_share", float(np.mean(reps.best_over_noise < CLOSE)),
                label=f"Repeat study: share of training sets whose best is within {CLOSE:g}× the noise variance",
                fmt=".0%")
    demo.metric("repeat_far_share", float(np.mean(reps.max_over_cubic > FAR)),
                label=f"Repeat study: share where degree {d_max} has at least {FAR:g}× the cubic's validation MSE",
                fmt=".0%")
    demo.metric("train_mse_best", train_mse[i_best], label="Training MSE at best degree", fmt=".3g")
    demo.metric("val_mse_deg3", val_mse[CUBIC], label=f"Validation MSE, degree {CUBIC}", fmt=".3g")
    demo.metric("train_mse_deg3", train_mse[CUBIC], label=f"Training MSE, degree {CUBIC}", fmt=".3g")
    demo.metric("val_mse_max_degree", val_mse[-1], label=f"Validation MSE, degree {d_max}",
                fmt=".3g")
    demo.metric("train_mse_max_degree", fits.train_mse_np[-1], label=f"Training MSE, degree {d_max} (float64)",
                fmt=".2g")
    demo.metric("val_ratio_max_vs_deg3", val_mse[-1] / val_mse[CUBIC],
                label=f"Validation MSE ratio, degree {d_max} / degree {CUBIC}", fmt=".3g")
    demo.metric("ort_max_rel_diff", fits.ort_diff,
                label="Max |ONNX Runtime − NumPy| prediction, relative to the largest prediction", fmt=".1e")


def claim_findings(demo, fits: Fits, reps: Repeats, noise: float) -> None:
    """Findings: validation error turns up, its minimum is typically near the noise floor, the highest
    degree does worse. Checks: training error only falls (nested least squares), ORT = NumPy."""
    degrees, train_mse_np, val_mse, i_best, d_max = (
        fits.degrees, fits.train_mse_np, fits.val_mse, fits.i_best, fits.d_max)
    demo.claim(
        "Validation error is lowest at a middle degree and rises after it",
        holds=bool(0 < i_best < d_max and val_mse[-1] > val_mse[i_best]),
        best_degree=int(degrees[i_best]),
        val_mse_best=val_mse[i_best],
        val_mse_max_degree=val_mse[-1],
    )
    demo.claim(
        f"The degree-{d_max} polynomial does worse than the cubic on fresh points",
        holds=bool(val_mse[-1] > val_mse[CUBIC]),
        val_mse_max_degree=val_mse[-1],
        val_mse_deg3=val_mse[CUBIC],
    )
    demo.claim(
        f"Typically (median over {len(reps.best_over_noise)} fresh training sets) the lowest validation "
        f"error is close to the noise variance, within a factor of {CLOSE:g}: the lowest any model can "
        "expect on fresh points",
        holds=bool(np.median(reps.best_over_noise) < CLOSE),
        median_ratio=demo.number(
            float(np.median(reps.best_over_noise)), "median lowest validation error over the noise level"),
        share_within=demo.number(
            float(np.mean(reps.best_over_noise < CLOSE)), "share of training sets close to the noise level", fmt=".0%"),
    )
    demo.claim(
        f"In most fresh training sets the degree-{d_max} polynomial does far worse than the cubic (at "
        f"least {FAR:g} times the validation error)",
        holds=bool(np.mean(reps.max_over_cubic > FAR) > 0.5),
        share=demo.number(
            float(np.mean(reps.max_over_cubic > FAR)),
            "share of training sets where the high degree does far worse", fmt=".0%"),
        median_ratio=demo.number(
            float(np.median(reps.max_over_cubic)), "median error of the high degree over the cubic (×)", fmt=".3g"),
    )
    demo.check(
        "Training error never rises as the degree grows (each degree's polynomials contain the "
        "lower degrees'), and the highest degree passes through every training point (NumPy, float64)",
        holds=bool(np.all(np.diff(train_mse_np) <= 1e-9 * train_mse_np[0]) and train_mse_np[-1] < 1e-6 * noise**2),
        train_mse_degree_0=train_mse_np[0],
        train_mse_max_degree=train_mse_np[-1],
    )
    demo.check(
        "ONNX Runtime (float32) matches NumPy on every degree, relative to the largest prediction",
        holds=bool(fits.ort_diff < 1e-4),
        max_rel_diff=fits.ort_diff,
    )
