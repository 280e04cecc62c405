"""Bias–variance decomposition: polynomials of every degree are refitted on hundreds of resampled
training sets; their squared bias, variance and the noise add up to the measured test error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, polynomial
from matplotlib.ticker import MaxNLocator

N_TEST = 200  # test inputs, drawn once
N_CURVES = 10  # single fits drawn per degree (each frame of the slider)


@dataclass
class Data:
    x_train: np.ndarray
    Y_train: np.ndarray  # (points, sets): fresh noise for every training set
    x_test: np.ndarray
    Y_test: np.ndarray  # (points, sets)


@dataclass
class Decomposition:
    bias2: np.ndarray  # one value per degree
    variance: np.ndarray
    predicted_error: np.ndarray  # bias² + variance + noise²
    test_error: np.ndarray
    rel_gap: np.ndarray
    i_best: int
    n_sets: int


def run(demo) -> None:
    opts = demo.options
    n_train = int(opts.get("n_train", 25))
    n_sets = int(opts.get("n_sets", 200))
    max_degree = int(opts.get("max_degree", 12))
    noise = float(opts.get("noise", 0.4))
    degrees = np.arange(max_degree + 1)

    data = make_data(demo.rng, n_train, n_sets, noise)
    sess = fit_every_degree(demo, data, degrees, max_degree, n_sets)
    parts = decompose(sess, data, len(degrees), n_sets, noise)

    grid = np.linspace(-1.0, 1.0, 41)  # coarse enough to keep the slider's 13 frames small
    grid_all = predict(sess, grid, len(degrees), n_sets)
    grid_pred, grid_mean = grid_all[:, :, :N_CURVES], grid_all.mean(axis=2)

    draw_decomposition(demo, degrees, parts, noise, n_sets)
    draw_fits(demo, grid, grid_pred, grid_mean, degrees, parts)
    measure(demo, degrees, parts, n_sets, n_train, max_degree, noise)
    claim_findings(demo, degrees, parts, max_degree)


def make_data(rng: np.random.Generator, n_train: int, n_sets: int, noise: float) -> Data:
    """Training and test sets from the smooth function, with fresh noise for every set."""
    f = datasets.smooth_function
    # Fixed training inputs (evenly spread), fresh noise for every training set; 200 test inputs
    # drawn once, with fresh test noise for every set as well.
    x_train = -1.0 + (np.arange(n_train) + 0.5) * 2.0 / n_train
    Y_train = f(x_train)[:, None] + noise * rng.standard_normal((n_train, n_sets))
    x_test = rng.uniform(-1.0, 1.0, N_TEST)
    Y_test = f(x_test)[:, None] + noise * rng.standard_normal((N_TEST, n_sets))
    return Data(x_train, Y_train, x_test, Y_test)


def fit_every_degree(demo, data: Data, degrees: np.ndarray, max_degree: int, n_sets: int):
    """Fit every degree to every training set and export all fits as one ONNX graph."""
    # Every degree refitted on every set: (max_degree + 1) * n_sets polynomials, one ONNX graph.
    models = [m for d in degrees for m in polynomial.fit_many(data.x_train, data.Y_train, int(d))]
    graph = polynomial.export_linear_sweep(
        models, chebyshev=max_degree, name="resampled_polynomials",
        doc_string=f"Column d*{n_sets}+r: least-squares polynomial of degree d fitted to "
        f"training set r (Chebyshev basis)")
    return demo.onnx("resampled_polynomials", demo.make_model(graph))


def decompose(sess, data: Data, n_degrees: int, n_sets: int, noise: float) -> Decomposition:
    """Squared bias, variance and test error per degree, from the ONNX predictions."""
    f = datasets.smooth_function
    pred = predict(sess, data.x_test, n_degrees, n_sets)
    mean_pred = pred.mean(axis=2)
    bias2 = np.mean((mean_pred - f(data.x_test)[:, None]) ** 2, axis=0)
    variance = np.mean(pred.var(axis=2), axis=0)
    predicted_error = bias2 + variance + noise**2
    test_error = np.mean((data.Y_test[:, None, :] - pred) ** 2, axis=(0, 2))
    rel_gap = np.abs(test_error - predicted_error) / test_error
    i_best = int(np.argmin(test_error))
    return Decomposition(bias2, variance, predicted_error, test_error, rel_gap, i_best, n_sets)


def predict(sess, x: np.ndarray, n_degrees: int, n_sets: int) -> np.ndarray:
    """Predictions of every fit, as (points, degree, set)."""
    return polynomial.run_sweep(sess, x).reshape(len(x), n_degrees, n_sets)


def draw_decomposition(demo, degrees: np.ndarray, parts: Decomposition, noise: float, n_sets: int) -> None:
    """Figure: bias², variance and noise against degree, on top of the measured test error."""

    @demo.figure(
        "decomposition",
        caption=f"Squared bias, variance and noise against degree, over {n_sets} training sets",
        alt="Line chart over polynomial degree. Squared bias falls in steps towards zero, variance "
        "rises at every step, the noise variance is a flat line; their sum traces a U and lies on "
        "top of the measured test error.",
        notice="Bias falls and variance rises with the degree; their sum is a U that matches the test error.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(degrees, parts.test_error, "o", color="C7", ms=9, mfc="none", mew=1.5,
                label="measured test error")
        ax.plot(degrees, parts.predicted_error, "-", color="C7", label="bias² + variance + noise")
        ax.plot(degrees, parts.bias2, "s-", color="C0", label="bias²")
        ax.plot(degrees, parts.variance, "^-", color="C1", label="variance")
        ax.axhline(noise**2, ls=":", color="C2", label="noise σ²")
        ax.set_ylim(0.0, 1.08 * max(parts.test_error.max(), parts.predicted_error.max()))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("polynomial degree")
        ax.set_ylabel("squared error")
        ax.set_title("Bias² + variance + noise = test error")
        ax.legend(fontsize="small", loc="upper right")


def draw_fits(demo, grid: np.ndarray, grid_pred: np.ndarray, grid_mean: np.ndarray, degrees: np.ndarray,
              parts: Decomposition) -> None:
    """Figure with a slider over the degree: a few single fits of that degree and the average of all
    of them, with that degree's squared bias, variance and test error."""
    n_sets, i_best, lim = parts.n_sets, parts.i_best, 2.2  # fixed y range; wild fits clipped beyond it

    @demo.sweep(
        "fits", degrees, label="polynomial degree", fmt=".0f", default=i_best,
        caption=f"{N_CURVES} of the {n_sets} fits of each degree from {degrees[0]} to {degrees[-1]}, "
        f"with the average of all {n_sets}",
        alt="The wavy true curve with single fits on resampled training sets and their average. At low "
        "degrees the fits are nearly identical and far from the curve (high bias, low variance); at "
        f"degree {degrees[i_best]} they follow its shape with a little spread; at degree {degrees[-1]} "
        "their average matches the curve but single fits scatter widely, most at the edges (low bias, "
        "high variance)",
        size=(6.4, 3.4),
        notice="Raise the degree: the average fit closes in on the truth (bias falls) while the single "
        "fits spread further apart (variance rises).",
        numbers=lambda k: [demo.number(parts.bias2[k], "squared bias", ".3f"),
                           demo.number(parts.variance[k], "variance", ".3f"),
                           demo.number(parts.test_error[k], "test error", ".3f")],
    )
    def _(fig, k: int) -> None:
        ax = fig.subplots()
        lines = ax.plot(grid, np.clip(grid_pred[:, k, :], -1.2 * lim, 1.2 * lim), color="C0", lw=0.7,
                        alpha=0.35)
        lines[0].set_label("single fits")
        ax.plot(grid, grid_mean[:, k], color="C1", lw=2.2, label="average fit")
        ax.plot(grid, datasets.smooth_function(grid), "--", color="C7", lw=1.5, label="truth")
        ax.set_title(f"Degree {degrees[k]}: {N_CURVES} of {n_sets} fits")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_xlim(-1.0, 1.0)
        ax.set_ylim(-lim, lim)
        fig.legend(loc="outside lower center", ncols=3, fontsize="small")


