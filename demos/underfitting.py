"""Underfitting: a straight line fitted to y = x² misses the same way on training and new data.

A line and a quadratic are fitted to noisy points of a parabola. The line's training and
validation errors are both high and close to each other, and its residuals form the same U on
both sets; adding x² brings both errors down to the noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import polynomial

DOMAIN = (-3.0, 3.0)
N_VAL = 300  # validation points drawn uniformly from DOMAIN
N_GRID = 200  # points where the fitted curves are drawn
ENDS, MIDDLE = 2.0, 1.0  # residual zones: |x| > ENDS and |x| < MIDDLE
MEAN_X2 = (DOMAIN[1] ** 3 - DOMAIN[0] ** 3) / (3 * (DOMAIN[1] - DOMAIN[0]))  # mean of x² over DOMAIN
NAMES = ["straight line", "quadratic"]
MAX_DEGREE = 7  # the slider runs over degrees 0 to MAX_DEGREE
DEGREE_NAMES = ["constant", "straight line", "quadratic", "cubic"]  # beyond: "degree d polynomial"


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass
class Fits:
    res_train: np.ndarray  # column 0: line, column 1: quadratic
    res_val: np.ndarray
    train_mse: np.ndarray
    val_mse: np.ndarray
    grid: np.ndarray
    grid_pred: np.ndarray
    slope: float
    intercept: float


@dataclass
class Zones:
    """Mean residuals where |x| > ENDS and |x| < MIDDLE."""
    line_ends_train: float
    line_mid_train: float
    line_ends_val: float
    line_mid_val: float
    quad_ends_val: float
    quad_mid_val: float


@dataclass
class DegreeFits:
    """Every degree from 0 to MAX_DEGREE, fitted in NumPy (float64) for the slider."""
    degrees: np.ndarray
    grid_pred: np.ndarray  # column k: the degree-k fit on Fits.grid
    train_mse: np.ndarray
    val_mse: np.ndarray


def run(demo) -> None:
    opts = demo.options
    n_train = int(opts.get("n_train", 40))
    noise = float(opts.get("noise", 0.5))

    data = make_data(demo.rng, n_train, noise)
    models = [polynomial.fit(data.x_train, data.y_train, d, domain=DOMAIN) for d in (1, 2)]
    sess = export(demo, models)
    fits = evaluate(sess, data)
    zones = residual_zones(data, fits)
    by_degree = fit_every_degree(data, fits.grid)

    draw_fits(demo, data, fits, by_degree)
    draw_residuals(demo, data, fits)
    draw_errors(demo, fits, noise)
    measure(demo, fits, zones, noise, n_train)
    claim_findings(demo, fits, zones, noise)


def make_data(rng: np.random.Generator, n_train: int, noise: float) -> Data:
    """Noisy points of y = x²: training evenly spread, validation drawn at random."""
    # Inputs evenly spread over DOMAIN (cell midpoints), y = x² plus a little noise;
    # N_VAL validation points drawn uniformly from the same interval.
    x_train = -3.0 + (np.arange(n_train) + 0.5) * 6.0 / n_train
    y_train = x_train**2 + noise * rng.standard_normal(n_train)
    x_val = rng.uniform(*DOMAIN, N_VAL)
    y_val = x_val**2 + noise * rng.standard_normal(N_VAL)
    return Data(x_train, y_train, x_val, y_val)


def export(demo, models: list):
    """Export the line and the quadratic as one ONNX graph and open it in ONNX Runtime."""
    graph = polynomial.export_linear_sweep(
        models, chebyshev=2, domain=DOMAIN, name="line_and_quadratic",
        doc_string="Column 0: least-squares line; column 1: least-squares quadratic")
    return demo.onnx("line_and_quadratic", demo.make_model(graph))


def evaluate(sess, data: Data) -> Fits:
    """Residuals and errors of both models, and the line's slope and height, from ONNX Runtime."""
    pred_train = polynomial.run_sweep(sess, data.x_train)
    pred_val = polynomial.run_sweep(sess, data.x_val)
    res_train = data.y_train[:, None] - pred_train
    res_val = data.y_val[:, None] - pred_val
    train_mse = np.mean(res_train**2, axis=0)
    val_mse = np.mean(res_val**2, axis=0)
    grid = np.linspace(*DOMAIN, N_GRID)
    grid_pred = polynomial.run_sweep(sess, grid)
    ends = polynomial.run_sweep(sess, np.array([DOMAIN[0], 0.0, DOMAIN[1]]))[:, 0]
    slope, intercept = (ends[2] - ends[0]) / (DOMAIN[1] - DOMAIN[0]), ends[1]
    return Fits(res_train, res_val, train_mse, val_mse, grid, grid_pred, slope, intercept)


