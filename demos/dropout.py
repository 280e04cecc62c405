"""Dropout on an over-parameterised MLP, and what the ONNX Dropout node does in ONNX Runtime.

Two copies of one net are trained on a few dozen points, without and with dropout; ONNX Runtime
then scores both, and a lone Dropout node shows what training_mode switches on and off. For a
linear model, a Monte-Carlo average checks that input dropout equals a weighted L2 penalty in
expectation."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from demolib import datasets, nets, onnx_export, plotting

PARTS = {"train": "Training", "val": "Validation", "test": "Test"}
TAGS = (("plain", "no_dropout"), ("dropout", "dropout"))
GRID = 90  # points per side of the probability maps
P_SWEEP = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # the slider's dropout rates (and the option p)
HIDDEN = 128  # units in each hidden layer: ~17k weights, enough to memorise the training set
WIDTH, ROWS = 128, 1000  # the block of ones fed to the lone Dropout node
MASKS = 20000  # input-dropout masks averaged for the linear-model identity


@dataclass
class RateSweep:
    """The net trained from the same start at every rate of the slider: class-1 probability on a
    GRID x GRID grid spanning the data, and the losses, from ONNX Runtime."""

    rates: list[float]
    lo: np.ndarray
    hi: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    prob1: list[np.ndarray]
    val_loss: np.ndarray
    gap: np.ndarray  # validation − training loss


@dataclass
class NodeProbe:
    """What a lone ONNX Dropout node did to a block of ones."""

    y_train_mode: np.ndarray
    y_eval_mode: np.ndarray
    size: int
    frac_zeroed: float
    scale: float
    scale_spread: float
    eval_err: float
    sigma: float


@dataclass
class InputDropout:
    """Squared loss of a linear model under inverted input dropout: Monte-Carlo against closed form."""

    plain: float  # mean squared error without dropout
    penalty: float  # p/(1-p) * sum_j w_j^2 * mean_i x_ij^2
    mc_mean: float  # average over MASKS masks of the mean squared error with dropped inputs
    mc_se: float  # its standard error

    @property
    def closed_form(self) -> float:
        return self.plain + self.penalty


def run(demo) -> None:
    opts = demo.options
    p = float(opts.get("p", 0.5))
    steps = int(opts.get("steps", 200))
    if not 0.0 < p < 1.0:
        raise ValueError(f"option p must be in (0, 1), got {p}")

    X, data = make_data(demo.rng)
    init = nets.init_mlp(demo.rng, [2, HIDDEN, HIDDEN, 2], activation="relu")
    trained, hist = train(demo.rng, init, data, p, steps)
    sessions = export(demo, trained)
    loss, acc, gap = score(sessions, data)
    identity_err = inference_error(sessions, trained, data)
    node = probe_dropout_node(demo, p)
    linear = input_dropout_linear(demo.rng, data, p)
    rates = sweep_rates(demo, init, trained, data, X, p, steps)

    labels = {"plain": "no dropout", "dropout": f"dropout p = {p:g}"}
    draw_decision_boundaries(demo, rates, data, p)
    draw_learning_curves(demo, hist, labels)
    draw_dropout_node(demo, node, p)
    measure(demo, loss, acc, gap, labels, p, node, identity_err, linear, n_train=len(data.y_train))
    claim_findings(demo, loss, gap, identity_err, node, linear, p)


def make_data(rng):
    """Two noisy moons: 45 training, 150 validation and 105 test points."""
    X, y = datasets.moons(rng, 300, noise=0.25)
    return X, datasets.split(rng, X, y, val=0.5, test=0.35)


def train(rng, init: nets.MLP, data, p: float, steps: int) -> tuple[dict[str, nets.MLP], dict[str, nets.History]]:
    """Train one 2-128-128-2 ReLU net (~17k weights for 45 points: it can memorise the training
    set) twice from the same start: without and with dropout."""
    trained: dict[str, nets.MLP] = {}
    hist: dict[str, nets.History] = {}
    for name, rate in (("plain", 0.0), ("dropout", p)):
        net = replace(init.copy(), dropout=rate)
        hist[name] = nets.fit(
            net,
            data.X_train,
            data.y_train,
            nets.softmax_cross_entropy,
            nets.Adam(lr=0.005),
            steps=steps,
            rng=rng,
            X_val=data.X_val,
            y_val=data.y_val,
            eval_every=5,
        )
        trained[name] = net
    return trained, hist


def export(demo, trained: dict[str, nets.MLP]) -> dict:
    """Export both nets to ONNX and open an ONNX Runtime session for each."""
    # Logits out; the dropout net has Dropout nodes without training_mode.
    return {
        name: demo.onnx(f"mlp_{name}", demo.make_model(onnx_export.export_mlp(net, name=name)))
        for name, net in trained.items()
    }


def score(sessions: dict, data) -> tuple[dict, dict, dict]:
    """Cross-entropy and accuracy of both nets (in ONNX Runtime) on every split, and the gap."""
    loss, acc = {}, {}
    for name in sessions:
        for part, (Xp, yp) in {
            "train": (data.X_train, data.y_train),
            "val": (data.X_val, data.y_val),
            "test": (data.X_test, data.y_test),
        }.items():
            z = _logits(sessions[name], Xp)
            loss[name, part] = _cross_entropy(z, yp)
            acc[name, part] = float(np.mean(z.argmax(axis=1) == yp))
    gap = {name: loss[name, "val"] - loss[name, "train"] for name in sessions}
    return loss, acc, gap


def sweep_rates(demo, init: nets.MLP, trained: dict[str, nets.MLP], data, X: np.ndarray, p: float,
                steps: int) -> RateSweep:
    """The net trained from the same start at every rate of P_SWEEP (the two main runs reused),
    all side by side in one ONNX graph, run on a grid over the plane and on the data."""
    rates = sorted(set(P_SWEEP) | {p})
    models = []
    for rate in rates:
        net = trained["plain"] if rate == 0.0 else trained["dropout"] if rate == p else None
        if net is None:
            net = replace(init.copy(), dropout=rate)
            nets.fit(net, data.X_train, data.y_train, nets.softmax_cross_entropy, nets.Adam(lr=0.005),
                     steps=steps, rng=demo.rng)
        models.append(net)
    sess = demo.session(demo.make_model(onnx_export.export_mlps(models, name="dropout_rates")))

    def logits(inputs: np.ndarray) -> np.ndarray:  # (points, rates, 2)
        return _logits(sess, inputs).astype(np.float64).reshape(len(inputs), len(rates), 2)

    lo, hi = X.min(axis=0) - 0.3, X.max(axis=0) + 0.3
    gx, gy = np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID)
    z = logits(np.column_stack([a.ravel() for a in np.meshgrid(gx, gy)]))
    prob1 = [nets.softmax(z[:, k])[:, 1].reshape(GRID, GRID) for k in range(len(rates))]
    z_train, z_val = logits(data.X_train), logits(data.X_val)
    val = np.array([_cross_entropy(z_val[:, k], data.y_val) for k in range(len(rates))])
    train_ = np.array([_cross_entropy(z_train[:, k], data.y_train) for k in range(len(rates))])
    return RateSweep(rates, lo, hi, gx, gy, prob1, val, val - train_)


def inference_error(sessions: dict, trained: dict[str, nets.MLP], data) -> float:
    """Relative difference between the dropout net in ORT and in NumPy without dropout."""
    # Dropout at inference is the identity: ORT (Dropout node present) == NumPy without dropout.
    z_ort = _logits(sessions["dropout"], data.X_val).astype(np.float64)
    z_np = nets.predict(trained["dropout"], data.X_val)
    return float(np.max(np.abs(z_ort - z_np)) / np.max(np.abs(z_np)))


def probe_dropout_node(demo, p: float) -> NodeProbe:
    """Feed ones to a lone Dropout node in both modes; count zeros and read off the scale."""
    seed = int(demo.rng.integers(2**31 - 1))
    layer = demo.onnx("dropout_layer", demo.make_model(onnx_export.export_dropout(p, WIDTH, seed=seed)))
    ones = np.ones((ROWS, WIDTH), np.float32)
    y_train_mode = layer.run(None, {"x": ones, "training_mode": np.array(True)})[0]
    y_eval_mode = layer.run(None, {"x": ones, "training_mode": np.array(False)})[0]
    kept = y_train_mode[y_train_mode != 0.0]
    return NodeProbe(
        y_train_mode=y_train_mode,
        y_eval_mode=y_eval_mode,
        size=ones.size,
        frac_zeroed=float(np.mean(y_train_mode == 0.0)),
        scale=float(kept.mean()),
        scale_spread=float(np.max(np.abs(kept - 1.0 / (1.0 - p)))),
        eval_err=float(np.max(np.abs(y_eval_mode - ones))),
        sigma=np.sqrt(p * (1 - p) / ones.size),  # binomial standard error of the zero fraction
    )


def input_dropout_linear(rng, data, p: float) -> InputDropout:
    """A linear model y ≈ Xw fitted by least squares to the training points (labels as ±1), its
    loss averaged over MASKS inverted input-dropout masks, and the closed form of that average."""
    X, y = data.X_train, 2.0 * data.y_train - 1.0
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    keep = rng.random((MASKS, *X.shape)) >= p  # kept with probability 1 - p
    pred = (keep * X / (1.0 - p)) @ w  # (MASKS, n): each row one draw of the dropped inputs
    losses = np.mean((pred - y) ** 2, axis=1)
    plain = float(np.mean((X @ w - y) ** 2))
    penalty = float(p / (1.0 - p) * np.sum(w**2 * np.mean(X**2, axis=0)))
    return InputDropout(plain, penalty, float(losses.mean()), float(losses.std(ddof=1) / np.sqrt(MASKS)))


def draw_decision_boundaries(demo, sweep: RateSweep, data, p: float) -> None:
    """Figure with a slider over the dropout rate: that net's class-1 probability map."""
    lo, hi, gx, gy = sweep.lo, sweep.hi, sweep.gx, sweep.gy

    @demo.sweep(
        "decision-boundaries", sweep.rates, label="dropout rate p", fmt=".2g", default=sweep.rates.index(p),
        caption="Predicted class probability of the same net trained with each dropout rate, from the "
        "same start (as run by ONNX Runtime; training points shown)",
        alt="A map of the predicted probability of class 1 over the plane, with the training points. "
        "Without dropout the net is certain right up to a sharp boundary that bends around single "
        "points; with more dropout the change from one class to the other is softer",
        notice="Raise p: the boundary stops bending around single points and the change from one "
        "class to the other softens.",
        file_fmt="svg",
        numbers=lambda k: [demo.number(sweep.val_loss[k], "validation loss", ".2f"),
                           demo.number(sweep.gap[k], "validation − training loss", ".2f")],
    )
    def _(fig, k: int) -> None:
        ax = fig.subplots()
        # 40 shades at the grid's own resolution: a small image in every frame
        ax.imshow(np.round(sweep.prob1[k] * 40) / 40, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
                  cmap="coolwarm", vmin=0, vmax=1, alpha=0.55, aspect="auto", interpolation="none")
        ax.contour(gx, gy, sweep.prob1[k], levels=[0.5], colors="C7", linewidths=1.5)
        ax.grid(False)
        for cls, (color, marker) in enumerate((("C0", "o"), ("C1", "^"))):
            pts = data.X_train[data.y_train == cls]
            ax.scatter(pts[:, 0], pts[:, 1], s=22, color=color, marker=marker, label=f"class {cls}")
        ax.set_title("no dropout" if sweep.rates[k] == 0 else f"dropout p = {sweep.rates[k]:g}", fontsize="medium")
        ax.set(xlabel="x₁", ylabel="x₂")
        ax.legend(fontsize="small", loc="lower left")


