"""The sigmoid function: logistic regression with an ONNX Sigmoid node, the sigmoid's slope
(at most 1/4, at z = 0), and the vanishing gradient through stacked sigmoid layers.

Logistic regression fitted by Newton's method recovers the true log-odds; a lone ONNX Sigmoid node
shows the S curve and its bell-shaped slope; and stacks of sigmoid layers shrink the gradient
reaching the first layer about four times per layer, where tanh layers do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from demolib import datasets, deepnets, nets, plotting
from matplotlib.ticker import LogLocator

TRUE_W, TRUE_B = 2.0, -0.5  # the data's true log-odds: 2 x - 0.5
DEPTHS = tuple(range(1, 13))
WIDTH = 16  # units per hidden layer in the stacks
STEP = 0.01  # spacing of the z grid where the sigmoid's slope is measured
PROBE_Z = 5.0  # where the page quotes the slope far from zero
REPEATS = 400  # fresh data sets drawn to measure how often ±2 standard errors cover the truth
NOMINAL = math.erf(2.0 / math.sqrt(2.0))  # coverage of ±2 standard errors under a normal law


@dataclass
class Logistic:
    """The fitted logistic regression, as run by ONNX Runtime."""
    theta: np.ndarray  # (w, b)
    se: np.ndarray
    z_scores: np.ndarray
    ort_diff: float
    accuracy: float
    boundary: float
    p_boundary: float
    grid: np.ndarray
    p_grid: np.ndarray


@dataclass
class Curve:
    """The sigmoid on a z grid, and its slope by central differences."""
    z: np.ndarray
    s: np.ndarray
    z_mid: np.ndarray
    slope: np.ndarray
    peak_z: float
    peak_slope: float
    symmetry_err: float
    identity_err: float


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    n = int(opts.get("n", 300))
    n_inits = int(opts.get("inits", 3))

    x, y = make_data(rng, n)
    theta, cov = _newton_logistic(x, y)
    fit = evaluate_logistic(demo, x, y, theta, cov)
    curve = sigmoid_curve(demo)
    depths, ratio, factor = vanishing_gradient(rng, n_inits)

    jitter = rng.uniform(-0.04, 0.04, n)  # lifts the 0/1 labels apart in the scatter
    coverage = se_coverage(rng, n)
    draw_logistic_regression(demo, x, y, jitter, fit, n)
    draw_sigmoid_and_slope(demo, curve)
    draw_vanishing_gradient(demo, depths, ratio, factor, n_inits, curve.peak_slope)
    measure(demo, n, n_inits, fit, curve, ratio, factor, coverage)
    claim_findings(demo, fit, curve, ratio, factor, coverage)


def make_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn with the true probability: y ~ Bernoulli(sigmoid(2x - 0.5)), x uniform on [-3, 3]."""
    x = rng.uniform(-3.0, 3.0, n)
    y = (rng.random(n) < nets.sigmoid(TRUE_W * x + TRUE_B)).astype(np.int64)
    return x, y


