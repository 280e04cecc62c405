"""Early stopping: an over-parameterised MLP overfits; a patience rule stops it and restores the
best-validation checkpoint. The whole run is repeated on fresh data and weights, so the page can
say what holds on average and how often the rule stops at a bump; a linear model checks the
effective-L2 reading of early stopping."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, nets, onnx_export
from matplotlib import rcParams as plt_rc

BATCH_SIZE = 10
GRID = 150  # points per side of the probability map
N_POINTS, VAL, TEST = 400, 0.2, 0.7  # two-moons points, and the validation and test fractions
HIDDEN = 64


@dataclass
class Stop:
    """What a patience rule made of one training run."""

    patience: int
    best_epoch: int
    stop_epoch: int
    checkpoint: nets.MLP  # the weights at best_epoch


@dataclass
class Training:
    """One full training run, and what the patience rules made of it."""

    train_loss: np.ndarray  # per epoch, epoch 0 = the initial weights
    val_loss: np.ndarray
    stops: dict  # patience -> Stop
    last: nets.MLP  # the weights after the whole budget
    data: datasets.Split
    snapshots: list  # the weights after every epoch (only for the run that is drawn)

    def bumped(self, patience: int) -> bool:
        """Did validation loss, after the stop, fall below the restored checkpoint's? (a bump)"""
        st = self.stops[patience]
        return bool(self.val_loss[st.stop_epoch:].min() < self.val_loss[st.best_epoch])


@dataclass
class ProbabilityMap:
    """Class-1 probability of the drawn run's net after each of a few epochs, on a square grid."""

    lo: float
    hi: float
    gx: np.ndarray
    gy: np.ndarray
    epochs: list[int]
    p1: list[np.ndarray]  # one map per epoch


def run(demo) -> None:
    opts = demo.options
    epochs = int(opts.get("epochs", 300))
    patience = int(opts.get("patience", 25))
    short = int(opts.get("short_patience", 3))
    lr = float(opts.get("lr", 0.0005))
    repeats = int(opts.get("repeats", 6))

    runs = []
    for i in range(repeats):  # fresh data and initial weights each time; run 0 is drawn
        data = make_data(demo.rng)
        runs.append(train(demo.rng, data, epochs, (patience, short), lr, keep_snapshots=i == 0))
    shown = runs[0]
    sess = export(demo, shown, patience)
    scores, ort_diff = score(sess, shown.stops[patience].checkpoint, shown.data)
    stats = repeat_stats(runs, patience, short)
    prob_map = probability_map(demo, shown, frame_epochs(shown.stops[patience], epochs))
    lam_fit = effective_lambda(demo.rng)

    draw_curves(demo, shown, epochs, patience, short)
    draw_decision_regions(demo, prob_map, shown, patience, epochs)
    measure(demo, shown, patience, short, epochs, repeats, scores, stats, lam_fit)
    claim_findings(demo, runs, stats, scores, ort_diff, lam_fit, patience, repeats)


def make_data(rng):
    """Two noisy moons, split into training, validation and test points."""
    X, y = datasets.moons(rng, N_POINTS, noise=0.3)
    return datasets.split(rng, X, y, val=VAL, test=TEST)


def train(rng, data, epochs: int, patiences: tuple[int, ...], lr: float, keep_snapshots: bool = False) -> Training:
    """Train a 2-64-64-2 ReLU net for the whole budget, noting where each patience rule stops
    (and, if asked, keeping the weights after every epoch)."""
    # Thousands of weights for a few dozen points: it can memorise the training set.
    net = nets.init_mlp(rng, [2, HIDDEN, HIDDEN, 2], activation="relu")
    opt = nets.Adam(lr=lr)
    steps_per_epoch = len(data.y_train) // BATCH_SIZE

    # Train for the whole budget so the page can show what happens after the stopping point; a
    # patience rule only ever looks at epochs up to the one it stops at.
    train_loss, val_loss, snapshots = [], [], []
    state = {p: [np.inf, 0, net.copy(), None] for p in patiences}  # best, best epoch, ckpt, stop
    for epoch in range(epochs + 1):
        if epoch > 0:
            nets.fit(net, data.X_train, data.y_train, nets.softmax_cross_entropy, opt,
                     steps=steps_per_epoch, rng=rng, batch_size=BATCH_SIZE)
        tr, va = _losses(net, data)
        train_loss.append(tr)
        val_loss.append(va)
        if keep_snapshots:
            snapshots.append(net.copy())
        for p, st in state.items():
            if st[3] is None:
                if va < st[0]:
                    st[0], st[1], st[2] = va, epoch, net.copy()
                elif epoch - st[1] >= p:
                    st[3] = epoch  # `p` epochs in a row without a new best: stop here
    stops = {p: Stop(p, st[1], epochs if st[3] is None else st[3], st[2]) for p, st in state.items()}
    return Training(np.array(train_loss), np.array(val_loss), stops, net, data, snapshots)


