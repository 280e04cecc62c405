"""Adam against gradient descent and momentum: a badly scaled quadratic (and the same problem rotated), invariance to
the scale of the loss, what the bias correction does to the first steps, and a small network on inputs with very
different scales."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, nets, onnx_export, optim, plotting
from matplotlib.ticker import LogLocator

SIZES = (2, 16, 2)
QUAD_LRS = np.geomspace(0.001, 1.9, 30)  # learning rates tried on the quadratic
MAKERS = {  # the optimisers raced on the quadratic
    "gradient descent": lambda lr: optim.GD(lr),
    "momentum (β = 0.9)": lambda lr: optim.Momentum(lr, 0.9),
    "Adam": lambda lr: optim.Adam(lr),
}
# SGD and momentum on the network: one run per learning rate of a small grid.
MLP_GRIDS = {
    "SGD": (lambda lr: optim.GD(lr), np.array([0.03, 0.1, 0.3, 1.0])),
    "momentum (β = 0.9)": (lambda lr: optim.Momentum(lr, 0.9), np.array([0.01, 0.03, 0.1, 0.3])),
}
ADAM_GRID = np.array([0.03, 0.1, 0.3, 1.0])
SHOWN = 40  # steps drawn on the quadratic
CURVATURES = (0.02, 2.0)  # the quadratic's Hessian eigenvalues, along the two weight axes
LEVEL = 1e-3  # "reached": the excess loss below this fraction of its start
ANGLE_DEG = 45  # the rotation of the second quadratic
LOSS_SCALE, SCALE_STEPS = 1000.0, 60  # scale-invariance test: loss multiplier, Adam steps compared
INPUT_SCALE = 30.0  # the second input's units, relative to the first
EARLY, BIAS_SHOWN = 10, 100  # bias correction: first steps whose update sizes are compared; steps drawn
COLORS = {"gradient descent": "C0", "momentum (β = 0.9)": "C2", "Adam": "C1",
          "SGD": "C0"}


@dataclass
class Quadratic:
    """The badly scaled quadratic and each optimiser's best run on it."""

    P: optim.LeastSquares
    w0: np.ndarray
    runs: dict[str, tuple]  # name -> (steps to 0.1% of the start, learning rate, path)
    steps: tuple[int, int, int]  # gradient descent, momentum, Adam
    rotated: tuple[int, int, int]  # the same, on the problem rotated by 45°