def draw_learning_curves(demo, hist, labels) -> None:
    """Figure: training and validation loss during training, for both nets."""

    @demo.figure(
        "learning-curves",
        caption="Training and validation cross-entropy during training (log scale)",
        alt="Line chart of loss against training step. Without dropout the training loss falls "
        "towards zero while the validation loss climbs; with dropout the two stay closer.",
        notice="Without dropout training loss keeps falling while validation loss climbs; with dropout they stay "
        "closer.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for c, name in enumerate(hist):
            h = hist[name]
            ax.plot(h.step, h.train_loss, "--", color=f"C{c}", label=f"{labels[name]}: train")
            ax.plot(h.step, h.val_loss, "-", color=f"C{c}", label=f"{labels[name]}: validation")
        plotting.plain_log_axis(ax.yaxis)  # matplotlib's own decades, plain labels, no minor ticks
        ax.set_xlabel("training step")
        ax.set_ylabel("cross-entropy")
        ax.set_title("The train/validation gap with and without dropout")
        ax.legend(fontsize="small")


def draw_dropout_node(demo, node: NodeProbe, p: float) -> None:
    """Figure: a corner of the Dropout node's output in training and in inference mode."""
    block = node.y_train_mode[:12, :32]

    @demo.figure(
        "dropout-node",
        caption=f"An ONNX Dropout node (p = {p:g}) in ONNX Runtime, fed a block of ones",
        alt=f"Two grids of 12 by 32 cells. With training mode on about {p:.0%} of the cells "
        f"are 0 and the rest are {1 / (1 - p):g}; with training mode off every cell is 1.",
        notice="Training mode zeroes about p of the units and scales up the rest; inference passes the input through.",
        check=True,
    )
    def _(fig) -> None:
        axes = fig.subplots(2, 1, sharex=True)
        vmax = 1.0 / (1.0 - p)
        panels = (
            (block, f"training mode on: {node.frac_zeroed:.1%} of {node.size:,} zeroed, "
             f"kept ones → {node.scale:g}"),
            (node.y_eval_mode[:12, :32], "training mode off (inference): output = input"),
        )
        for ax, (values, title) in zip(axes, panels, strict=True):
            im = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
            ax.grid(False)
            ax.set_xticks([])  # cell indices carry no meaning here
            ax.set_yticks([])
            ax.set_title(title, fontsize="medium")
            ax.set_ylabel("12 examples")
        axes[1].set_xlabel("32 units")
        fig.colorbar(im, ax=axes, label="output value", ticks=[0.0, 1.0, vmax])


def measure(demo, loss, acc, gap, labels, p: float, node: NodeProbe, identity_err: float,
            linear: InputDropout, n_train: int) -> None:
    """Record the setup, losses, accuracies and gaps of both nets, and what the lone node did."""
    demo.key_numbers("val_loss_no_dropout", "val_loss_dropout", "gap_no_dropout", "gap_dropout",
                     "val_accuracy_no_dropout", "val_accuracy_dropout")
    demo.setting("hidden_units", HIDDEN, label="Units in each of the two hidden layers")
    demo.setting("n_train", n_train, label="Training points")
    for name, tag in TAGS:
        for part, part_name in PARTS.items():
            demo.metric(f"{part}_loss_{tag}", loss[name, part], label=f"{part_name} cross-entropy, {labels[name]}")
        demo.metric(f"val_accuracy_{tag}", acc[name, "val"], label=f"Validation accuracy, {labels[name]}", fmt=".1%")
        demo.metric(f"gap_{tag}", gap[name], label=f"Validation − training loss, {labels[name]}")
    demo.metric("dropout_p", p, label="Dropout probability p", fmt=".2g")
    demo.metric("fraction_zeroed", node.frac_zeroed, label="Fraction zeroed by ORT Dropout", fmt=".4f")
    demo.metric("kept_scale", node.scale, label="Value of kept units (input 1)", fmt=".4g")
    demo.metric(
        "inference_relative_error",
        identity_err,
        fmt=".1e",
        label="Max relative |ORT − NumPy| logit, dropout net at inference",
    )
    demo.setting("dropout_masks", MASKS, label="Input-dropout masks averaged (linear model)")
    demo.metric("linear_loss", linear.plain, label="Linear model: squared loss without dropout")
    demo.metric("linear_penalty", linear.penalty, label="Linear model: weighted L2 penalty p/(1−p) Σ w² mean x²")
    demo.metric("linear_closed_form", linear.closed_form, label="Linear model: loss + penalty (closed form)")
    demo.metric("linear_dropout_mc", linear.mc_mean, label="Linear model: loss averaged over dropout masks")
    demo.metric("linear_dropout_mc_se", linear.mc_se, label="Standard error of that average", fmt=".2g")


def claim_findings(demo, loss, gap, identity_err: float, node: NodeProbe, linear: InputDropout,
                   p: float) -> None:
    """Findings: dropout narrows the gap and helps validation; checks: the ONNX node behaves as documented."""
    demo.claim(
        "Dropout narrows the gap between training and validation loss",
        holds=bool(gap["dropout"] < gap["plain"]),
        gap_no_dropout=gap["plain"],
        gap_dropout=gap["dropout"],
        train_loss_no_dropout=loss["plain", "train"],
        train_loss_dropout=loss["dropout", "train"],
    )
    demo.claim(
        "Dropout lowers the validation loss",
        holds=bool(loss["dropout", "val"] < loss["plain", "val"]),
        val_loss_no_dropout=loss["plain", "val"],
        val_loss_dropout=loss["dropout", "val"],
    )
    demo.check(
        "At inference the ONNX Dropout node is the identity (no masking, no rescaling)",
        holds=bool(identity_err < 1e-5 and node.eval_err == 0.0),
        relative_error_net=identity_err,
        max_error_lone_node=node.eval_err,
    )
    demo.check(
        f"With training_mode = True, ORT zeroes about p = {p:g} of the units",
        holds=bool(abs(node.frac_zeroed - p) < 5 * node.sigma),
        fraction_zeroed=node.frac_zeroed,
        p=p,
        values=node.size,
    )
    demo.check(
        f"… and scales the units it keeps by 1/(1 − p) = {1 / (1 - p):g}",
        holds=bool(node.scale_spread < 1e-6),
        kept_value=node.scale,
        max_deviation=node.scale_spread,
    )
    demo.check(
        "For a linear model, the squared loss averaged over input-dropout masks equals the plain "
        "loss plus the weighted L2 penalty p/(1 − p) Σ_j w_j² · mean_i x_ij² (within five standard "
        "errors of the Monte-Carlo average)",
        holds=bool(abs(linear.mc_mean - linear.closed_form) < 5 * linear.mc_se),
        monte_carlo=linear.mc_mean,
        closed_form=linear.closed_form,
        standard_error=linear.mc_se,
        masks=MASKS,
    )


def _logits(session, inputs: np.ndarray) -> np.ndarray:
    """Logits from an ORT session of an exported MLP."""
    return session.run(None, {"x": inputs.astype(np.float32)})[0]


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy, computed in float64."""
    return nets.softmax_cross_entropy(logits.astype(np.float64), labels)[0]