def export(demo, training: Training, patience: int):
    """Both nets (restored checkpoint, last epoch) in one ONNX graph; softmax probabilities out."""
    graph = onnx_export.export_mlps([training.stops[patience].checkpoint, training.last],
                                    head="softmax", name="checkpoint_vs_last")
    return demo.onnx("checkpoint_vs_last", demo.make_model(graph))


def score(sess, checkpoint: nets.MLP, data) -> tuple[dict[str, float], float]:
    """Validation and test loss and accuracy of both nets in ONNX Runtime, and ORT vs NumPy."""
    scores = {}
    for part, (Xp, yp) in {"val": (data.X_val, data.y_val),
                           "test": (data.X_test, data.y_test)}.items():
        for name, p in zip(("checkpoint", "last"), _probs(sess, Xp), strict=True):
            scores[f"{part}_loss_{name}"] = _cross_entropy(p, yp)
            scores[f"{part}_acc_{name}"] = float(np.mean(p.argmax(axis=1) == yp))
    ort_diff = float(np.max(np.abs(
        _probs(sess, data.X_test)[0] - nets.softmax(nets.predict(checkpoint, data.X_test)))))
    return scores, ort_diff


def frame_epochs(stop: Stop, epochs: int) -> list[int]:
    """Epochs to draw: 0, the restored epoch, the stop, and ten log-spaced ones not next to them."""
    spaced = np.unique(np.round(np.geomspace(1, epochs, 10)).astype(int))
    marked = (stop.best_epoch, stop.stop_epoch)
    near = [e for e in spaced if min(abs(e - m) for m in marked) <= e / 5 and e != epochs]
    return sorted({0, *marked, *(int(e) for e in spaced if e not in near)})


def probability_map(demo, training: Training, shown_epochs: list[int]) -> ProbabilityMap:
    """Class-1 probability on a grid over the data, from ONNX Runtime, of the net after each
    drawn epoch (all snapshots side by side in one graph)."""
    X = np.vstack([training.data.X_train, training.data.X_val, training.data.X_test])  # the map's extent
    lo, hi = float(np.floor(X.min() * 4) / 4), float(np.ceil(X.max() * 4) / 4)
    grid_1d = np.linspace(lo, hi, GRID)
    gx, gy = np.meshgrid(grid_1d, grid_1d)
    sess = demo.session(demo.make_model(onnx_export.export_mlps(
        [training.snapshots[e] for e in shown_epochs], head="softmax", name="epoch_snapshots")))
    out = sess.run(None, {"x": np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)})[0]
    p1 = [out[:, 2 * k + 1].reshape(gx.shape) for k in range(len(shown_epochs))]
    return ProbabilityMap(lo, hi, gx, gy, shown_epochs, p1)


def repeat_stats(runs: list[Training], patience: int, short: int) -> dict[str, np.ndarray]:
    """Per run (NumPy): test loss and accuracy of the checkpoints and the last net, the losses
    at the stop and at the end, and whether each patience rule stopped at a bump."""
    keys = ("test_loss_ckpt", "test_loss_last", "test_loss_short", "test_acc_ckpt",
            "test_acc_last", "train_stop", "train_last", "val_stop", "val_last", "bump", "bump_short")
    out: dict[str, list] = {k: [] for k in keys}
    for r in runs:
        d, st = r.data, r.stops[patience]
        for key, net in (("ckpt", st.checkpoint), ("last", r.last), ("short", r.stops[short].checkpoint)):
            logits = nets.predict(net, d.X_test)
            out[f"test_loss_{key}"].append(nets.softmax_cross_entropy(logits, d.y_test)[0])
            if key != "short":
                out[f"test_acc_{key}"].append(float(np.mean(logits.argmax(axis=1) == d.y_test)))
        out["train_stop"].append(r.train_loss[st.stop_epoch])
        out["train_last"].append(r.train_loss[-1])
        out["val_stop"].append(r.val_loss[st.stop_epoch])
        out["val_last"].append(r.val_loss[-1])
        out["bump"].append(r.bumped(patience))
        out["bump_short"].append(r.bumped(short))
    return {k: np.array(v, float) for k, v in out.items()}