def residual_zones(data: Data, fits: Fits) -> Zones:
    """Mean residual at the ends and in the middle, for the line and the quadratic."""
    # U-shaped residuals of the line: positive at both ends, negative in the middle.
    def zone_means(x: np.ndarray, r: np.ndarray) -> tuple[float, float]:
        return float(r[np.abs(x) > ENDS].mean()), float(r[np.abs(x) < MIDDLE].mean())

    line_ends_train, line_mid_train = zone_means(data.x_train, fits.res_train[:, 0])
    line_ends_val, line_mid_val = zone_means(data.x_val, fits.res_val[:, 0])
    quad_ends_val, quad_mid_val = zone_means(data.x_val, fits.res_val[:, 1])
    return Zones(line_ends_train, line_mid_train, line_ends_val, line_mid_val, quad_ends_val, quad_mid_val)


def fit_every_degree(data: Data, grid: np.ndarray) -> DegreeFits:
    """Least-squares polynomials of every degree up to MAX_DEGREE (NumPy): their curves on the grid
    and their training and validation errors, for the slider."""
    degrees = np.arange(MAX_DEGREE + 1)
    models = [polynomial.fit(data.x_train, data.y_train, int(d), domain=DOMAIN) for d in degrees]

    def mse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.array([np.mean((polynomial.predict(m, x, domain=DOMAIN) - y) ** 2) for m in models])

    grid_pred = np.column_stack([polynomial.predict(m, grid, domain=DOMAIN) for m in models])
    return DegreeFits(degrees, grid_pred, mse(data.x_train, data.y_train), mse(data.x_val, data.y_val))


def degree_name(d: int) -> str:
    """Words for a polynomial of degree d: "straight line", "quadratic", "degree 5 polynomial"."""
    return DEGREE_NAMES[d] if d < len(DEGREE_NAMES) else f"degree {d} polynomial"


def draw_fits(demo, data: Data, fits: Fits, by_degree: DegreeFits) -> None:
    """Figure with a slider over the degree: that degree's fit over the training and validation
    points, with its training and validation error."""
    degrees = by_degree.degrees
    y_all = np.concatenate([data.y_train, data.y_val])
    ylim = (min(y_all.min(), 0.0) - 1.0, 13.5)  # fixed across frames; room for the legend on top

    @demo.sweep(
        "fits", degrees, label="polynomial degree", fmt=".0f", default=1,
        caption=f"Least-squares polynomials of degree {degrees[0]} to {degrees[-1]} fitted to "
        "y = x² plus noise",
        alt="Training and validation points on a parabola and the fitted polynomial. A constant or a "
        f"straight line is flat at about y = {fits.intercept:.1f}: too high in the middle, too low at "
        "both ends. From degree 2 on the curve follows the points",
        notice="The line is almost flat and misses the same way on both sets; adding x² (degree 2) "
        "brings both errors down to the noise, and higher degrees barely change them.",
        numbers=lambda k: [demo.number(by_degree.train_mse[k], "training error", ".2f"),
                           demo.number(by_degree.val_mse[k], "validation error", ".2f")],
    )
    def _(fig, k: int) -> None:
        ax = fig.subplots()
        ax.plot(data.x_val, data.y_val, ".", color="C7", ms=4, alpha=0.6, label="validation")
        ax.plot(data.x_train, data.y_train, "o", color="C4", ms=5, label="training")
        ax.plot(fits.grid, np.clip(by_degree.grid_pred[:, k], ylim[0] - 1.0, ylim[1] + 1.0), color="C0",
                lw=2, label=degree_name(int(degrees[k])))
        ax.set_xlim(DOMAIN[0] - 0.2, DOMAIN[1] + 0.2)
        ax.set_ylim(*ylim)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(f"{degree_name(int(degrees[k])).capitalize()} fitted to y = x² + noise")
        ax.legend(fontsize="small", loc="upper center", ncols=3)