@dataclass
class Moons:
    """Two moons whose second input is in units 30× larger, and a tanh network for them."""

    Xs: np.ndarray
    y: np.ndarray
    stack: optim.MLPStack
    theta0: np.ndarray

    def loss_grad(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.stack.loss_grad(W, self.Xs, self.y, "softmax")


@dataclass
class Correction:
    """Adam's update sizes and losses with and without bias correction, at the same rate."""

    runs: dict[bool, dict[str, np.ndarray]]  # corrected? -> sizes, losses
    first_corrected: float
    first_raw: float
    early_ratio: float
    ratio1: float  # the uncorrected first step for a constant gradient


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    quad_steps = int(opts.get("quad_steps", 300))
    mlp_steps = int(opts.get("mlp_steps", 300))

    quad = race_on_quadratic(rng, quad_steps)
    adam_scale_diff, gd_scaled_excess = scale_the_loss(quad)

    moons = make_moons(rng)
    mlp = tune_sgd_and_momentum(moons, mlp_steps)
    adam, correction = train_adam_with_and_without_correction(moons, mlp_steps)
    mlp["Adam"] = adam
    ort_diff, ort_accuracy, accuracy = check_onnx(demo, moons, mlp)
    g1, g2, Z = loss_surface(demo, quad)

    draw_paths(demo, quad, g1, g2, Z)
    draw_mlp_training(demo, mlp, correction, mlp_steps)
    draw_bias_correction(demo, correction)
    measure(demo, quad, adam_scale_diff, correction, mlp, accuracy, mlp_steps, ort_accuracy, ort_diff)
    claim_findings(demo, quad, adam_scale_diff, gd_scaled_excess, correction, mlp, accuracy, ort_accuracy,
                   ort_diff)


def race_on_quadratic(rng: np.random.Generator, quad_steps: int) -> Quadratic:
    """Each optimiser at its best learning rate on the quadratic, axis-aligned and rotated by 45°."""
    # A badly scaled quadratic: least squares whose Hessian has eigenvalues 0.02 and 2 along
    # the two weight axes (condition number 100), start far out along the flat axis.
    results = {}
    for angle in (0.0, np.radians(ANGLE_DEG)):
        q = optim.rotation(angle)
        P = optim.LeastSquares.from_spectrum(rng, 200, list(CURVATURES), noise=0.3, w_true=[2.0, 1.0], basis=q)
        w0 = P.w_star + q @ np.array([-4.0, 0.4])
        level = LEVEL * float(P.excess(w0))
        results[angle] = {"P": P, "w0": w0,
                          **{name: _tuned(make, P, w0, QUAD_LRS, quad_steps, level) for name, make in MAKERS.items()}}
    axis, rotated = results[0.0], results[np.radians(ANGLE_DEG)]
    steps = tuple(axis[k][0] for k in MAKERS)
    rot = tuple(rotated[k][0] for k in MAKERS)
    return Quadratic(axis["P"], axis["w0"], {k: axis[k] for k in MAKERS}, steps, rot)


def scale_the_loss(quad: Quadratic) -> tuple[float, float]:
    """Scale invariance: the same problem with the loss multiplied by LOSS_SCALE."""
    P, w0 = quad.P, quad.w0
    lr_adam = quad.runs["Adam"][1]
    scaled = optim.trajectory(optim.Adam(lr_adam), lambda W, t: LOSS_SCALE * P.grad(W), w0, SCALE_STEPS)
    n = SCALE_STEPS + 1
    adam_scale_diff = float(np.max(np.abs(scaled[:n] - quad.runs["Adam"][2][:n])))
    lr_gd = quad.runs["gradient descent"][1]
    gd_scaled = optim.trajectory(optim.GD(lr_gd), lambda W, t: LOSS_SCALE * P.grad(W), w0, 20)
    gd_scaled_excess = float(P.excess(gd_scaled[-1])) if np.all(np.isfinite(gd_scaled[-1])) else float("inf")
    return adam_scale_diff, gd_scaled_excess


def make_moons(rng: np.random.Generator) -> Moons:
    """A tanh network on two moons whose second input is in units INPUT_SCALE times larger."""
    X, y = datasets.moons(rng, 96, noise=0.15)
    Xs = X * np.array([1.0, INPUT_SCALE])
    stack = optim.MLPStack(SIZES, "tanh")
    theta0 = stack.flatten(nets.init_mlp(rng, SIZES, activation="tanh"))
    return Moons(Xs, y, stack, theta0)


def tune_sgd_and_momentum(moons: Moons, mlp_steps: int) -> dict[str, dict]:
    """Train the network with SGD and momentum at every rate of a small grid; keep the best of each."""
    mlp = {}
    for name, (make, grid) in MLP_GRIDS.items():
        W, losses = optim.minimize(make(grid), moons.loss_grad, np.tile(moons.theta0, (grid.size, 1)), mlp_steps)
        final = np.where(np.isfinite(losses[-1]), losses[-1], np.inf)
        k = int(np.argmin(final))
        mlp[name] = {"lr": float(grid[k]), "losses": losses[:, k], "W": W[k], "final": float(final[k])}
    return mlp


def train_adam_with_and_without_correction(moons: Moons, mlp_steps: int) -> tuple[dict, Correction]:
    """Train with Adam on the grid, with and without bias correction, recording every update's size."""
    # Adam: the same grid twice, with and without bias correction, recording the size of every
    # update (root mean square over the weights, in units of the learning rate).
    rates = np.tile(ADAM_GRID, 2)
    corrected = np.repeat([True, False], ADAM_GRID.size)
    opt = optim.Adam(rates, bias_correction=corrected)
    W = np.tile(moons.theta0, (rates.size, 1))
    losses = np.empty((mlp_steps + 1, rates.size))
    sizes = np.empty((mlp_steps, rates.size))
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, mlp_steps + 1):
            losses[t - 1], G = moons.loss_grad(W)
            W = opt.step(W, G, t)
            sizes[t - 1] = np.sqrt(np.mean(opt.last_step**2, axis=1)) / rates
        losses[-1] = moons.loss_grad(W)[0]
    final = np.where(np.isfinite(losses[-1]) & corrected, losses[-1], np.inf)
    k = int(np.argmin(final))
    raw = k + ADAM_GRID.size  # the same rate without bias correction
    adam = {"lr": float(rates[k]), "losses": losses[:, k], "W": W[k], "final": float(final[k])}
    corr = {True: {"sizes": sizes[:, k], "losses": losses[:, k]},
            False: {"sizes": sizes[:, raw], "losses": losses[:, raw]}}
    first_corrected = corr[True]["sizes"][0]
    first_raw = corr[False]["sizes"][0]
    early_ratio = float(np.mean(corr[False]["sizes"][:EARLY] / corr[True]["sizes"][:EARLY]))
    ratio1 = float(optim.adam_step_ratio(1))
    return adam, Correction(corr, first_corrected, first_raw, early_ratio, ratio1)