def effective_lambda(rng, steps=(10, 100, 1000)) -> dict[str, np.ndarray]:
    """Linear least squares: gradient descent from zero for t steps against ridge regression.

    For each t, the ridge penalty whose weights are closest to gradient descent's, as a multiple
    of 1/(eta t), and the relative distance to ridge at exactly lambda = 1/(eta t).
    """
    n, d = 200, 12
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = rng.standard_normal((n, d)) @ np.diag(np.logspace(0, -2, d)) @ Q.T  # curvatures over decades
    y = X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n)
    H, b = X.T @ X / n, X.T @ y / n
    eta = 1.0 / float(np.linalg.eigvalsh(H).max())
    lams = np.logspace(-7, 2, 901)
    ratio, dist = [], []
    for t in steps:
        w = np.zeros(d)
        for _ in range(t):
            w -= eta * (H @ w - b)
        errs = [np.linalg.norm(w - _ridge(H, b, lam)) for lam in lams]
        ratio.append(lams[int(np.argmin(errs))] * eta * t)
        dist.append(np.linalg.norm(w - _ridge(H, b, 1.0 / (eta * t))) / np.linalg.norm(w))
    return {"steps": np.array(steps), "ratio": np.array(ratio), "dist": np.array(dist)}


def draw_curves(demo, training: Training, epochs: int, patience: int, short: int) -> None:
    """Figure: training and validation loss per epoch, where each patience rule stops."""
    epoch_axis = np.arange(epochs + 1)
    st, st_short = training.stops[patience], training.stops[short]

    @demo.figure(
        "curves",
        caption=f"Training and validation loss per epoch (first run); patience {patience} "
        f"epochs, and where a patience of {short} would have stopped",
        alt="Line chart of cross-entropy against epoch. Training loss falls toward zero. "
        "Validation loss falls at first, reaches its minimum early, then climbs. Vertical lines "
        "mark the restored best epoch and the epoch at which the patience rule stopped, the "
        "region after it shaded, and a dotted grey line where the short patience stopped.",
        notice="Validation loss turns up long before training loss stops falling: that turn is where to stop.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.axvspan(st.stop_epoch, epochs, color="C7", alpha=0.15, lw=0,
                   label="not needed (after the stop)")
        ax.plot(epoch_axis, training.train_loss, color="C0", label="training loss")
        ax.plot(epoch_axis, training.val_loss, color="C1", label="validation loss")
        ax.axvline(st.best_epoch, color="C2", ls="--", lw=1.5, label=f"best epoch {st.best_epoch}")
        ax.axvline(st.stop_epoch, color="C3", ls=":", lw=1.5, label=f"stopped at epoch {st.stop_epoch}")
        ax.axvline(st_short.stop_epoch, color="C7", ls=":", lw=1.2,
                   label=f"patience {short}: stopped at {st_short.stop_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss")
        ax.set_ylim(0.0, None)
        ax.set_xlim(0, epochs)
        ax.set_title("Validation loss turns up: stop and restore")
        fig.legend(loc="outside lower center", ncols=3, fontsize="small")


