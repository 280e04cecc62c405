"""Loss functions under outliers: squared error, absolute error and Huber fits of one line."""

from __future__ import annotations

import numpy as np
from demolib import linear, polynomial
from matplotlib.ticker import MaxNLocator

LOSSES = ("MSE", "Huber", "MAE")


def _fit(loss: str, X: np.ndarray, y: np.ndarray, delta: float) -> linear.LinearModel:
    if loss == "MSE":
        return linear.ridge(X, y, 0.0)
    if loss == "Huber":
        return linear.huber(X, y, delta=delta)
    return linear.mae(X, y)


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    n = int(opts.get("n", 40))
    noise = float(opts.get("noise", 0.3))
    delta = float(opts.get("delta", 1.0))
    max_outliers = int(opts.get("max_outliers", 10))
    n_shown = int(opts.get("n_shown", 4))
    slope_true, intercept_true = 2.0, 1.0

    # A clean line plus noise; then corrupt up to `max_outliers` labels on the right-hand side
    # (each outlier set contains the previous one), each pushed up by 6 to 10.
    x = np.sort(rng.uniform(-1.0, 1.0, n))
    y_clean = intercept_true + slope_true * x + noise * rng.standard_normal(n)
    candidates = rng.permutation(np.flatnonzero(x > 0.2))[:max_outliers]
    bumps = rng.uniform(6.0, 10.0, max_outliers)
    X = x[:, None]

    counts = np.arange(max_outliers + 1)
    models = []
    for k in counts:
        y = y_clean.copy()
        y[candidates[:k]] += bumps[:k]
        models += [_fit(loss, X, y, delta) for loss in LOSSES]
    y_shown = y_clean.copy()
    y_shown[candidates[:n_shown]] += bumps[:n_shown]
    graph = polynomial.export_linear_sweep(
        models, n_features=1, name="robust_line_fits",
        doc_string=f"Column 3k+j: line fitted with loss {LOSSES} [j] to the data with k outliers")
    sess = demo.onnx("line_fits", demo.make_model(graph))

    grid = np.linspace(-1.0, 1.0, 101)
    pred = polynomial.run_sweep(sess, grid).reshape(len(grid), len(counts), len(LOSSES))
    # How far each fit moves: RMS difference over [-1, 1] from the same loss's fit on clean data.
    shift = np.sqrt(np.mean((pred - pred[:, :1, :]) ** 2, axis=0))  # (counts, losses)
    ends = polynomial.run_sweep(sess, np.array([-1.0, 1.0])).reshape(2, len(counts), len(LOSSES))
    slopes = (ends[1] - ends[0]) / 2.0
    s = {loss: float(shift[n_shown, j]) for j, loss in enumerate(LOSSES)}
    slope_shown = {loss: float(slopes[n_shown, j]) for j, loss in enumerate(LOSSES)}

    # The worked example on the page: four residuals, the last an outlier.
    r = np.array([1.0, -2.0, 0.5, 6.0])
    ex_mse, ex_mae, ex_huber = (float(np.mean(r**2)), float(np.mean(np.abs(r))),
                                float(np.mean(linear.huber_loss(r, 1.0))))

    # ---- figures (draw only)
    is_out = np.zeros(n, bool)
    is_out[candidates[:n_shown]] = True

    @demo.figure(
        "fits",
        caption=f"One line fitted under three losses, with {n_shown} of {n} labels corrupted",
        alt=f"Scatter of {n} points along a rising line, {n_shown} of them pushed far above it "
        "on the right. The squared-error line tilts up towards the outliers; the Huber and "
        "absolute-error lines stay close to the true line.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(x[~is_out], y_shown[~is_out], "o", color="C7", ms=4, label="data")
        ax.plot(x[is_out], y_shown[is_out], "X", color="C4", ms=9, label="outliers")
        ax.plot(grid, intercept_true + slope_true * grid, "--", color="C7", lw=1.5,
                label="true line")
        for j, loss in enumerate(LOSSES):
            ax.plot(grid, pred[:, n_shown, j], color=f"C{j}", label=loss)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title("Outliers pull the squared-error fit")
        ax.legend(fontsize="small", loc="upper left", ncols=2)

    @demo.figure(
        "outlier-sweep",
        caption="How far each fit moves as more labels are corrupted",
        alt="Line chart against the number of outliers, 0 to 10. The squared-error fit moves "
        "further with every outlier; the Huber and absolute-error fits move far less.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for j, loss in enumerate(LOSSES):
            ax.plot(counts, shift[:, j], "o-", color=f"C{j}", label=loss)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(f"number of outliers (of {n} points)")
        ax.set_ylabel("RMS change of the fitted line")
        ax.set_title("Shift from the fit on clean data")
        ax.legend(fontsize="small", loc="upper left")

    @demo.figure(
        "loss-shapes",
        caption=f"The three losses and the pull (gradient) one residual exerts, Huber δ = {delta:g}",
        alt="Two panels against the residual. Left: squared error is a steep parabola, absolute "
        "error a V, Huber a parabola near zero that turns into straight lines. Right: the "
        "squared-error pull grows without limit, the absolute-error pull is ±1, the Huber pull is "
        "capped at ±δ.",
        size=(6.4, 3.4),
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2)
        rr = np.linspace(-4.0, 4.0, 161)
        left.plot(rr, rr**2, color="C0", label="squared")
        left.plot(rr, linear.huber_loss(rr, delta), color="C1", label="Huber")
        left.plot(rr, np.abs(rr), color="C2", label="absolute")
        left.set_ylim(0.0, 8.0)
        left.set_xlabel("residual r")
        left.set_ylabel("loss ℓ(r)")
        left.set_title("Loss")
        right.plot(rr, 2 * rr, color="C0", label="squared")
        right.plot(rr, np.clip(rr, -delta, delta), color="C1", label="Huber")
        right.plot(rr, np.sign(rr), "--", color="C2", label="absolute")
        right.set_ylim(-4.0, 4.0)
        right.set_xlabel("residual r")
        right.set_ylabel("pull dℓ/dr")
        right.set_title("Pull of one point")
        left.legend(fontsize="small", loc="upper center")

    # ---- metrics and claims
    demo.metric("n_points", n, label="Points", fmt=".0f")
    demo.metric("n_outliers", n_shown, label="Corrupted labels in the main example", fmt=".0f")
    for loss in LOSSES:
        key = loss.lower()
        demo.metric(f"shift_{key}", s[loss], label=f"{loss} fit: RMS shift from clean fit",
                    fmt=".2f")
        demo.metric(f"slope_{key}", slope_shown[loss], label=f"{loss} fit: slope (true 2)",
                    fmt=".2f")
    demo.metric("slope_mse_clean", slopes[0, 0], label="MSE fit on clean data: slope", fmt=".2f")
    demo.metric("shift_ratio_mse_huber", s["MSE"] / s["Huber"],
                label="MSE shift / Huber shift", fmt=".2g")
    demo.metric("example_mse", ex_mse, label="Worked example: mean squared error", fmt=".6g")
    demo.metric("example_mae", ex_mae, label="Worked example: mean absolute error", fmt=".6g")
    demo.metric("example_huber", ex_huber, label="Worked example: mean Huber loss", fmt=".6g")

    demo.claim(
        f"With {n_shown} corrupted labels the Huber and absolute-error fits move less than a "
        "quarter as far as the squared-error fit",
        holds=bool(max(s["Huber"], s["MAE"]) < 0.25 * s["MSE"]),
        shift_mse=s["MSE"],
        shift_huber=s["Huber"],
        shift_mae=s["MAE"],
    )
    demo.claim(
        "Every added outlier moves the squared-error fit further, and the robust fits move "
        "less than it at every count",
        holds=bool(np.all(np.diff(shift[:, 0]) > 0)
                   and np.all(shift[1:, 1:] < shift[1:, :1])),
        shift_mse_max=shift[-1, 0],
        shift_huber_max=shift[-1, 1],
        shift_mae_max=shift[-1, 2],
    )
    demo.claim(
        "Worked example, residuals (1, −2, 0.5, 6): mean squared error 10.3125, mean absolute "
        "error 2.375, mean Huber loss (δ = 1) 1.90625",
        holds=bool(np.isclose(ex_mse, 10.3125) and np.isclose(ex_mae, 2.375)
                   and np.isclose(ex_huber, 1.90625)),
        mse=ex_mse,
        mae=ex_mae,
        huber=ex_huber,
    )