def measure(demo, degrees: np.ndarray, parts: Decomposition, n_sets: int, n_train: int, max_degree: int,
            noise: float) -> None:
    """Record the set-up and the decomposition's key numbers."""
    demo.key_numbers("best_degree", "test_error_best", "bias2_degree_0", "variance_max_degree")
    bias2, variance, i_best = parts.bias2, parts.variance, parts.i_best
    demo.setting("n_sets", n_sets, label="Resampled training sets", fmt=".0f")
    demo.setting("n_train", n_train, label="Points per training set", fmt=".0f")
    demo.setting("n_test", N_TEST, label="Test inputs", fmt=".0f")
    demo.setting("max_degree", max_degree, label="Highest degree", fmt=".0f")
    demo.setting("noise_variance", noise**2, label="Noise variance σ²", fmt=".3g")
    demo.metric("bias2_degree_0", bias2[0], label="Bias² at degree 0", fmt=".3g")
    demo.metric("bias2_max_degree", bias2[-1], label=f"Bias² at degree {max_degree}", fmt=".2g")
    demo.metric("variance_degree_0", variance[0], label="Variance at degree 0", fmt=".3g")
    demo.metric("variance_max_degree", variance[-1], label=f"Variance at degree {max_degree}",
                fmt=".3g")
    demo.metric("best_degree", degrees[i_best], label="Degree with lowest test error", fmt=".0f")
    demo.metric("test_error_best", parts.test_error[i_best], label="Lowest test error", fmt=".3g")
    demo.metric("max_relative_gap", parts.rel_gap.max(),
                label="Largest |test error − (bias² + variance + σ²)| / test error", fmt=".2%")


