"""A neural network with one hidden layer learns two nested rings, which no straight line separates.

Logistic regression (a network with no hidden layer) and one-hidden-layer tanh networks of growing
width are trained side by side with Adam on the same points; every width gets a few restarts and
keeps the one with the lowest training loss. ONNX Runtime then scores every chosen network and
draws their class-probability maps, with the line each hidden unit draws across the plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, nets, onnx_export, optim, plotting

WIDTHS = (1, 2, 3, 4, 8)  # hidden units of the networks in the sweep
ENCLOSE = 3  # from this many hidden units on, a network can enclose the inner ring (a triangle)
SHOWN = (2, 8)  # the widths whose maps the page shows beside logistic regression
RESTARTS = 4  # fresh initial weights per width; the lowest training loss is kept
STEPS = 400
LR = 0.08
GRID = 100  # points per side of the probability maps


@dataclass
class Sweep:
    """Every network after training: logistic regression and, per width, the best restart."""

    linear: nets.MLP
    best: dict[int, nets.MLP]  # hidden units -> the chosen network, sliced to its real width
    final_loss: np.ndarray  # (len(WIDTHS), RESTARTS): training cross-entropy of every restart
    curves: dict[str, np.ndarray]  # training loss per step: "linear" and the widths shown


@dataclass
class Scores:
    """Accuracy and cross-entropy of every chosen network (from ONNX Runtime) on both splits."""

    acc: dict[str, dict[str, float]]  # model -> split -> accuracy
    loss: dict[str, dict[str, float]]
    ort_diff: float  # largest |ORT - NumPy| class probability over all models and points


def run(demo) -> None:
    data = make_data(demo.rng)
    sweep = train(demo.rng, data)
    sess = export(demo, sweep)
    scores = score(sess, sweep, data)
    maps = probability_maps(sess, data)
    one_unit_straight = one_unit_boundary_is_straight(sweep.best[1], maps)
    xor = worked_example(demo)

    draw_boundaries(demo, maps, sweep, scores, data)
    draw_width_sweep(demo, sweep, scores)
    draw_training(demo, sweep)
    measure(demo, sweep, scores, data)
    claim_findings(demo, scores, one_unit_straight, xor)


def make_data(rng):
    """Two noisy rings, radius 1 (class 0) around radius 0.5 (class 1): half for training."""
    X, y = datasets.circles(rng, 300, noise=0.1, factor=0.5)
    return datasets.split(rng, X, y, val=0.5, test=0.0)


def train(rng, data) -> Sweep:
    """Logistic regression, and RESTARTS networks per width trained side by side."""
    X, y = data.X_train, data.y_train
    # Logistic regression is the network 2 -> 2 with no hidden layer.
    lin_stack = optim.MLPStack((2, 2), "tanh")
    W_lin = lin_stack.flatten(nets.init_mlp(rng, [2, 2], activation="tanh"))[None, :]
    W_lin, lin_curve = _adam(lin_stack, W_lin, X, y)
    # All widths in one (2, max, 2) stack: the units a network does not have start at zero, so
    # their gradients are zero and they stay switched off.
    width_max = max(WIDTHS)
    stack = optim.MLPStack((2, width_max, 2), "tanh")
    rows = []
    for width in WIDTHS:
        for _ in range(RESTARTS):
            net = nets.init_mlp(rng, [2, width_max, 2], activation="tanh")
            net.weights[0][:, width:] = 0.0
            net.weights[1][width:, :] = 0.0
            rows.append(stack.flatten(net))
    W, curves = _adam(stack, np.array(rows), X, y)
    final = stack.loss_grad(W, X, y, loss="softmax")[0].reshape(len(WIDTHS), RESTARTS)
    best, shown_curves = {}, {"linear": lin_curve[:, 0]}
    for i, width in enumerate(WIDTHS):
        k = i * RESTARTS + int(np.argmin(final[i]))
        full = stack.to_net(W[k])
        best[width] = nets.MLP([full.weights[0][:, :width], full.weights[1][:width]],
                               [full.biases[0][:width], full.biases[1]], "tanh")
        if width in SHOWN:
            shown_curves[f"{width}"] = curves[:, k]
    return Sweep(lin_stack.to_net(W_lin[0]), best, final, shown_curves)


def export(demo, sweep: Sweep):
    """Logistic regression and the chosen network of every width, side by side in one ONNX graph
    ending in Softmax nodes; plus the widest network alone, for download."""
    models = [sweep.linear, *(sweep.best[w] for w in WIDTHS)]
    widest = sweep.best[max(WIDTHS)]
    demo.onnx(f"mlp_{max(WIDTHS)}_hidden", demo.make_model(
        onnx_export.export_mlp(widest, head="softmax", name=f"mlp_{max(WIDTHS)}_hidden")))
    return demo.onnx("all_networks", demo.make_model(onnx_export.export_mlps(models, head="softmax",
                                                                               name="all_networks")))


def score(sess, sweep: Sweep, data) -> Scores:
    """Accuracy and cross-entropy of every network in ONNX Runtime, and ORT against NumPy."""
    names = ["linear", *(f"{w}" for w in WIDTHS)]
    models = [sweep.linear, *(sweep.best[w] for w in WIDTHS)]
    acc: dict[str, dict[str, float]] = {n: {} for n in names}
    loss: dict[str, dict[str, float]] = {n: {} for n in names}
    ort_diff = 0.0
    for part, (Xp, yp) in {"train": (data.X_train, data.y_train), "val": (data.X_val, data.y_val)}.items():
        probs = _probs(sess, Xp)
        for j, (name, net) in enumerate(zip(names, models, strict=True)):
            p = probs[:, j].astype(np.float64)
            acc[name][part] = float(np.mean(p.argmax(axis=1) == yp))
            loss[name][part] = float(-np.mean(np.log(np.clip(p[np.arange(len(yp)), yp], 1e-12, None))))
            ort_diff = max(ort_diff, float(np.max(np.abs(p - nets.softmax(nets.predict(net, Xp))))))
    return Scores(acc, loss, ort_diff)


def probability_maps(sess, data) -> dict:
    """Every network's class-1 probability on a GRID x GRID grid over the data (from ORT)."""
    X = np.vstack([data.X_train, data.X_val])
    lo, hi = X.min(axis=0) - 0.2, X.max(axis=0) + 0.2
    gx, gy = np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID)
    grid = np.column_stack([a.ravel() for a in np.meshgrid(gx, gy)])
    probs = _probs(sess, grid)[:, :, 1]
    names = ["linear", *(f"{w}" for w in WIDTHS)]
    return {"lo": lo, "hi": hi, "gx": gx, "gy": gy, "grid": grid,
            "p1": {n: probs[:, j].reshape(GRID, GRID) for j, n in enumerate(names)}}