def draw_residuals(demo, data: Data, fits: Fits) -> None:
    """Figure: residuals of each model against x, one panel per model."""
    @demo.figure(
        "residuals",
        caption="Residuals (target minus prediction) of each model against x",
        alt="Two panels. Left, straight line: residuals form a U, positive at both ends and "
        "negative in the middle, for training and validation points alike. Right, quadratic: "
        "residuals scatter evenly around zero.",
        notice="The line's residuals form a U; the quadratic's scatter evenly around zero.",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, 2, sharey=True)
        for k, ax in enumerate(axes):
            ax.axhline(0.0, color="C7", lw=1)
            ax.plot(data.x_val, fits.res_val[:, k], ".", color="C7", ms=4, alpha=0.6, label="validation")
            ax.plot(data.x_train, fits.res_train[:, k], "o", color=f"C{k}", ms=4, label="training")
            ax.set_title(NAMES[k])
            ax.set_xlabel("x")
        axes[0].set_ylabel("residual")
        axes[1].legend(fontsize="small", loc="upper center")


def draw_errors(demo, fits: Fits, noise: float) -> None:
    """Figure: bar chart of training and validation error of both models."""
    @demo.figure(
        "errors",
        caption="Training and validation error of both models (dotted: noise variance)",
        alt="Bar chart. The straight line has high and almost equal training and validation "
        "errors; the quadratic's are both far lower, close to the noise variance.",
        notice="Both of the line's errors are high and close together: the sign of underfitting.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        pos = np.arange(len(NAMES))
        ax.set_axisbelow(True)
        for off, values, color, label in ((-0.2, fits.train_mse, "C0", "training"),
                                          (0.2, fits.val_mse, "C1", "validation")):
            bars = ax.bar(pos + off, values, 0.4, color=color, label=label)
            ax.bar_label(bars, fmt="%.2f", padding=2, fontsize="small")
        ax.axhline(noise**2, ls=":", color="C7", label="noise variance")
        ax.set_xticks(pos, NAMES)
        ax.set_ylabel("mean squared error")
        ax.set_title("Both errors high, then both low")
        ax.legend(fontsize="small")


def measure(demo, fits: Fits, zones: Zones, noise: float, n_train: int) -> None:
    """Record the setup, the line's shape, both models' errors and the line's mean residuals."""
    demo.key_numbers("noise_variance", "line_train_mse", "line_val_mse", "quad_train_mse", "quad_val_mse")
    train_mse, val_mse = fits.train_mse, fits.val_mse
    demo.setting("n_train", n_train, label="Training points", fmt=".0f")
    demo.setting("n_val", N_VAL, label="Validation points", fmt=".0f")
    demo.setting("x_max", DOMAIN[1], label="Inputs range from −xₘₐₓ to xₘₐₓ", fmt="g")
    demo.setting("mean_x2", MEAN_X2, label="Mean of x² over the input range", fmt="g")
    demo.setting("ends_from", ENDS, label="Residual zone 'ends': |x| above", fmt="g")
    demo.setting("middle_to", MIDDLE, label="Residual zone 'middle': |x| below", fmt="g")
    demo.metric("line_slope", fits.slope, label="Slope of the fitted line", fmt=".2f")
    demo.metric("line_intercept", fits.intercept, label="Height of the fitted line at x = 0", fmt=".2f")
    demo.metric("line_train_mse", train_mse[0], label="Line: training MSE", fmt=".3g")
    demo.metric("line_val_mse", val_mse[0], label="Line: validation MSE", fmt=".3g")
    demo.metric("quad_train_mse", train_mse[1], label="Quadratic: training MSE", fmt=".3g")
    demo.metric("quad_val_mse", val_mse[1], label="Quadratic: validation MSE", fmt=".3g")
    demo.setting("noise_variance", noise**2, label="Noise variance", fmt=".3g")
    demo.metric("line_residual_ends", zones.line_ends_val,
                label=f"Line: mean validation residual where |x| > {ENDS:g}", fmt=".2f")
    demo.metric("line_residual_middle", zones.line_mid_val,
                label=f"Line: mean validation residual where |x| < {MIDDLE:g}", fmt=".2f")


def claim_findings(demo, fits: Fits, zones: Zones, noise: float) -> None:
    """Claim: the line is flat, underfits alike on both sets with a U; the quadratic fixes it."""
    train_mse, val_mse, slope, intercept = fits.train_mse, fits.val_mse, fits.slope, fits.intercept
    steepest = 2 * DOMAIN[1]  # the parabola's slope at the end of the range
    demo.claim(
        f"The least-squares line is almost flat (its slope under 5% of the parabola's {steepest:g} "
        f"at the ends), at a height within 10% of the mean of x² ({MEAN_X2:g})",
        holds=bool(abs(slope) < 0.05 * steepest and abs(intercept - MEAN_X2) < 0.1 * MEAN_X2),
        slope=demo.number(slope, "slope of the line"),
        intercept=demo.number(intercept, "intercept"),
    )
    demo.claim(
        "The line underfits: training and validation errors are both far above the noise "
        "variance and close to each other",
        holds=bool(min(train_mse[0], val_mse[0]) > 5 * noise**2
                   and 0.67 < val_mse[0] / train_mse[0] < 1.5),
        line_train_mse=train_mse[0],
        line_val_mse=val_mse[0],
        noise_variance=noise**2,
    )
    demo.claim(
        "Its residuals form a U on training and validation points alike "
        f"(positive where |x| > {ENDS:g}, negative where |x| < {MIDDLE:g})",
        holds=bool(min(zones.line_ends_train, zones.line_ends_val)
                   > 0 > max(zones.line_mid_train, zones.line_mid_val)),
        train_ends=demo.number(zones.line_ends_train, "mean residual at the ends, training"),
        train_middle=demo.number(zones.line_mid_train, "in the middle, training"),
        val_ends=demo.number(zones.line_ends_val, "at the ends, validation"),
        val_middle=demo.number(zones.line_mid_val, "in the middle, validation"),
    )
    demo.claim(
        "Adding x² lowers both errors to about the noise variance (under twice it) and removes "
        "the U: the gap between its mean residual at the ends and in the middle is under a fifth "
        "of the line's",
        holds=bool(train_mse[1] < train_mse[0] / 5 and val_mse[1] < val_mse[0] / 5
                   and max(train_mse[1], val_mse[1]) < 2 * noise**2
                   and abs(zones.quad_ends_val - zones.quad_mid_val)
                   < 0.2 * (zones.line_ends_val - zones.line_mid_val)),
        quad_train_mse=train_mse[1],
        quad_val_mse=val_mse[1],
        quad_val_ends=demo.number(zones.quad_ends_val, "with x², mean residual at the ends, validation"),
        quad_val_middle=demo.number(zones.quad_mid_val, "in the middle, validation"),
    )