def claim_findings(demo, degrees: np.ndarray, parts: Decomposition, max_degree: int) -> None:
    """Claims: variance rises, bias² falls, the parts add up, and the total traces a U."""
    bias2, variance, test_error, i_best = parts.bias2, parts.variance, parts.test_error, parts.i_best
    demo.claim(
        "Variance grows with every added degree",
        holds=bool(np.all(np.diff(variance) > 0)),
        variance_degree_0=variance[0],
        variance_max_degree=variance[-1],
    )
    demo.claim(
        f"Squared bias shrinks with complexity: degree {max_degree} has under 1% of the "
        "constant model's bias²",
        holds=bool(bias2[-1] < 0.01 * bias2[0]
                   and np.all(bias2[1:] < bias2[0]) and bias2[3] < bias2[1]),
        bias2_degree_0=bias2[0],
        bias2_degree_1=demo.number(bias2[1], "squared bias, degree 1"),
        bias2_degree_3=demo.number(bias2[3], "squared bias, degree 3"),
        bias2_max_degree=bias2[-1],
    )
    demo.check(
        f"Bias² + variance + noise matches the measured test error at every degree (within 5%, "
        f"the Monte Carlo error of {parts.n_sets} training sets)",
        holds=bool(parts.rel_gap.max() < 0.05),
        max_relative_gap=parts.rel_gap.max(),
    )
    demo.claim(
        "The total traces a U: the lowest test error is at a middle degree",
        holds=bool(0 < i_best < max_degree),
        best_degree=int(degrees[i_best]),
        test_error_best=test_error[i_best],
        test_error_degree_0=demo.number(test_error[0], "test error, degree 0"),
        test_error_max_degree=demo.number(test_error[-1], "test error, highest degree"),
    )