def one_unit_boundary_is_straight(net: nets.MLP, maps: dict) -> bool:
    """With one hidden unit the predicted class depends on w·x + b alone: sorted by it, the
    classes on the grid change at most once (a straight boundary)."""
    t = maps["grid"] @ net.weights[0][:, 0] + net.biases[0][0]
    cls = (maps["p1"]["1"].ravel() > 0.5)[np.argsort(t, kind="stable")]
    return bool(np.count_nonzero(cls[1:] != cls[:-1]) <= 1)


def worked_example(demo) -> np.ndarray:
    """The page's example: h1 = relu(x1 + x2), h2 = relu(x1 + x2 - 1), y = h1 - 2 h2 is XOR,
    run in ONNX Runtime on the four corners of the unit square."""
    net = nets.MLP([np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([[1.0], [-2.0]])],
                   [np.array([0.0, -1.0]), np.array([0.0])], "relu")
    sess = demo.session(demo.make_model(onnx_export.export_mlp(net, name="xor")))
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], np.float32)
    return sess.run(None, {"x": corners})[0][:, 0]


def draw_boundaries(demo, maps: dict, sweep: Sweep, scores: Scores, data) -> None:
    """Figure: probability maps of logistic regression and two widths, hidden units as lines."""
    panels = ["linear", *(f"{w}" for w in SHOWN)]
    acc = {n: scores.acc[n]["val"] for n in panels}
    titles = {"linear": "no hidden layer", **{f"{w}": f"{w} hidden units" for w in SHOWN}}
    lo, hi = maps["lo"], maps["hi"]

    @demo.figure(
        "boundaries",
        caption="Class-1 probability of logistic regression and of networks with "
        f"{' and '.join(map(str, SHOWN))} tanh hidden units (validation points; dashed: where each "
        "hidden unit's weighted sum is zero)",
        alt=f"Three maps of the plane with an inner ring of points inside an outer ring. Logistic "
        f"regression splits the plane with one straight line and gets {acc['linear']:.0%} of the "
        f"validation points right. With {SHOWN[0]} hidden units the boundary is bent from "
        f"{SHOWN[0]} dashed lines ({acc[str(SHOWN[0])]:.0%}); with {SHOWN[1]} units the dashed lines "
        f"enclose the inner ring in a closed curve ({acc[str(SHOWN[1])]:.0%}).",
        size=(6.4, 2.9),
        notice="A straight line cannot separate the rings; the hidden units' lines bend the boundary around "
        "the inner one.",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, 3, sharey=True)
        for ax, name in zip(axes, panels, strict=True):
            p1 = maps["p1"][name]
            ax.imshow(p1, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap="coolwarm",
                      vmin=0, vmax=1, alpha=0.55, aspect="auto")
            ax.contour(maps["gx"], maps["gy"], p1, levels=[0.5], colors="C7", linewidths=1.5)
            if name != "linear":
                _unit_lines(ax, sweep.best[int(name)], lo, hi)
            for cls, (color, marker) in enumerate((("C0", "o"), ("C1", "^"))):
                pts = data.X_val[data.y_val == cls]
                ax.scatter(pts[:, 0], pts[:, 1], s=7, color=color, marker=marker,
                           label=("outer ring", "inner ring")[cls])
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.grid(False)
            ax.set_title(f"{titles[name]}\nval. accuracy {acc[name]:.0%}", fontsize="medium")
            ax.set_xlabel("x₁")
        axes[0].set_ylabel("x₂")
        axes[0].legend(fontsize="x-small", loc="lower left", handletextpad=0.1)


