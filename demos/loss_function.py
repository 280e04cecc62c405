"""Loss functions under outliers: squared error, absolute error and Huber fits of one line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import linear, polynomial
from matplotlib.ticker import MaxNLocator

LOSSES = ("MSE", "Huber", "MAE")
SLOPE_TRUE, INTERCEPT_TRUE = 2.0, 1.0


@dataclass
class Data:
    """A clean noisy line and the outliers that corrupt it, one more at a time."""

    x: np.ndarray  # sorted inputs in [-1, 1]
    y_clean: np.ndarray
    candidates: np.ndarray  # indices to corrupt, in order
    bumps: np.ndarray  # how far each one is pushed up


@dataclass
class Fits:
    """Every fitted line (per outlier count and loss), as run by ONNX Runtime."""

    grid: np.ndarray
    pred: np.ndarray  # (grid, counts, losses)
    shift: np.ndarray  # (counts, losses): RMS change from the same loss's clean fit
    slopes: np.ndarray  # (counts, losses)
    s: dict[str, float]  # shift with n_shown outliers, per loss
    slope_shown: dict[str, float]  # slope with n_shown outliers, per loss


def run(demo) -> None:
    opts = demo.options
    n = int(opts.get("n", 40))
    noise = float(opts.get("noise", 0.3))
    delta = float(opts.get("delta", 1.0))
    max_outliers = int(opts.get("max_outliers", 10))
    n_shown = int(opts.get("n_shown", 4))

    data = make_data(demo.rng, n, noise, max_outliers)
    counts = np.arange(max_outliers + 1)
    models = fit_lines(data, counts, delta)
    y_shown = corrupt(data, n_shown)
    sess = export(demo, models)
    fits = evaluate(sess, counts, n_shown)
    ex_mse, ex_mae, ex_huber = worked_example()

    draw_fits(demo, data, y_shown, fits, n, n_shown)
    draw_outlier_sweep(demo, fits, counts, n)
    draw_loss_shapes(demo, delta)
    measure(demo, fits, n, n_shown, ex_mse, ex_mae, ex_huber)
    claim_findings(demo, fits, n_shown, ex_mse, ex_mae, ex_huber)


def make_data(rng, n: int, noise: float, max_outliers: int) -> Data:
    """A clean line plus noise, and up to `max_outliers` labels on the right-hand side to corrupt."""
    # Each outlier set contains the previous one; each outlier is pushed up by 6 to 10.
    x = np.sort(rng.uniform(-1.0, 1.0, n))
    y_clean = INTERCEPT_TRUE + SLOPE_TRUE * x + noise * rng.standard_normal(n)
    candidates = rng.permutation(np.flatnonzero(x > 0.2))[:max_outliers]
    bumps = rng.uniform(6.0, 10.0, max_outliers)
    return Data(x, y_clean, candidates, bumps)


def fit_lines(data: Data, counts: np.ndarray, delta: float) -> list[linear.LinearModel]:
    """Fit one line under each loss, for every number of outliers."""
    X = data.x[:, None]
    models = []
    for k in counts:
        y = data.y_clean.copy()
        y[data.candidates[:k]] += data.bumps[:k]
        models += [_fit(loss, X, y, delta) for loss in LOSSES]
    return models


def corrupt(data: Data, k: int) -> np.ndarray:
    """The labels with the first k outliers added."""
    y_shown = data.y_clean.copy()
    y_shown[data.candidates[:k]] += data.bumps[:k]
    return y_shown


def export(demo, models: list[linear.LinearModel]):
    """All the lines in one ONNX graph, one output column each."""
    graph = polynomial.export_linear_sweep(
        models, n_features=1, name="robust_line_fits",
        doc_string=f"Column 3k+j: line fitted with loss {LOSSES} [j] to the data with k outliers")
    return demo.onnx("line_fits", demo.make_model(graph))


def evaluate(sess, counts: np.ndarray, n_shown: int) -> Fits:
    """Run every line in ONNX Runtime: how far it moves, and its slope."""
    grid = np.linspace(-1.0, 1.0, 101)
    pred = polynomial.run_sweep(sess, grid).reshape(len(grid), len(counts), len(LOSSES))
    # How far each fit moves: RMS difference over [-1, 1] from the same loss's fit on clean data.
    shift = np.sqrt(np.mean((pred - pred[:, :1, :]) ** 2, axis=0))  # (counts, losses)
    ends = polynomial.run_sweep(sess, np.array([-1.0, 1.0])).reshape(2, len(counts), len(LOSSES))
    slopes = (ends[1] - ends[0]) / 2.0
    s = {loss: float(shift[n_shown, j]) for j, loss in enumerate(LOSSES)}
    slope_shown = {loss: float(slopes[n_shown, j]) for j, loss in enumerate(LOSSES)}
    return Fits(grid, pred, shift, slopes, s, slope_shown)


def worked_example() -> tuple[float, float, float]:
    """The worked example on the page: four residuals, the last an outlier."""
    r = np.array([1.0, -2.0, 0.5, 6.0])
    return (float(np.mean(r**2)), float(np.mean(np.abs(r))),
            float(np.mean(linear.huber_loss(r, 1.0))))


def draw_fits(demo, data: Data, y_shown: np.ndarray, fits: Fits, n: int, n_shown: int) -> None:
    """Figure: the data with n_shown outliers and the line each loss fits."""
    x, grid = data.x, fits.grid
    is_out = np.zeros(n, bool)
    is_out[data.candidates[:n_shown]] = True

    @demo.figure(
        "fits",
        caption=f"One line fitted under each loss ({', '.join(LOSSES)}), with {n_shown} of {n} "
        "labels corrupted",
        alt=f"Scatter of {n} points along a rising line, {n_shown} of them pushed far above it "
        "on the right. The squared-error line tilts up towards the outliers; the Huber and "
        "absolute-error lines stay close to the true line.",
        notice="The outliers pull the squared-error line towards them; Huber and absolute error barely move.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(x[~is_out], y_shown[~is_out], "o", color="C7", ms=4, label="data")
        ax.plot(x[is_out], y_shown[is_out], "X", color="C4", ms=9, label="outliers")
        ax.plot(grid, INTERCEPT_TRUE + SLOPE_TRUE * grid, "--", color="C7", lw=1.5,
                label="true line")
        for j, loss in enumerate(LOSSES):
            ax.plot(grid, fits.pred[:, n_shown, j], color=f"C{j}", label=loss)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title("Outliers pull the squared-error fit")
        ax.legend(fontsize="small", loc="upper left", ncols=2)


def draw_outlier_sweep(demo, fits: Fits, counts: np.ndarray, n: int) -> None:
    """Figure: how far each fit moves as outliers are added."""

    @demo.figure(
        "outlier-sweep",
        caption="How far each fit moves as more labels are corrupted",
        alt=f"Line chart against the number of outliers, {counts[0]} to {counts[-1]}. The "
        "squared-error fit moves further with every outlier; the Huber and absolute-error fits "
        "move far less.",
        notice="Each outlier moves the squared-error fit further; the robust fits move far less.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for j, loss in enumerate(LOSSES):
            ax.plot(counts, fits.shift[:, j], "o-", color=f"C{j}", label=loss)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(f"number of outliers (of {n} points)")
        ax.set_ylabel("RMS change of the fitted line")
        ax.set_title("Shift from the fit on clean data")
        ax.legend(fontsize="small", loc="upper left")


def draw_loss_shapes(demo, delta: float) -> None:
    """Figure: the three losses and the pull one residual exerts under each."""

    @demo.figure(
        "loss-shapes",
        caption=f"The three losses and the pull (gradient) one residual exerts, Huber δ = {delta:g}",
        alt="Two panels against the residual. Left: squared error is a steep parabola, absolute "
        "error a V, Huber a parabola near zero that turns into straight lines. Right: the "
        "squared-error pull grows without limit, the absolute-error pull has the same size for "
        "every residual, the Huber pull is capped at ±δ.",
        size=(6.4, 3.4),
        notice="The squared-error pull grows without limit; Huber caps it and absolute error keeps it constant.",
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


def measure(demo, fits: Fits, n: int, n_shown: int, ex_mse: float, ex_mae: float, ex_huber: float) -> None:
    """Record each fit's shift and slope, and the worked example's losses."""
    demo.key_numbers("shift_mse", "shift_huber", "shift_mae", "slope_mse", "slope_huber")
    s = fits.s
    demo.setting("n_points", n, label="Points", fmt=".0f")
    demo.setting("n_outliers", n_shown, label="Corrupted labels in the main example", fmt=".0f")
    demo.setting("max_outliers", int(fits.shift.shape[0] - 1), label="Most corrupted labels tried", fmt=".0f")
    demo.setting("slope_true", SLOPE_TRUE, label="Slope of the true line", fmt="g")
    for loss in LOSSES:
        key = loss.lower()
        demo.metric(f"shift_{key}", s[loss], label=f"{loss} fit: RMS shift from clean fit",
                    fmt=".2f")
        demo.metric(f"slope_{key}", fits.slope_shown[loss], label=f"{loss} fit: slope (true {SLOPE_TRUE:g})",
                    fmt=".2f")
    demo.metric("slope_mse_clean", fits.slopes[0, 0], label="MSE fit on clean data: slope", fmt=".2f")
    demo.metric("shift_ratio_mse_huber", s["MSE"] / s["Huber"],
                label="MSE shift / Huber shift", fmt=".2g")
    demo.metric("example_mse", ex_mse, label="Worked example: mean squared error", fmt=".6g")
    demo.metric("example_mae", ex_mae, label="Worked example: mean absolute error", fmt=".6g")
    demo.metric("example_huber", ex_huber, label="Worked example: mean Huber loss", fmt=".6g")


def claim_findings(demo, fits: Fits, n_shown: int, ex_mse: float, ex_mae: float, ex_huber: float) -> None:
    """Claims: robust fits move far less than squared error; the worked example's numbers."""
    s, shift = fits.s, fits.shift
    demo.claim(
        f"With {n_shown} corrupted labels the Huber and absolute-error fits move less than half "
        "as far as the squared-error fit",
        holds=bool(max(s["Huber"], s["MAE"]) < 0.5 * s["MSE"]),
        shift_mse=s["MSE"],
        shift_huber=s["Huber"],
        shift_mae=s["MAE"],
    )
    demo.claim(
        f"Every added outlier, up to {len(shift) - 1}, moves the squared-error fit further",
        holds=bool(np.all(np.diff(shift[:, 0]) > 0)),
        shift_mse_first=demo.number(shift[1, 0], "shift of the squared-error fit, one outlier"),
        shift_mse_max=demo.number(shift[-1, 0], "with the most outliers"),
    )
    demo.claim(
        f"With 1 to {n_shown} corrupted labels the robust fits move less than the squared-error "
        "fit at every count",
        holds=bool(np.all(shift[1:n_shown + 1, 1:] < shift[1:n_shown + 1, :1])),
        shift_mse=demo.number(", ".join(f"{v:.3f}" for v in shift[1:n_shown + 1, 0]),
                                "shift of the squared-error fit, by count"),
        shift_huber=demo.number(", ".join(f"{v:.3f}" for v in shift[1:n_shown + 1, 1]),
                                "shift of the Huber fit, by count"),
        shift_mae=demo.number(", ".join(f"{v:.3f}" for v in shift[1:n_shown + 1, 2]),
                                "shift of the absolute-error fit, by count"),
    )
    demo.check(
        "Worked example, residuals (1, −2, 0.5, 6): mean squared error 10.3125, mean absolute "
        "error 2.375, mean Huber loss (δ = 1) 1.90625",
        holds=bool(np.isclose(ex_mse, 10.3125) and np.isclose(ex_mae, 2.375)
                   and np.isclose(ex_huber, 1.90625)),
        mse=ex_mse,
        mae=ex_mae,
        huber=ex_huber,
    )


def _fit(loss: str, X: np.ndarray, y: np.ndarray, delta: float) -> linear.LinearModel:
    """Fit one line under the named loss."""
    if loss == "MSE":
        return linear.ridge(X, y, 0.0)
    if loss == "Huber":
        return linear.huber(X, y, delta=delta)
    return linear.mae(X, y)