def _newton_logistic(x: np.ndarray, y: np.ndarray, iters: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression ``P(y=1) = sigmoid(w x + b)`` by Newton's method.

    Returns ``(theta, cov)`` with ``theta = (w, b)`` and ``cov`` the inverse of the Hessian of the
    negative log-likelihood at the optimum (the usual large-sample covariance of the estimate).
    """
    A = np.column_stack([x, np.ones_like(x)])
    theta = np.zeros(2)
    for _ in range(iters):
        p = nets.sigmoid(A @ theta)
        grad = A.T @ (p - y)
        hess = (A * (p * (1.0 - p))[:, None]).T @ A
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-12:
            break
    p = nets.sigmoid(A @ theta)
    hess = (A * (p * (1.0 - p))[:, None]).T @ A
    return theta, np.linalg.inv(hess)


def se_coverage(rng: np.random.Generator, n: int) -> np.ndarray:
    """Share of REPEATS fresh data sets whose ±2-standard-error interval holds the true (w, b)."""
    hits = np.zeros(2)
    for _ in range(REPEATS):
        x, y = make_data(rng, n)
        theta, cov = _newton_logistic(x, y)
        hits += np.abs(theta - np.array([TRUE_W, TRUE_B])) < 2.0 * np.sqrt(np.diag(cov))
    return hits / REPEATS


def evaluate_logistic(demo, x: np.ndarray, y: np.ndarray, theta: np.ndarray, cov: np.ndarray) -> Logistic:
    """Export the fit, then its probabilities, accuracy and decision boundary from ONNX Runtime."""
    se = np.sqrt(np.diag(cov))
    z_scores = (theta - np.array([TRUE_W, TRUE_B])) / se

    # Exported as Gemm -> Sigmoid (a net with no hidden layer and a sigmoid head).
    model = deepnets.Net([np.array([[theta[0]]])], [np.array([theta[1]])], "identity")
    sess = demo.onnx("logistic_regression", demo.make_model(
        deepnets.export_net(model, head="sigmoid", name="logistic_regression")))

    def prob(inputs: np.ndarray) -> np.ndarray:
        return sess.run(None, {"x": inputs.reshape(-1, 1).astype(np.float32)})[0][:, 0].astype(np.float64)

    p_data = prob(x)
    ort_diff = float(np.max(np.abs(p_data - nets.sigmoid(theta[0] * x + theta[1]))))
    accuracy = float(np.mean((p_data > 0.5) == (y == 1)))
    boundary = -theta[1] / theta[0]
    p_boundary = float(prob(np.array([boundary]))[0])
    grid = np.linspace(-3.5, 3.5, 301)
    p_grid = prob(grid)
    return Logistic(theta, se, z_scores, ort_diff, accuracy, boundary, p_boundary, grid, p_grid)


def sigmoid_curve(demo) -> Curve:
    """The function itself, from a lone ONNX Sigmoid node; slope by central differences."""
    step = STEP
    z = np.round(np.arange(-8.0, 8.0 + step / 2, step), 10)
    sig_sess = demo.onnx("sigmoid", demo.make_model(deepnets.export_activation("sigmoid")))
    s = sig_sess.run(None, {"x": z.astype(np.float32)})[0].astype(np.float64)
    z_mid, slope = z[1:-1], (s[2:] - s[:-2]) / (2 * step)
    i_peak = int(np.argmax(slope))
    peak_z, peak_slope = float(z_mid[i_peak]) + 0.0, float(slope[i_peak])  # + 0.0: no "-0"
    symmetry_err = float(np.max(np.abs(s + s[::-1] - 1.0)))  # sigmoid(-z) = 1 - sigmoid(z)
    identity_err = float(np.max(np.abs(slope - s[1:-1] * (1.0 - s[1:-1]))))  # sigmoid' = s(1 - s)
    return Curve(z, s, z_mid, slope, peak_z, peak_slope, symmetry_err, identity_err)


def vanishing_gradient(rng: np.random.Generator,
                       n_inits: int) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """First-layer over output-layer gradient against depth, for sigmoid and tanh stacks."""
    # Stacks of sigmoid (and, for contrast, tanh) layers of width 16,
    # initialized with variance 1/fan_in; ratio of the first layer's gradient to the output
    # layer's, geometric mean over a few random initializations, on a two-moons batch.
    Xm, ym = datasets.moons(rng, 64, noise=0.1)
    ratio: dict[str, np.ndarray] = {}
    for act in ("sigmoid", "tanh"):
        per_depth = []
        for depth in DEPTHS:
            logs = []
            for _ in range(n_inits):
                net = deepnets.init_net(rng, [2] + [WIDTH] * depth + [1], act)
                norms = deepnets.loss_and_grads(net, Xm, ym, nets.logistic_cross_entropy)[1].layer_norms()
                logs.append(np.log(norms[0] / norms[-1]))
            per_depth.append(np.exp(np.mean(logs)))
        ratio[act] = np.array(per_depth)
    depths = np.array(DEPTHS, float)
    factor = {a: float(np.exp(np.polyfit(depths, np.log(r), 1)[0])) for a, r in ratio.items()}
    return depths, ratio, factor


def draw_logistic_regression(demo, x: np.ndarray, y: np.ndarray, jitter: np.ndarray, fit: Logistic,
                             n: int) -> None:
    """Figure: the data, the fitted probability and the true one."""
    theta, boundary, grid = fit.theta, fit.boundary, fit.grid

    @demo.figure(
        "logistic-regression",
        caption=f"Logistic regression on {n} points: the fitted probability (ONNX Runtime's "
        "Sigmoid node) against the curve the data were drawn from",
        alt="Points at the bottom (label zero) and the top (label one) spread along the x axis, "
        "ones mostly on the right. An S curve rises from bottom to top through them, almost on "
        "top of the dashed true curve, and crosses one half at the decision boundary.",
        notice="The fitted S curve lies almost on the dashed curve the data came from.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(x, y + jitter, "o", color="C7", ms=3.5, alpha=0.5, label="data (0 or 1)")
        ax.plot(grid, nets.sigmoid(TRUE_W * grid + TRUE_B), "--", color="C1", lw=1.6,
                label=f"true: σ({TRUE_W:g}x − {-TRUE_B:g})")
        ax.plot(grid, fit.p_grid, color="C0", label=f"fitted: σ({theta[0]:.2f}x − {-theta[1]:.2f})")
        ax.axvline(boundary, color="C2", ls=":", lw=1.4, label=f"p = 0.5 at x = {boundary:.2f}")
        ax.set_xlabel("x")
        ax.set_ylabel("P(y = 1)")
        ax.set_title("The sigmoid turns a linear score into a probability")
        ax.legend(fontsize="small", loc="upper left")


def draw_sigmoid_and_slope(demo, curve: Curve) -> None:
    """Figure: the S curve and its slope, with the peak starred."""
    peak_z, peak_slope = curve.peak_z, curve.peak_slope

    @demo.figure(
        "sigmoid-and-slope",
        caption="The sigmoid as computed by ONNX Runtime, and its slope measured by central "
        "differences",
        alt=f"An S curve from zero to one crossing one half at z = {peak_z:g}, and below it a "
        f"bell-shaped slope curve whose peak, {peak_slope:.2f}, is at z = {peak_z:g}; the slope "
        f"is almost zero near the ends of the range, |z| = {curve.z[-1]:g}.",
        size=(6.4, 3.8),
        notice="The slope peaks at a quarter in the middle and is nearly zero at both ends.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(curve.z, curve.s, color="C0", label="σ(z)")
        ax.plot(curve.z_mid, curve.slope, color="C1", label="σ′(z) = σ(z)(1 − σ(z))")
        ax.plot([peak_z], [peak_slope], "*", color="C3", ms=13, label=f"peak {peak_slope:.3f} at z = {peak_z:g}")
        ax.axhline(0.25, color="C7", ls=":", lw=1.0)
        ax.set_xlabel("z")
        ax.set_title("Sigmoid and its slope")
        ax.legend(fontsize="small", loc="upper left")


def draw_vanishing_gradient(demo, depths: np.ndarray, ratio: dict[str, np.ndarray], factor: dict[str, float],
                            n_inits: int, peak: float) -> None:
    """Figure: the gradient ratio against depth, sigmoid against tanh."""
    @demo.figure(
        "vanishing-gradient",
        caption=f"Gradient at the first layer relative to the output layer's, at initialization, "
        f"for stacks of {DEPTHS[0]} to {DEPTHS[-1]} hidden layers of {WIDTH} units (geometric mean "
        f"over {n_inits} initializations)",
        alt=f"Log-scale chart against the number of layers. With sigmoid units the ratio falls "
        f"in a straight line, about {1 / factor['sigmoid']:.1f} times smaller per added layer, close "
        f"to the dotted ×{peak:.2f} per layer reference (the sigmoid's largest slope); with tanh "
        "units it stays roughly level.",
        notice="With sigmoids the gradient falls in a straight line on the log scale; with tanh it stays level.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(depths, ratio["sigmoid"], "o-", color="C0", label=f"sigmoid (×{factor['sigmoid']:.2f} per layer)")
        ax.plot(depths, ratio["tanh"], "s-", color="C1", label=f"tanh (×{factor['tanh']:.2f} per layer)")
        ax.plot(depths, ratio["sigmoid"][0] * peak ** (depths - 1), ":", color="C7",
                label=f"×{peak:.2f} per layer")
        plotting.plain_log_axis(ax.yaxis, LogLocator(numticks=6), fmt=plotting.exponent_label)
        ax.set_xticks(depths[::1])
        ax.set_xlabel("hidden layers")
        ax.set_ylabel("first-layer ÷ output-layer gradient")
        ax.set_title("Stacked sigmoids shrink the gradient")
        ax.legend(fontsize="small")


def measure(demo, n: int, n_inits: int, fit: Logistic, curve: Curve, ratio: dict[str, np.ndarray],
            factor: dict[str, float], coverage: np.ndarray) -> None:
    """Record the setup, the fit, the standard errors' coverage, the sigmoid's slope and the gradient factors."""
    demo.key_numbers("fitted_w", "se_w", "coverage_w", "accuracy", "factor_sigmoid", "factor_tanh")
    theta, se = fit.theta, fit.se
    demo.setting("n", n, label="Data points", fmt=".0f")
    demo.setting("true_w", TRUE_W, label="True slope of the log-odds", fmt="g")
    demo.setting("true_b", TRUE_B, label="True intercept of the log-odds", fmt="g")
    demo.setting("n_repeats", REPEATS, label="Fresh data sets drawn to measure coverage", fmt=".0f")
    demo.setting("nominal_coverage", NOMINAL, label="Coverage of ±2 standard errors under a normal law", fmt=".1%")
    demo.setting("probe_z", PROBE_Z, label="z where the slope far from zero is quoted", fmt="g")
    demo.setting("width", WIDTH, label="Units per hidden layer in the stacks", fmt=".0f")
    demo.setting("n_inits", n_inits, label="Random initializations per depth", fmt=".0f")
    demo.setting("max_depth", DEPTHS[-1], label="Deepest stack", fmt=".0f")
    demo.metric("fitted_w", theta[0], label="Fitted slope w", fmt=".3f")
    demo.metric("fitted_b", theta[1], label="Fitted intercept b", fmt=".3f")
    demo.metric("se_w", se[0], label="Standard error of w", fmt=".2f")
    demo.metric("se_b", se[1], label="Standard error of b", fmt=".2f")
    demo.metric("coverage_w", coverage[0], label="Data sets whose w ± 2 SE holds the true slope", fmt=".1%")
    demo.metric("coverage_b", coverage[1], label="Data sets whose b ± 2 SE holds the true intercept", fmt=".1%")
    demo.metric("boundary", fit.boundary, label="Decision boundary −b/w", fmt=".3f")
    demo.metric("accuracy", fit.accuracy, label="Accuracy of the rule p > 0.5 (ONNX Runtime)", fmt=".1%")
    demo.metric("peak_slope", curve.peak_slope, label="Largest slope of ORT's sigmoid", fmt=".4f")
    demo.metric("peak_z", curve.peak_z, label="Where the slope peaks", fmt="g")
    demo.metric("slope_at_probe", float(curve.slope[np.argmin(np.abs(curve.z_mid - PROBE_Z))]),
                label=f"Slope at z = {PROBE_Z:g}", fmt=".4f")
    demo.metric("factor_sigmoid", factor["sigmoid"], label="First-layer gradient factor per added sigmoid layer",
                fmt=".2f")
    demo.metric("factor_tanh", factor["tanh"], label="First-layer gradient factor per added tanh layer", fmt=".2f")
    demo.metric("ratio_deepest_sigmoid", ratio["sigmoid"][-1],
                label=f"First-layer ÷ output-layer gradient, {DEPTHS[-1]} sigmoid layers", fmt=".1e")
    demo.metric("ratio_deepest_tanh", ratio["tanh"][-1],
                label=f"First-layer ÷ output-layer gradient, {DEPTHS[-1]} tanh layers", fmt=".2f")
    demo.metric("ort_max_abs_diff", fit.ort_diff, label="Max |ONNX Runtime − NumPy| probability", fmt=".1e")


def claim_findings(demo, fit: Logistic, curve: Curve, ratio: dict[str, np.ndarray],
                   factor: dict[str, float], coverage: np.ndarray) -> None:
    """Findings: honest standard errors, vanishing sigmoid gradients; checks: ORT's Sigmoid and its slope."""
    demo.claim(
        f"Maximum likelihood's standard errors are honest: over {REPEATS} fresh data sets, the "
        f"true slope and the true intercept each lie within two standard errors of the fit in "
        f"90% to 99% of them (nominal {NOMINAL:.1%})",
        holds=bool(np.all((coverage > 0.90) & (coverage < 0.99))),
        coverage_w=float(coverage[0]),
        coverage_b=float(coverage[1]),
        repeats=demo.number(REPEATS, "fresh data sets"),
    )
    demo.claim(
        "Through stacked sigmoid layers the gradient reaching the first layer shrinks geometrically, "
        "by more than a factor of 3 per layer, while through tanh layers it does not",
        holds=bool(factor["sigmoid"] < 1 / 3 and factor["tanh"] > 0.7),
        factor_per_layer_sigmoid=demo.number(factor["sigmoid"], "gradient factor per layer, sigmoid"),
        factor_per_layer_tanh=demo.number(factor["tanh"], "gradient factor per layer, tanh"),
        ratio_deepest_sigmoid=ratio["sigmoid"][-1],
    )
    demo.check(
        "ONNX Runtime's Sigmoid node gives probability 1/2 at the decision boundary "
        "x = −b/w, satisfies σ(−z) = 1 − σ(z), and matches NumPy",
        holds=bool(abs(fit.p_boundary - 0.5) < 1e-6 and curve.symmetry_err < 1e-6 and fit.ort_diff < 1e-6),
        p_at_boundary=fit.p_boundary,
        symmetry_error=curve.symmetry_err,
        max_abs_diff=fit.ort_diff,
    )
    demo.check(
        "The sigmoid's slope is largest at z = 0, where it is 1/4, and equals σ(z)(1 − σ(z)) everywhere",
        holds=bool(abs(curve.peak_z) <= STEP and abs(curve.peak_slope - 0.25) < 1e-4 and curve.identity_err < 1e-4),
        peak_slope=curve.peak_slope,
        peak_at=curve.peak_z,
        max_error_of_identity=curve.identity_err,
    )