def check_onnx(demo, moons: Moons, mlp: dict[str, dict]) -> tuple[float, float, dict[str, float]]:
    """Export the Adam-trained network to ONNX; training accuracy of every optimiser's network."""
    Xs, y, stack = moons.Xs, moons.y, moons.stack
    net = stack.to_net(mlp["Adam"]["W"])
    sess = demo.onnx("mlp_adam", demo.make_model(onnx_export.export_mlp(net, head="softmax", name="mlp_adam")))
    probs = sess.run(None, {"x": Xs.astype(np.float32)})[0].astype(np.float64)
    ort_diff = float(np.max(np.abs(probs - nets.softmax(nets.predict(net, Xs)))))
    ort_accuracy = float(np.mean(probs.argmax(axis=1) == y))
    accuracy = {name: float(np.mean(stack.predict(r["W"][None, :], Xs)[0].argmax(axis=1) == y))
                for name, r in mlp.items()}
    return ort_diff, ort_accuracy, accuracy


def loss_surface(demo, quad: Quadratic):
    """The quadratic's loss on a grid around the drawn paths, computed by an ONNX model."""
    P = quad.P
    surface = demo.onnx("loss_surface", demo.make_model(optim.export_loss_surface(P)))
    drawn = np.concatenate([quad.runs[name][2][: SHOWN + 1] for name in MAKERS])
    x_lo, x_hi = drawn[:, 0].min() - 0.3, drawn[:, 0].max() + 0.3
    y_half = max(float(np.abs(drawn[:, 1] - P.w_star[1]).max()) + 0.1, 0.5)
    g1, g2 = np.meshgrid(np.linspace(x_lo, x_hi, 90), np.linspace(P.w_star[1] - y_half, P.w_star[1] + y_half, 60))
    Z = surface.run(None, {"x": np.column_stack([g1.ravel(), g2.ravel()]).astype(np.float32)})[0]
    Z = Z.astype(np.float64).reshape(g1.shape)
    return g1, g2, Z


