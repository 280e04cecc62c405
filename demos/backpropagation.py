"""Backpropagation: a small MLP trained with hand-written backprop, its gradient checked against
central finite differences, and the cost of both counted in multiply-adds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, deepnets, nets, plotting
from matplotlib.ticker import LogLocator

WIDTHS = (4, 8, 16, 32, 64, 128, 256)  # hidden widths for the cost comparison
H_CHECK = 1e-5  # the usual finite-difference step in float64
STEP_SIZES = 10.0 ** -np.arange(1, 14)  # finite-difference steps h = 0.1 ... 1e-13
LOSS = nets.logistic_cross_entropy


@dataclass
class GradientCheck:
    """Backprop against central finite differences on a mini-batch, with the work each took."""

    bp: np.ndarray  # the backpropagated gradient, flattened
    num: np.ndarray  # the finite-difference gradient
    rel_err: float
    max_abs_diff: float
    fwd: deepnets.MacCounter  # multiply-adds of one forward pass
    bwd: deepnets.MacCounter  # ... of one backward pass
    fd: deepnets.MacCounter  # ... of the finite-difference gradient
    backprop_passes: float  # cost in forward-pass equivalents
    fd_passes: float


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    width = int(opts.get("width", 16))
    steps = int(opts.get("steps", 300))
    batch = int(opts.get("check_batch", 32))
    n_sweep = int(opts.get("sweep_params", 40))

    # Two noisy moons; a 2-16-16-1 tanh net with a logistic output, trained full-batch with Adam
    # on gradients from deepnets.backward (the chain rule written out by hand, in float64).
    X, y = datasets.moons(rng, 200, noise=0.2)
    net, losses = train(rng, X, y, width, steps)
    n_params = net.n_params

    # Gradient check on a mini-batch, at the trained weights: backprop vs central differences.
    Xb, yb = X[:batch], y[:batch]
    check = check_gradient(net, Xb, yb)
    sweep_params_arr, sweep_bp_arr = cost_by_width(rng, Xb, yb)
    subset, fd_err = finite_difference_error(rng, net, Xb, yb, check.bp, n_sweep)
    i_best = int(np.argmin(fd_err))
    accuracy, ort_diff, gx, gy, p_grid = check_onnx(demo, net, X, y)

    draw_decision_boundary(demo, X, y, gx, gy, p_grid, accuracy, width, steps)
    draw_gradient_cost(demo, sweep_params_arr, sweep_bp_arr, n_params, check)
    draw_finite_difference_error(demo, fd_err, i_best, len(subset))
    measure(demo, len(y), width, n_params, steps, losses, accuracy, batch, check, fd_err, i_best, ort_diff)
    claim_findings(demo, n_params, check, sweep_params_arr, sweep_bp_arr, fd_err, i_best, accuracy, ort_diff)


def train(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, width: int, steps: int):
    """Train a 2-width-width-1 tanh net full-batch with Adam on backpropagated gradients."""
    net = deepnets.init_net(rng, [2, width, width, 1], "tanh")
    _, losses = deepnets.train(net, X, y, LOSS, nets.Adam(lr=0.02), steps=steps, record_every=10)
    return net, losses


def check_gradient(net: deepnets.Net, Xb: np.ndarray, yb: np.ndarray) -> GradientCheck:
    """Backprop and central finite differences on one mini-batch, counting their multiply-adds."""
    fwd, bwd, fd = deepnets.MacCounter(), deepnets.MacCounter(), deepnets.MacCounter()
    out, trace = deepnets.forward(net, Xb, fwd)
    bp = deepnets.flatten(deepnets.backward(net, trace, LOSS(out, yb)[1], bwd).params)
    num = deepnets.numerical_gradient(net, Xb, yb, LOSS, h=H_CHECK, counter=fd)
    rel_err = _rel_err(num, bp)
    max_abs_diff = float(np.max(np.abs(num - bp)))
    # Cost in forward-pass equivalents (multiply-adds of matrix products, counted as they ran).
    backprop_passes = (fwd.macs + bwd.macs) / fwd.macs
    fd_passes = fd.macs / fwd.macs
    return GradientCheck(bp, num, rel_err, max_abs_diff, fwd, bwd, fd, backprop_passes, fd_passes)


def cost_by_width(rng: np.random.Generator, Xb: np.ndarray, yb: np.ndarray):
    """Parameters and backprop cost (in forward passes) of fresh nets of every width."""
    # The same count for nets of other widths: one counted forward and backward pass each;
    # finite differences always cost two forward passes per parameter.
    sweep_params, sweep_bp = [], []
    for w in WIDTHS:
        other = deepnets.init_net(rng, [2, w, w, 1], "tanh")
        f, b = deepnets.MacCounter(), deepnets.MacCounter()
        o, t = deepnets.forward(other, Xb, f)
        deepnets.backward(other, t, LOSS(o, yb)[1], b)
        sweep_params.append(other.n_params)
        sweep_bp.append((f.macs + b.macs) / f.macs)
    return np.array(sweep_params, float), np.array(sweep_bp)


def finite_difference_error(rng: np.random.Generator, net: deepnets.Net, Xb: np.ndarray, yb: np.ndarray,
                            bp: np.ndarray, n_sweep: int):
    """Error of finite differences against backprop for every step size h, on a random subset."""
    # Finite differences only approximate: their error against backprop as the step h varies,
    # on a random subset of the parameters.
    subset = np.sort(rng.choice(net.n_params, size=min(n_sweep, net.n_params), replace=False))
    fd_err = np.array([
        _rel_err(deepnets.numerical_gradient(net, Xb, yb, LOSS, h=float(h), indices=subset)[subset],
                 bp[subset])
        for h in STEP_SIZES
    ])
    return subset, fd_err


def check_onnx(demo, net: deepnets.Net, X: np.ndarray, y: np.ndarray):
    """Export the trained net with a Sigmoid head; its probabilities on the data and on a grid."""
    sess = demo.onnx("mlp_moons", demo.make_model(deepnets.export_net(net, head="sigmoid", name="mlp_moons")))
    p_train = prob(sess, X)
    ort_diff = float(np.max(np.abs(p_train - nets.sigmoid(deepnets.predict(net, X)[:, 0]))))
    accuracy = float(np.mean((p_train > 0.5) == (y == 1)))
    lo, hi = X.min(axis=0) - 0.3, X.max(axis=0) + 0.3
    gx, gy = np.linspace(lo[0], hi[0], 90), np.linspace(lo[1], hi[1], 90)
    grid = np.column_stack([a.ravel() for a in np.meshgrid(gx, gy)])
    p_grid = prob(sess, grid).reshape(len(gy), len(gx))
    return accuracy, ort_diff, gx, gy, p_grid


def prob(sess, inputs: np.ndarray) -> np.ndarray:
    """The ONNX model's probability of class 1, in float64."""
    return sess.run(None, {"x": inputs.astype(np.float32)})[0][:, 0].astype(np.float64)