def draw_decision_regions(demo, prob_map: ProbabilityMap, training: Training, patience: int,
                          epochs: int) -> None:
    """Figure with a slider over the epoch: the net's class-1 probability map after that epoch,
    and where that epoch sits on the loss curves."""
    lo, hi, gx, gy, shown = prob_map.lo, prob_map.hi, prob_map.gx, prob_map.gy, prob_map.epochs
    data, st = training.data, training.stops[patience]
    names = {st.best_epoch: "restored best", st.stop_epoch: "rule stops", epochs: "end of budget"}
    loss_top = 1.05 * max(training.train_loss.max(), training.val_loss.max())

    @demo.sweep(
        "decision-regions", shown, label="epoch", fmt=".0f", default=shown.index(st.best_epoch),
        caption=f"The first run's network after each of {len(shown)} epochs from 0 to {epochs}: "
        "class-1 probability from ONNX Runtime over the training points (circles class 0, "
        "triangles class 1), and that epoch on the loss curves",
        alt="Left, the two-moons training points shaded by the network's predicted probability "
        "with its decision boundary; right, training and validation loss against epoch with the "
        "shown epoch marked. Early on the boundary is a rough straight cut; at the restored best "
        "epoch it runs smoothly between the moons; by the end of the budget it bends around "
        "single noisy points while validation loss climbs",
        size=(6.4, 3.6), file_fmt="svg",
        notice="Move past the restored epoch: the boundary starts bending around single noisy "
        "points, training loss keeps falling and validation loss climbs.",
        numbers=lambda k: [demo.number(training.train_loss[shown[k]], "training loss", ".3f"),
                           demo.number(training.val_loss[shown[k]], "validation loss", ".3f")],
    )
    def _(fig, k: int) -> None:
        epoch, p1 = shown[k], prob_map.p1[k]
        ax, ax_loss = fig.subplots(1, 2)
        edge = plt_rc["text.color"]  # the theme's text colour: dark on light, light on dark
        # 40 shades at the grid's own resolution: a few-kB image in each frame
        ax.imshow(np.round(p1 * 40) / 40, origin="lower", extent=(lo, hi, lo, hi), cmap="RdBu_r",
                  vmin=0.0, vmax=1.0, alpha=0.5, interpolation="none")
        if p1.min() < 0.5 < p1.max():
            ax.contour(gx, gy, p1, levels=[0.5], colors=edge, linewidths=1.2)
        for cls, marker in ((0, "o"), (1, "^")):
            ax.scatter(*data.X_train[data.y_train == cls].T, marker=marker, s=24, c=f"C{cls}", edgecolors=edge,
                       linewidths=0.7)
        ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="x₁", ylabel="x₂")
        ax.grid(False)
        ax.set_title(f"epoch {epoch}" + (f" ({names[epoch]})" if epoch in names else ""), fontsize="medium")

        ax_loss.plot(training.train_loss, color="C0", lw=1.5, label="training")
        ax_loss.plot(training.val_loss, color="C1", lw=1.5, label="validation")
        ax_loss.axvline(st.best_epoch, color="C2", ls="--", lw=1.2, label="restored epoch")
        ax_loss.axvline(epoch, color="C7", lw=1.2)
        ax_loss.plot([epoch] * 2, [training.train_loss[epoch], training.val_loss[epoch]], "o", color="C7",
                     ms=6, clip_on=False)
        ax_loss.set_xscale("symlog", linthresh=1.0, linscale=0.5)  # the early epochs spread out
        ticks = [t for t in (0, 1, 3, 10, 30, 100, 300) if t <= epochs]
        ax_loss.set_xticks(ticks, [str(t) for t in ticks])
        ax_loss.minorticks_off()
        ax_loss.set(xlim=(0, epochs), ylim=(0.0, loss_top), xlabel="epoch", ylabel="cross-entropy loss")
        ax_loss.legend(fontsize="small", loc="upper right")


def measure(demo, training: Training, patience: int, short: int, epochs: int, repeats: int,
            scores: dict[str, float], stats: dict[str, np.ndarray], lam_fit: dict) -> None:
    """Record the setup, the first run's stopping point and scores, and the averages over runs."""
    demo.key_numbers("best_epoch", "stop_epoch", "mean_test_loss_ckpt", "mean_test_loss_last", "epochs_saved_fraction")
    st, data = training.stops[patience], training.data
    n_weights = sum(p.size for p in st.checkpoint.params())
    for name, value, label in (
            ("n_train", len(data.y_train), "Training points"),
            ("n_val", len(data.y_val), "Validation points"), ("n_test", len(data.y_test), "Test points"),
            ("hidden", HIDDEN, "Units per hidden layer"), ("n_weights", n_weights, "Weights and biases"),
            ("patience", patience, "Patience (epochs)"), ("short_patience", short, "Short patience (epochs)"),
            ("epochs", epochs, "Epochs in the full run"), ("repeats", repeats, "Training runs")):
        demo.setting(name, value, label=label)
    demo.metric("best_epoch", st.best_epoch, label="Restored (best-validation) epoch", fmt=".0f")
    demo.metric("stop_epoch", st.stop_epoch, label="Epoch at which the patience rule stopped", fmt=".0f")
    demo.metric("epochs_saved_fraction", 1.0 - st.stop_epoch / epochs,
                label="Share of the epoch budget not needed", fmt=".0%")
    for key, label, fmt in (("val_loss_checkpoint", "Validation loss, restored checkpoint", ".3f"),
                            ("val_loss_last", "Validation loss, last epoch", ".3f"),
                            ("test_loss_checkpoint", "Test loss, restored checkpoint", ".3f"),
                            ("test_loss_last", "Test loss, last epoch", ".3f"),
                            ("test_acc_checkpoint", "Test accuracy, restored checkpoint", ".1%"),
                            ("test_acc_last", "Test accuracy, last epoch", ".1%")):
        demo.metric(key, scores[key], label=label + " (first run)", fmt=fmt)
    demo.metric("train_loss_last", training.train_loss[-1], label="Training loss, last epoch", fmt=".3f")
    avg = {k: float(np.mean(v)) for k, v in stats.items()}
    for key, label, fmt in (
            ("test_loss_ckpt", "Mean test loss, restored checkpoint", ".3f"),
            ("test_loss_last", "Mean test loss, last epoch", ".3f"),
            ("test_loss_short", "Mean test loss, checkpoint of the short patience", ".3f"),
            ("test_acc_ckpt", "Mean test accuracy, restored checkpoint", ".1%"),
            ("test_acc_last", "Mean test accuracy, last epoch", ".1%"),
            ("bump", "Share of runs where validation loss later beat the restored best", ".0%"),
            ("bump_short", "The same, with the short patience", ".0%")):
        demo.metric(f"mean_{key}", avg[key], label=label, fmt=fmt)
    demo.metric("last_acc_higher_share", float(np.mean(stats["test_acc_last"] > stats["test_acc_ckpt"])),
                label="Share of runs where the last epoch has the higher test accuracy", fmt=".0%")
    demo.metric("lambda_ratio_min", lam_fit["ratio"].min(), label="Best-matching ridge λ × ηt, smallest", fmt=".2f")
    demo.metric("lambda_ratio_max", lam_fit["ratio"].max(), label="Best-matching ridge λ × ηt, largest", fmt=".2f")