def draw_paths(demo, quad: Quadratic, g1: np.ndarray, g2: np.ndarray, Z: np.ndarray) -> None:
    """Figure: the first steps of each optimiser on the contours of the quadratic."""
    P, w0 = quad.P, quad.w0

    @demo.figure(
        "paths",
        caption=f"The first {SHOWN} steps of gradient descent, momentum and Adam, each with its best "
        f"learning rate, on a quadratic {CURVATURES[1] / CURVATURES[0]:.0f} times steeper across than along "
        "(axes not to scale)",
        alt="Contours of a long, flat valley running left to right, minimum marked by a star on "
        "the right. Gradient descent zigzags across the valley for a few steps and then crawls "
        "along its floor, still far from the minimum. Momentum swings across the valley in wide "
        "arcs that close in on the minimum. Adam first moves both weights by the same amount per "
        "step, heading diagonally, overshoots the minimum and circles in on it.",
        size=(6.4, 5.0),
        notice="Gradient descent zigzags across the valley; momentum and Adam head for the minimum.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        levels = P.loss_star + float(P.excess(w0)) * np.array([0.003, 0.02, 0.08, 0.25, 0.6, 1.0])
        ax.contour(g1, g2, Z, levels=levels, colors="C7", linewidths=0.8)
        for name in MAKERS:
            p = quad.runs[name][2][: SHOWN + 1]
            ax.plot(p[:, 0], p[:, 1], "o-", color=COLORS[name], ms=2.5, lw=1.3,
                    label=f"{name}, η = {quad.runs[name][1]:.2g}")
        ax.plot(*w0, "s", color="C7", ms=7, label="start")
        ax.plot(*P.w_star, "*", color="C3", ms=15, zorder=5, label="minimum")
        ax.set_xlim(g1.min(), g1.max())
        ax.set_ylim(g2.min(), g2.max())
        ax.set_xlabel(f"w₁ (flat direction, curvature {CURVATURES[0]:g})")
        ax.set_ylabel(f"w₂ (steep, curvature {CURVATURES[1]:g})")
        ax.set_title("A badly scaled valley")
        fig.legend(fontsize="small", loc="outside lower center", ncols=2)


def draw_mlp_training(demo, mlp: dict[str, dict], correction: Correction, mlp_steps: int) -> None:
    """Figure: training loss of the network for each optimiser, and Adam without correction."""
    corr = correction.runs

    @demo.figure(
        "mlp-training",
        caption=f"Training loss of a tanh network on two moons whose second input is {INPUT_SCALE:.0f}× larger "
        "than the first, for each optimizer at its best learning rate from a small grid, and "
        "Adam without bias correction",
        alt="Log-scale chart of training cross-entropy against step. SGD stalls and ends near "
        f"{mlp['SGD']['final']:.2g}; momentum keeps falling slowly to {mlp['momentum (β = 0.9)']['final']:.2g}; "
        f"Adam falls fastest and ends at {mlp['Adam']['final']:.2g}. Adam without bias correction jumps far "
        f"above its starting loss in the first steps, bounces, and ends at {corr[False]['losses'][-1]:.2g}.",
        size=(6.4, 4.6),
        notice="With unequal input scales Adam ends lowest; without bias correction it jumps up first.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        k = np.arange(mlp_steps + 1)
        for name, r in mlp.items():
            ax.plot(k, r["losses"], color=COLORS[name], label=f"{name}, η = {r['lr']:g}")
        ax.plot(k, corr[False]["losses"], color="C4", ls="--", lw=1.5, label="Adam, no bias correction")
        plotting.plain_log_axis(ax.yaxis, LogLocator(numticks=6), fmt=plotting.exponent_label)
        ax.set_xlabel("step (full batch)")
        ax.set_ylabel("training loss (cross-entropy)")
        ax.set_title("Unequal input scales: Adam copes")
        fig.legend(fontsize="small", loc="outside lower center", ncols=2)


def draw_bias_correction(demo, correction: Correction) -> None:
    """Figure: the size of Adam's first BIAS_SHOWN updates with and without bias correction."""
    corr = correction.runs
    t = np.arange(1, BIAS_SHOWN + 1)
    constant = optim.adam_step_ratio(t)
    peak_t = int(t[np.argmax(constant)])

    @demo.figure(
        "bias-correction",
        caption="Root-mean-square size of Adam's update, in units of the learning rate, during the "
        f"first {BIAS_SHOWN} steps of training the network, with and without bias correction",
        alt=f"Line chart over the first {BIAS_SHOWN} steps. With bias correction the update starts at "
        f"{correction.first_corrected:.3g} learning rates and then shrinks. Without, it "
        f"starts at about {correction.first_raw:.2g} and over the first {EARLY} steps is on average "
        f"{correction.early_ratio:.1f} times the corrected one. A dotted curve shows what the uncorrected "
        f"update would be for a constant gradient: rising to about {constant.max():.2g} at step {peak_t} "
        "and slowly falling.",
        notice="Without bias correction the first updates are several times too large.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(t, corr[True]["sizes"][:BIAS_SHOWN], color="C1", label="with bias correction")
        ax.plot(t, corr[False]["sizes"][:BIAS_SHOWN], color="C4", label="without")
        ax.plot(t, constant, ":", color="C7", lw=1.5,
                label="without, if the gradient were constant")
        ax.set_xlabel("step t")
        ax.set_ylabel("RMS update ÷ η")
        ax.set_ylim(0, None)
        ax.set_title("Without correction the first steps are larger")
        ax.legend(fontsize="small", loc="upper right")


def measure(demo, quad: Quadratic, adam_scale_diff: float, correction: Correction, mlp: dict[str, dict],
            accuracy: dict[str, float], mlp_steps: int, ort_accuracy: float, ort_diff: float) -> None:
    """Record steps on the quadratic, the bias-correction numbers and the network's results."""
    demo.key_numbers("steps_gd", "steps_momentum", "steps_adam", "rot_steps_adam", "mlp_loss_sgd", "mlp_loss_adam")
    demo.setting("condition", CURVATURES[1] / CURVATURES[0], label="Quadratic: steep ÷ flat curvature", fmt=".0f")
    demo.setting("level", LEVEL, label="Quadratic: target, fraction of the starting excess loss", fmt=".1%")
    demo.setting("angle", ANGLE_DEG, label="Rotation of the second quadratic", fmt=".0f")
    demo.setting("loss_scale", LOSS_SCALE, label="Loss multiplier in the scale test", fmt=",.0f")
    demo.setting("scale_steps", SCALE_STEPS, label="Adam steps compared in the scale test", fmt=".0f")
    demo.setting("input_scale", INPUT_SCALE, label="Network: units of the second input ÷ the first", fmt=".0f")
    demo.setting("mlp_steps", mlp_steps, label="Network: full-batch training steps", fmt=".0f")
    demo.setting("early_steps", EARLY, label="First steps over which update sizes are compared", fmt=".0f")
    for key, name, axis, rot in zip(("gd", "momentum", "adam"), MAKERS, quad.steps, quad.rotated, strict=True):
        demo.metric(f"steps_{key}", axis, label=f"Quadratic: steps to the target, {name}", fmt=".0f")
        demo.metric(f"rot_steps_{key}", rot, label=f"Rotated quadratic: steps, {name}", fmt=".0f")
    demo.metric("adam_scale_diff", adam_scale_diff, label="Adam: largest weight change, loss scaled", fmt=".1e")
    demo.metric("bias_first_corrected", correction.first_corrected, label="First Adam step ÷ η, corrected", fmt=".4f")
    demo.metric("bias_first_raw", correction.first_raw, label="First Adam step ÷ η, uncorrected", fmt=".3f")
    demo.metric("bias_early_ratio", correction.early_ratio,
                label=f"First {EARLY} steps: update without ÷ with correction (mean)", fmt=".1f", unit="×")
    for key, name in (("sgd", "SGD"), ("momentum", "momentum (β = 0.9)"), ("adam", "Adam")):
        demo.metric(f"mlp_lr_{key}", mlp[name]["lr"], label=f"Network: best learning rate, {name}", fmt="g")
        demo.metric(f"mlp_loss_{key}", mlp[name]["final"], label=f"Network: loss after {mlp_steps} steps, {name}",
                    fmt=".3g")
        demo.metric(f"mlp_accuracy_{key}", accuracy[name], label=f"Network: training accuracy, {name}", fmt=".1%")
    demo.metric("bias_ratio_theory", correction.ratio1, label="(1 − β₁)/√(1 − β₂)", fmt=".3f")
    demo.metric("mlp_loss_adam_raw", correction.runs[False]["losses"][-1],
                label="Network: loss, Adam without bias correction", fmt=".3g")
    demo.metric("ort_accuracy", ort_accuracy, label="Adam network: training accuracy in ONNX Runtime", fmt=".1%")
    demo.metric("ort_max_abs_diff", ort_diff, label="Max |ONNX Runtime − NumPy| probability", fmt=".1e")


def claim_findings(demo, quad: Quadratic, adam_scale_diff: float, gd_scaled_excess: float, correction: Correction,
                   mlp: dict[str, dict], accuracy: dict[str, float], ort_accuracy: float, ort_diff: float) -> None:
    """Findings and checks: Adam's per-coordinate gain, its scale invariance, bias correction, and ONNX."""
    steps_gd, steps_mom, steps_adam = quad.steps
    rot_gd, rot_mom, rot_adam = quad.rotated
    first_corrected, first_raw, early_ratio = correction.first_corrected, correction.first_raw, correction.early_ratio
    demo.claim(
        "On the badly scaled quadratic, Adam and momentum both need far fewer steps than gradient "
        "descent (each at its best learning rate): less than a third",
        holds=bool(3 * steps_adam < steps_gd and 3 * steps_mom < steps_gd),
        steps_gd=steps_gd, steps_momentum=steps_mom, steps_adam=steps_adam,
    )
    demo.check(
        "Gradient descent and momentum are rotation invariant: on the rotated quadratic they need "
        "exactly as many steps as before",
        holds=bool(rot_gd == steps_gd and rot_mom == steps_mom), gd_rotated=rot_gd, momentum_rotated=rot_mom,
    )
    demo.claim(
        "Adam's gain is per coordinate: on the rotated quadratic it needs more steps than on the "
        "axis-aligned one",
        holds=bool(rot_adam > steps_adam), steps_adam=steps_adam, rot_steps_adam=rot_adam,
    )
    demo.check(
        f"Adam's update is invariant to the loss's scale: with the loss multiplied by {LOSS_SCALE:,.0f} it "
        f"follows the same path (to within 10⁻⁴ over {SCALE_STEPS} steps), while gradient descent at its "
        "learning rate diverges",
        holds=bool(adam_scale_diff < 1e-4 and not gd_scaled_excess < float(quad.P.excess(quad.w0))),
        adam_max_difference=adam_scale_diff,
        gd_excess_after_20_steps=gd_scaled_excess if np.isfinite(gd_scaled_excess) else "overflow",
    )
    demo.check(
        "With bias correction Adam's first update moves each weight by η (up to ε); without it, by "
        "(1 − β₁)/√(1 − β₂) η",
        holds=bool(abs(first_corrected - 1) < 0.01 and abs(first_raw / correction.ratio1 - 1) < 0.01),
        first_corrected=first_corrected, first_uncorrected=first_raw, theory=correction.ratio1,
    )
    demo.claim(
        f"On the network, Adam's updates without bias correction are on average more than twice as "
        f"large as with it over the first {EARLY} steps",
        holds=bool(early_ratio > 2),
        mean_ratio_first_steps=demo.number(
            early_ratio, "mean update size without / with bias correction, first steps", fmt=".2f"),
    )
    demo.claim(
        "On the network with unequal input scales, Adam ends with a lower training loss than SGD "
        "and momentum, each at its best rate",
        holds=bool(mlp["Adam"]["final"] < min(mlp["SGD"]["final"], mlp["momentum (β = 0.9)"]["final"])),
        mlp_loss_adam=mlp["Adam"]["final"], mlp_loss_sgd=mlp["SGD"]["final"],
        mlp_loss_momentum=mlp["momentum (β = 0.9)"]["final"],
    )
    demo.check(
        "ONNX Runtime reproduces the Adam-trained network",
        holds=bool(ort_diff < 1e-4 and abs(ort_accuracy - accuracy["Adam"]) < 1e-9), ort_max_abs_diff=ort_diff,
    )


# ---- helpers


def _steps_to(excess: np.ndarray, level: float) -> np.ndarray:
    """First step at which each column drops below ``level`` (a large number if never)."""
    below = excess < level
    return np.where(below.any(axis=0), np.argmax(below, axis=0), 10**6)


def _tuned(make, P: optim.LeastSquares, w0: np.ndarray, lrs: np.ndarray, steps: int, level: float):
    """Run an optimiser at every rate in ``lrs``; return (steps to ``level``, rate, path) of the best."""
    paths = optim.trajectory(make(lrs), P.grad, np.tile(w0, (lrs.size, 1)), steps)
    reach = _steps_to(P.excess(paths), level)
    k = int(np.argmin(reach))
    return int(reach[k]), float(lrs[k]), paths[:, k]
