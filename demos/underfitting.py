"""Underfitting: a straight line fitted to y = x² misses the same way on training and new data."""

from __future__ import annotations

import numpy as np
from demolib import polynomial

DOMAIN = (-3.0, 3.0)


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    n_train = int(opts.get("n_train", 40))
    noise = float(opts.get("noise", 0.5))

    # Inputs evenly spread over [-3, 3] (cell midpoints), y = x² plus a little noise;
    # 300 validation points drawn uniformly from the same interval.
    x_train = -3.0 + (np.arange(n_train) + 0.5) * 6.0 / n_train
    y_train = x_train**2 + noise * rng.standard_normal(n_train)
    x_val = rng.uniform(*DOMAIN, 300)
    y_val = x_val**2 + noise * rng.standard_normal(300)

    names = ["straight line", "quadratic"]
    models = [polynomial.fit(x_train, y_train, d, domain=DOMAIN) for d in (1, 2)]
    graph = polynomial.export_linear_sweep(
        models, chebyshev=2, domain=DOMAIN, name="line_and_quadratic",
        doc_string="Column 0: least-squares line; column 1: least-squares quadratic")
    sess = demo.onnx("line_and_quadratic", demo.make_model(graph))

    pred_train = polynomial.run_sweep(sess, x_train)
    pred_val = polynomial.run_sweep(sess, x_val)
    res_train = y_train[:, None] - pred_train
    res_val = y_val[:, None] - pred_val
    train_mse = np.mean(res_train**2, axis=0)
    val_mse = np.mean(res_val**2, axis=0)
    grid = np.linspace(*DOMAIN, 200)
    grid_pred = polynomial.run_sweep(sess, grid)
    ends = polynomial.run_sweep(sess, np.array([-3.0, 0.0, 3.0]))[:, 0]
    slope, intercept = (ends[2] - ends[0]) / 6.0, ends[1]

    # U-shaped residuals of the line: positive at both ends, negative in the middle.
    def zone_means(x: np.ndarray, r: np.ndarray) -> tuple[float, float]:
        return float(r[np.abs(x) > 2.0].mean()), float(r[np.abs(x) < 1.0].mean())

    line_ends_train, line_mid_train = zone_means(x_train, res_train[:, 0])
    line_ends_val, line_mid_val = zone_means(x_val, res_val[:, 0])
    quad_ends_val, quad_mid_val = zone_means(x_val, res_val[:, 1])

    # ---- figures (draw only)
    @demo.figure(
        "fits",
        caption="A straight line and a quadratic fitted to y = x² plus noise",
        alt="Training and validation points on a parabola. The fitted straight line is flat at "
        "about y = 3: too high in the middle, too low at both ends. The quadratic follows the "
        "points.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(x_val, y_val, ".", color="C7", ms=4, alpha=0.6, label="validation")
        ax.plot(x_train, y_train, "o", color="C4", ms=5, label="training")
        for k, name in enumerate(names):
            ax.plot(grid, grid_pred[:, k], color=f"C{k}", label=name)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title("Fits to y = x² + noise")
        ax.legend(fontsize="small", loc="upper center", ncols=2)
        ax.set_ylim(None, 13.5)

    @demo.figure(
        "residuals",
        caption="Residuals (target minus prediction) of each model against x",
        alt="Two panels. Left, straight line: residuals form a U, positive at both ends and "
        "negative in the middle, for training and validation points alike. Right, quadratic: "
        "residuals scatter evenly around zero.",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, 2, sharey=True)
        for k, ax in enumerate(axes):
            ax.axhline(0.0, color="C7", lw=1)
            ax.plot(x_val, res_val[:, k], ".", color="C7", ms=4, alpha=0.6, label="validation")
            ax.plot(x_train, res_train[:, k], "o", color=f"C{k}", ms=4, label="training")
            ax.set_title(names[k])
            ax.set_xlabel("x")
        axes[0].set_ylabel("residual")
        axes[1].legend(fontsize="small", loc="upper center")

    @demo.figure(
        "errors",
        caption="Training and validation error of both models (dotted: noise variance)",
        alt="Bar chart. The straight line has high and almost equal training and validation "
        "errors; the quadratic's are both far lower, close to the noise variance.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        pos = np.arange(len(names))
        ax.set_axisbelow(True)
        for off, values, color, label in ((-0.2, train_mse, "C0", "training"),
                                          (0.2, val_mse, "C1", "validation")):
            bars = ax.bar(pos + off, values, 0.4, color=color, label=label)
            ax.bar_label(bars, fmt="%.2f", padding=2, fontsize="small")
        ax.axhline(noise**2, ls=":", color="C7", label="noise variance")
        ax.set_xticks(pos, names)
        ax.set_ylabel("mean squared error")
        ax.set_title("Both errors high, then both low")
        ax.legend(fontsize="small")

    # ---- metrics and claims
    demo.metric("line_slope", slope, label="Slope of the fitted line", fmt=".2f")
    demo.metric("line_intercept", intercept, label="Height of the fitted line at x = 0", fmt=".2f")
    demo.metric("line_train_mse", train_mse[0], label="Line: training MSE", fmt=".3g")
    demo.metric("line_val_mse", val_mse[0], label="Line: validation MSE", fmt=".3g")
    demo.metric("quad_train_mse", train_mse[1], label="Quadratic: training MSE", fmt=".3g")
    demo.metric("quad_val_mse", val_mse[1], label="Quadratic: validation MSE", fmt=".3g")
    demo.metric("noise_variance", noise**2, label="Noise variance", fmt=".3g")
    demo.metric("line_residual_ends", line_ends_val,
                label="Line: mean validation residual where |x| > 2", fmt=".2f")
    demo.metric("line_residual_middle", line_mid_val,
                label="Line: mean validation residual where |x| < 1", fmt=".2f")

    demo.claim(
        "The least-squares line is almost flat, at a height close to the mean of x² (3)",
        holds=bool(abs(slope) < 0.1 and abs(intercept - 3.0) < 0.25),
        slope=slope,
        intercept=intercept,
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
        "(positive where |x| > 2, negative where |x| < 1)",
        holds=bool(min(line_ends_train, line_ends_val) > 0 > max(line_mid_train, line_mid_val)),
        train_ends=line_ends_train,
        train_middle=line_mid_train,
        val_ends=line_ends_val,
        val_middle=line_mid_val,
    )
    demo.claim(
        "Adding x² lowers both errors to about the noise variance and removes the U",
        holds=bool(train_mse[1] < train_mse[0] / 5 and val_mse[1] < val_mse[0] / 5
                   and max(train_mse[1], val_mse[1]) < 1.5 * noise**2
                   and max(abs(quad_ends_val), abs(quad_mid_val))
                   < 0.1 * min(line_ends_val, -line_mid_val)),
        quad_train_mse=train_mse[1],
        quad_val_mse=val_mse[1],
        quad_val_ends=quad_ends_val,
        quad_val_middle=quad_mid_val,
    )