def claim_findings(demo, runs: list[Training], stats: dict[str, np.ndarray], scores: dict[str, float],
                   ort_diff: float, lam_fit: dict, patience: int, repeats: int) -> None:
    """Findings on average over the runs; checks: the restored epoch, ORT, effective lambda."""
    avg = {k: float(np.mean(v)) for k, v in stats.items()}
    demo.claim(
        f"Averaged over {repeats} runs, the restored checkpoint has a lower test loss than the "
        "network trained to the end",
        holds=bool(avg["test_loss_ckpt"] < avg["test_loss_last"]),
        mean_test_loss_checkpoint=demo.number(avg["test_loss_ckpt"], "mean test loss of the restored checkpoint"),
        mean_test_loss_last=avg["test_loss_last"],
    )
    demo.claim(
        f"Averaged over {repeats} runs, training loss keeps falling after the stopping point "
        "while validation loss rises",
        holds=bool(avg["train_last"] < avg["train_stop"] and avg["val_last"] > avg["val_stop"]),
        train_at_stop=demo.number(avg["train_stop"], "training loss at the stop"),
        train_last=demo.number(avg["train_last"], "training loss at the end"),
        val_at_stop=demo.number(avg["val_stop"], "validation loss at the stop"),
        val_last=demo.number(avg["val_last"], "validation loss at the end"),
    )
    demo.check(
        "Every restored checkpoint has the lowest validation loss of the epochs up to its stop",
        holds=all(r.val_loss[st.best_epoch] == r.val_loss[:st.stop_epoch + 1].min()
                  for r in runs for st in r.stops.values()),
    )
    demo.check(
        "ONNX Runtime reproduces the restored checkpoint's NumPy probabilities",
        holds=bool(ort_diff < 1e-5), max_abs_diff=ort_diff,
    )
    demo.check(
        "Linear least squares: after t gradient steps of size η from zero, the ridge penalty whose "
        "weights are closest lies within a factor of 3 of 1/(ηt), and ridge at λ = 1/(ηt) is within "
        "25% of the gradient-descent weights",
        holds=bool(np.all((lam_fit["ratio"] > 1 / 3) & (lam_fit["ratio"] < 3)) and np.all(lam_fit["dist"] < 0.25)),
        steps=", ".join(str(t) for t in lam_fit["steps"]),
        best_lambda_times_eta_t=", ".join(f"{v:.2f}" for v in lam_fit["ratio"]),
        relative_distance=", ".join(f"{v:.2f}" for v in lam_fit["dist"]),
    )


def _losses(model: nets.MLP, data) -> tuple[float, float]:
    """Training and validation cross-entropy of a NumPy net."""
    return (
        nets.softmax_cross_entropy(nets.predict(model, data.X_train), data.y_train)[0],
        nets.softmax_cross_entropy(nets.predict(model, data.X_val), data.y_val)[0],
    )


def _probs(sess, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of the checkpoint and of the last net, from ONNX Runtime."""
    out = sess.run(None, {"x": inputs.astype(np.float32)})[0]
    return out[:, :2], out[:, 2:]


def _cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy from class probabilities (clipped away from 0)."""
    p = np.clip(probs[np.arange(len(labels)), labels].astype(np.float64), 1e-12, 1.0)
    return float(-np.mean(np.log(p)))


def _ridge(H: np.ndarray, b: np.ndarray, lam: float) -> np.ndarray:
    """Ridge weights for curvature ``H`` and ``b = X^T y / n``."""
    return np.linalg.solve(H + lam * np.eye(len(b)), b)