def draw_width_sweep(demo, sweep: Sweep, scores: Scores) -> None:
    """Figure: validation accuracy of the chosen network against the number of hidden units."""
    val = [scores.acc[f"{w}"]["val"] for w in WIDTHS]
    lin = scores.acc["linear"]["val"]

    @demo.figure(
        "width-sweep",
        caption=f"Validation accuracy against hidden units (best of {RESTARTS} restarts by training "
        "loss); dotted: logistic regression",
        alt=f"Validation accuracy against the number of hidden units: {val[0]:.0%} with one unit, "
        f"then {', '.join(f'{v:.0%}' for v in val[1:])} with {', '.join(map(str, WIDTHS[1:]))} units; "
        f"logistic regression, a dotted line, is at {lin:.0%}.",
        notice="One hidden unit still draws a straight line; from three units on the network encloses the inner ring.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(WIDTHS, val, "o-", color="C0", label="network, validation")
        ax.plot(WIDTHS, [scores.acc[f"{w}"]["train"] for w in WIDTHS], "s--", color="C0", alpha=0.6,
                ms=4, label="network, training")
        ax.axhline(lin, ls=":", color="C1", label="logistic regression, validation")
        ax.set_xticks(WIDTHS)
        ax.set_xlabel("hidden units")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0.4, 1.02)
        ax.set_title("More hidden units, more bends in the boundary")
        ax.legend(fontsize="small", loc="lower right")