def draw_decision_boundary(demo, X: np.ndarray, y: np.ndarray, gx: np.ndarray, gy: np.ndarray,
                           p_grid: np.ndarray, accuracy: float, width: int, steps: int) -> None:
    """Figure: the moons and the trained net's predicted class."""

    @demo.figure(
        "decision-boundary",
        caption=f"The trained 2-{width}-{width}-1 network's predicted class, computed by ONNX "
        f"Runtime, after {steps} steps of gradient descent on backpropagated gradients",
        alt="The two interleaving half-moons of training points. A curved boundary found by the "
        "network separates them; the shaded regions show which class it predicts where.",
        notice="Gradients from backpropagation alone train a boundary that follows both moons.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.contourf(gx, gy, p_grid, levels=[0.0, 0.5, 1.0], colors=["C0", "C1"], alpha=0.15)
        ax.contour(gx, gy, p_grid, levels=[0.5], colors="C7", linewidths=1.5)
        for cls, (color, marker) in enumerate((("C0", "o"), ("C1", "^"))):
            pts = X[y == cls]
            ax.scatter(pts[:, 0], pts[:, 1], s=14, color=color, marker=marker, label=f"class {cls}")
        ax.grid(False)
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
        ax.set_title(f"Decision boundary (training accuracy {accuracy:.0%})")
        ax.legend(loc="lower left", fontsize="small")


def draw_gradient_cost(demo, sweep_params_arr: np.ndarray, sweep_bp_arr: np.ndarray, n_params: int,
                       check: GradientCheck) -> None:
    """Figure: cost of one gradient against the number of parameters, backprop vs finite differences."""

    @demo.figure(
        "gradient-cost",
        caption="Work needed for one full gradient, in forward passes, counted in multiply-adds "
        "of matrix products: backpropagation against central finite differences, for "
        "2-w-w-1 networks of growing width w",
        alt="Log-log chart of the cost of a gradient against the number of parameters. "
        f"Backpropagation stays near {sweep_bp_arr.mean():.1f} forward passes at every size; finite "
        "differences need two forward passes per parameter, a line rising from "
        f"{2 * sweep_params_arr[0]:,.0f} to {2 * sweep_params_arr[-1]:,.0f}.",
        notice="Backpropagation costs a few forward passes at any size; finite differences grow with every parameter.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(sweep_params_arr, 2 * sweep_params_arr, "s-", color="C1", label="finite differences (2 per parameter)")
        ax.plot(sweep_params_arr, sweep_bp_arr, "o-", color="C0", label="backpropagation (forward + backward)")
        ax.plot([n_params], [check.fd_passes], "*", color="C3", ms=13,
                label=f"this net, counted ({n_params} parameters)")
        ax.plot([n_params], [check.backprop_passes], "*", color="C3", ms=13)
        plotting.plain_log_axis(ax.xaxis, [30, 100, 300, 1000, 3000, 10000, 30000, 100000], fmt="{:,.0f}")
        plotting.plain_log_axis(ax.yaxis, [1, 3, 10, 100, 1000, 10000, 100000], fmt="{:,.0f}")
        ax.set_ylim(bottom=1.0)
        ax.set_xlabel("number of parameters")
        ax.set_ylabel("cost in forward passes")
        ax.set_title("Cost of one gradient")
        ax.legend(fontsize="small", loc="upper left")


def draw_finite_difference_error(demo, fd_err: np.ndarray, i_best: int, n_subset: int) -> None:
    """Figure: the finite-difference error against the step h (a V: truncation, then rounding)."""

    @demo.figure(
        "finite-difference-error",
        caption=f"Relative difference between central finite differences and backpropagation "
        f"on {n_subset} of the trained net's parameters, as the step h changes",
        alt="Log-log V-shaped curve of relative error against the step h. Going down from "
        f"h = {STEP_SIZES[0]:g} the error falls steeply, reaches its lowest point near "
        f"h = {STEP_SIZES[i_best]:.0e}, then rises again for smaller steps as rounding errors take over.",
        notice="The error is V-shaped: too large a step truncates, too small a step drowns in rounding.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(STEP_SIZES, fd_err, "o-", color="C0")
        ax.plot(STEP_SIZES[i_best], fd_err[i_best], "*", color="C3", ms=14,
                label=f"best: $h = 10^{{{round(np.log10(STEP_SIZES[i_best]))}}}$")
        plotting.plain_log_axis(ax.xaxis, STEP_SIZES[::2], fmt=plotting.exponent_label)
        plotting.plain_log_axis(ax.yaxis, LogLocator(numticks=7), fmt=plotting.exponent_label)
        ax.invert_xaxis()
        ax.set_xlabel("finite-difference step h (smaller →)")
        ax.set_ylabel("relative difference to backprop")
        ax.set_title("Truncation error, then rounding error")
        ax.legend(loc="upper center")


def measure(demo, n_points: int, width: int, n_params: int, steps: int, losses, accuracy: float, batch: int,
            check: GradientCheck, fd_err: np.ndarray, i_best: int, ort_diff: float) -> None:
    """Record the training result, the gradient check, the cost counts and the step-size sweep."""
    demo.key_numbers("accuracy", "gradient_rel_err", "backprop_passes", "cost_ratio")
    demo.setting("n_points", n_points, label="Training points (two moons)", fmt=".0f")
    demo.setting("width", width, label="Units in each of the two hidden layers", fmt=".0f")
    demo.setting("n_params", n_params, label=f"Parameters of the 2-{width}-{width}-1 net", fmt=".0f")
    demo.setting("steps", steps, label="Training steps (Adam, full batch)", fmt=".0f")
    demo.metric("final_loss", losses[-1], label="Final training cross-entropy", fmt=".3f")
    demo.metric("accuracy", accuracy, label="Training accuracy in ONNX Runtime", fmt=".1%")
    demo.setting("check_batch", batch, label="Examples in the gradient check", fmt=".0f")
    demo.metric("gradient_rel_err", check.rel_err,
                label=f"‖finite differences − backprop‖ / ‖backprop‖ (h = {H_CHECK:g})", fmt=".1e")
    demo.metric("gradient_max_abs_diff", check.max_abs_diff, label="Largest difference in one gradient entry",
                fmt=".1e")
    demo.metric("forward_macs", check.fwd.macs / batch, label="Multiply-adds per example, forward pass", fmt=".0f")
    demo.metric("backward_macs", check.bwd.macs / batch, label="Multiply-adds per example, backward pass",
                fmt=".0f")
    demo.metric("backprop_passes", check.backprop_passes, label="Cost of the backprop gradient, in forward passes",
                fmt=".2f")
    demo.metric("fd_passes", check.fd_passes, label="Cost of the finite-difference gradient, in forward passes",
                fmt=".0f")
    demo.metric("cost_ratio", check.fd_passes / check.backprop_passes, label="Finite differences ÷ backprop, work",
                fmt=".0f", unit="×")
    demo.metric("best_h", STEP_SIZES[i_best], label="Step h with the smallest finite-difference error",
                fmt=".0e")
    demo.metric("best_h_rel_err", fd_err[i_best], label="Relative error at the best h", fmt=".1e")
    demo.metric("largest_h_rel_err", fd_err[0], label=f"Relative error at h = {STEP_SIZES[0]:g}", fmt=".2g")
    demo.metric("smallest_h_rel_err", fd_err[-1], label=f"Relative error at h = {STEP_SIZES[-1]:.0e}", fmt=".2g")
    demo.metric("ort_max_abs_diff", ort_diff, label="Max |ONNX Runtime − NumPy| probability", fmt=".1e")


def claim_findings(demo, n_params: int, check: GradientCheck, sweep_params_arr: np.ndarray,
                   sweep_bp_arr: np.ndarray, fd_err: np.ndarray, i_best: int, accuracy: float,
                   ort_diff: float) -> None:
    """Claims: backprop is exact and cheap; finite differences are costly and have a best step."""
    demo.check(
        "The backpropagated gradient agrees with central finite differences in every one of the "
        f"{n_params} entries, to a relative error below 1e-6",
        holds=bool(check.rel_err < 1e-6 and np.allclose(check.bp, check.num, rtol=1e-4, atol=1e-8)),
        relative_error=check.rel_err,
        max_abs_diff=check.max_abs_diff,
    )
    demo.check(
        "One gradient by backpropagation costs less than three forward passes; by finite "
        "differences it costs exactly two forward passes per parameter",
        holds=bool(check.backprop_passes < 3.0 and check.fd.macs == 2 * n_params * check.fwd.macs),
        backprop_passes=check.backprop_passes,
        finite_difference_passes=check.fd_passes,
        parameters=n_params,
    )
    demo.check(
        "As the network grows, backpropagation's cost stays between two and three forward passes "
        "while finite differences' cost grows with the number of parameters",
        holds=bool(np.all((sweep_bp_arr > 2.0) & (sweep_bp_arr < 3.0))),
        widths=", ".join(str(w) for w in WIDTHS),
        backprop_passes=", ".join(f"{v:.3f}" for v in sweep_bp_arr),
        parameters=", ".join(str(int(p)) for p in sweep_params_arr),
    )
    demo.claim(
        "Finite differences have a best step size: a larger h is off by truncation error, a "
        "smaller one by rounding error, each more than 100 times worse than the best",
        holds=bool(0 < i_best < len(STEP_SIZES) - 1
                   and fd_err[0] > 100 * fd_err[i_best] and fd_err[-1] > 100 * fd_err[i_best]),
        best_h=STEP_SIZES[i_best],
        error_best=demo.number(fd_err[i_best], "finite-difference error at the best step", fmt=".2g"),
        error_largest_h=demo.number(fd_err[0], "at the largest step", fmt=".2g"),
        error_smallest_h=demo.number(fd_err[-1], "at the smallest step", fmt=".2g"),
    )
    demo.claim(
        "Trained on these gradients the network separates the moons (training accuracy in "
        "ONNX Runtime above 90%)",
        holds=bool(accuracy > 0.90),
        accuracy=accuracy,
    )
    demo.check(
        "ONNX Runtime matches the NumPy forward pass of the trained network",
        holds=bool(ort_diff < 1e-5),
        max_abs_diff=ort_diff,
    )


# ---- helpers


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / ||b||``."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))