def draw_training(demo, sweep: Sweep) -> None:
    """Figure: training cross-entropy during training, for logistic regression and two widths."""
    final = {k: v[-1] for k, v in sweep.curves.items()}

    @demo.figure(
        "training",
        caption=f"Training cross-entropy during {STEPS} Adam steps (log scale)",
        alt=f"Loss against step. Logistic regression levels off at {final['linear']:.2f}, close to "
        f"the {np.log(2):.2f} of a coin flip; the network with {SHOWN[0]} units ends at "
        f"{final[str(SHOWN[0])]:.2f}, the one with {SHOWN[1]} units at {final[str(SHOWN[1])]:.3f}.",
        notice="Logistic regression stalls near the loss of guessing; the wider network keeps improving.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        steps = np.arange(1, STEPS + 1)
        labels = {"linear": "logistic regression", **{f"{w}": f"{w} hidden units" for w in SHOWN}}
        for c, (key, curve) in enumerate(sweep.curves.items()):
            ax.plot(steps, curve, color=f"C{c}", label=labels[key])
        ax.axhline(np.log(2), ls=":", color="C7", label="guessing (ln 2)")
        plotting.plain_log_axis(ax.yaxis)
        ax.set_xlabel("Adam step")
        ax.set_ylabel("training cross-entropy")
        ax.legend(fontsize="small")


def measure(demo, sweep: Sweep, scores: Scores, data) -> None:
    """Record the setup and the accuracies and losses."""
    demo.key_numbers("val_accuracy_linear", "val_accuracy_1", f"val_accuracy_{max(WIDTHS)}",
                     "train_loss_linear", f"train_loss_{max(WIDTHS)}")
    demo.setting("n_train", len(data.y_train), label="Training points")
    demo.setting("n_val", len(data.y_val), label="Validation points")
    demo.setting("restarts", RESTARTS, label="Restarts per width (lowest training loss kept)")
    demo.setting("steps", STEPS, label="Adam steps (full batch)")
    demo.setting("learning_rate", LR, label="Adam learning rate")
    demo.setting("width_max", max(WIDTHS), label="Hidden units of the widest network")
    demo.setting("width_enclose", ENCLOSE, label="Fewest hidden units that can enclose the inner ring")
    demo.setting("width_shown", SHOWN[0], label="Hidden units of the narrow network shown")
    n_params = {w: 2 * w + w + w * 2 + 2 for w in WIDTHS}
    demo.setting("params_max", n_params[max(WIDTHS)], label="Weights and biases of the widest network")
    demo.setting("params_linear", 2 * 2 + 2, label="Weights and biases of logistic regression")
    for name in ["linear", *(f"{w}" for w in WIDTHS)]:
        what = "logistic regression" if name == "linear" else f"{name} hidden units"
        demo.metric(f"val_accuracy_{name}", scores.acc[name]["val"], label=f"Validation accuracy, {what}",
                    fmt=".1%")
        demo.metric(f"train_accuracy_{name}", scores.acc[name]["train"], label=f"Training accuracy, {what}",
                    fmt=".1%")
        demo.metric(f"train_loss_{name}", scores.loss[name]["train"], label=f"Training cross-entropy, {what}",
                    fmt=".3g")
    demo.metric("guess_loss", np.log(2), label="Cross-entropy of guessing one half (ln 2)", fmt=".3g")
    demo.metric("ort_max_diff", scores.ort_diff, label="Max |ORT − NumPy| class probability", fmt=".1e")


def claim_findings(demo, scores: Scores, one_unit_straight: bool, xor: np.ndarray) -> None:
    """Findings: no straight line separates the rings; a hidden layer does. Checks: ORT = NumPy."""
    acc = {k: v["val"] for k, v in scores.acc.items()}
    widest = f"{max(WIDTHS)}"
    demo.claim(
        "Logistic regression, whose boundary is a straight line, does not learn the rings: its "
        "training loss stays above 0.6 (guessing: ln 2 ≈ 0.69) and its validation accuracy below 70%",
        holds=bool(acc["linear"] < 0.7 and scores.loss["linear"]["train"] > 0.6),
        val_accuracy_linear=acc["linear"],
        train_loss_linear=scores.loss["linear"]["train"],
    )
    demo.claim(
        f"A network with one hidden layer of {widest} tanh units separates the rings: above 95% "
        "validation accuracy",
        holds=bool(acc[widest] > 0.95),
        **{f"val_accuracy_{widest}": acc[widest], f"train_accuracy_{widest}": scores.acc[widest]["train"]},
    )
    demo.claim(
        "A single hidden unit still gives a straight boundary and stays below 75% validation "
        f"accuracy, while every network with {ENCLOSE} or more units is above 90%",
        holds=bool(acc["1"] < 0.75 and all(acc[f"{w}"] > 0.9 for w in WIDTHS if w >= ENCLOSE)),
        val_accuracy_1=acc["1"],
        val_accuracy_3=acc["3"],
        val_accuracy_4=acc["4"],
    )
    demo.check(
        "With one hidden unit the predicted class depends on w·x + b alone: sorted by it, the class "
        "changes at most once over the grid (the boundary is a straight line)",
        holds=one_unit_straight,
    )
    demo.check(
        "ONNX Runtime's class probabilities equal NumPy's for every network (max difference < 1e-5)",
        holds=bool(scores.ort_diff < 1e-5),
        ort_max_diff=scores.ort_diff,
    )
    demo.check(
        "Worked example: the ReLU network h1 = relu(x1 + x2), h2 = relu(x1 + x2 − 1), y = h1 − 2 h2 "
        "gives 0, 1, 1, 0 on (0,0), (0,1), (1,0), (1,1) in ONNX Runtime: XOR",
        holds=bool(np.array_equal(xor, [0.0, 1.0, 1.0, 0.0])),
        y_00=float(xor[0]), y_01=float(xor[1]), y_10=float(xor[2]), y_11=float(xor[3]),
    )


def _adam(stack, W: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """STEPS full-batch Adam steps on every row of W; returns W and the loss per step, (STEPS, K)."""
    opt = optim.Adam(LR)
    curve = np.empty((STEPS, W.shape[0]))
    for t in range(1, STEPS + 1):
        curve[t - 1], G = stack.loss_grad(W, X, y, loss="softmax")
        W = opt.step(W, G, t)
    return W, curve


def _probs(sess, X: np.ndarray) -> np.ndarray:
    """Class probabilities of every model in the side-by-side graph: (n, models, 2)."""
    y = sess.run(None, {"x": X.astype(np.float32)})[0]
    return y.reshape(len(X), -1, 2)


def _unit_lines(ax, net: nets.MLP, lo: np.ndarray, hi: np.ndarray) -> None:
    """Dashed lines where each hidden unit's weighted sum w·x + b is zero."""
    xs = np.array([lo[0], hi[0]])
    for w, b in zip(net.weights[0].T, net.biases[0], strict=True):
        if abs(w[1]) > abs(w[0]):
            ax.plot(xs, -(w[0] * xs + b) / w[1], "--", color="k", lw=0.8, alpha=0.6)
        else:
            ys = np.array([lo[1], hi[1]])
            ax.plot(-(w[1] * ys + b) / w[0], ys, "--", color="k", lw=0.8, alpha=0.6)
