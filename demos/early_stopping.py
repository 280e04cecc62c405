"""Early stopping: an over-parameterised MLP overfits; a patience rule stops it and restores the
best-validation checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, nets, onnx_export
from matplotlib import rcParams as plt_rc

BATCH_SIZE = 10
GRID = 150  # points per side of the probability map


@dataclass
class Training:
    """The full training run, and what the patience rule made of it."""

    train_loss: np.ndarray  # per epoch, epoch 0 = the initial weights
    val_loss: np.ndarray
    best_epoch: int
    stop_epoch: int
    checkpoint: nets.MLP  # the weights at best_epoch
    last: nets.MLP  # the weights after the whole budget


@dataclass
class ProbabilityMap:
    """Class-1 probability of the checkpoint and the last net on a square grid."""

    lo: float
    hi: float
    gx: np.ndarray
    gy: np.ndarray
    p1: list[np.ndarray]


def run(demo) -> None:
    opts = demo.options
    epochs = int(opts.get("epochs", 300))
    patience = int(opts.get("patience", 25))
    lr = float(opts.get("lr", 0.0005))

    X, data = make_data(demo.rng)
    training = train(demo.rng, data, epochs, patience, lr)
    sess = export(demo, training)
    scores, ort_diff = score(sess, training.checkpoint, data)
    prob_map = probability_map(sess, X)

    draw_curves(demo, training, epochs, patience)
    draw_decision_regions(demo, prob_map, data, training.best_epoch, epochs)
    measure(demo, training, patience, epochs, scores, ort_diff)
    claim_findings(demo, training, scores)


def make_data(rng):
    """Two noisy moons: 40 training, 80 validation and 280 test points."""
    X, y = datasets.moons(rng, 400, noise=0.3)
    return X, datasets.split(rng, X, y, val=0.2, test=0.7)


def train(rng, data, epochs: int, patience: int, lr: float) -> Training:
    """Train a 2-64-64-2 ReLU net for the whole budget, noting where the patience rule stops."""
    # ~4,500 weights for 40 points, so it can memorise the training set if trained long enough.
    net = nets.init_mlp(rng, [2, 64, 64, 2], activation="relu")
    opt = nets.Adam(lr=lr)
    steps_per_epoch = len(data.y_train) // BATCH_SIZE

    # Train for the whole budget so the page can show what happens after the stopping point; the
    # patience rule below only ever looks at epochs up to the one it stops at.
    train_loss, val_loss = [], []
    best_val, best_epoch, checkpoint = np.inf, 0, net.copy()
    stop_epoch = None
    for epoch in range(epochs + 1):
        if epoch > 0:
            nets.fit(net, data.X_train, data.y_train, nets.softmax_cross_entropy, opt,
                     steps=steps_per_epoch, rng=rng, batch_size=BATCH_SIZE)
        tr, va = _losses(net, data)
        train_loss.append(tr)
        val_loss.append(va)
        if stop_epoch is None:
            if va < best_val:
                best_val, best_epoch, checkpoint = va, epoch, net.copy()
            elif epoch - best_epoch >= patience:
                stop_epoch = epoch  # `patience` epochs in a row without a new best: stop here
    if stop_epoch is None:
        stop_epoch = epochs
    return Training(np.array(train_loss), np.array(val_loss), best_epoch, stop_epoch, checkpoint, net)


def export(demo, training: Training):
    """Both nets (restored checkpoint, last epoch) in one ONNX graph; softmax probabilities out."""
    graph = onnx_export.export_mlps([training.checkpoint, training.last], head="softmax",
                                    name="checkpoint_vs_last")
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


def probability_map(sess, X: np.ndarray) -> ProbabilityMap:
    """Both nets' class-1 probability on a grid over the data."""
    lo, hi = float(np.floor(X.min() * 4) / 4), float(np.ceil(X.max() * 4) / 4)
    grid_1d = np.linspace(lo, hi, GRID)
    gx, gy = np.meshgrid(grid_1d, grid_1d)
    grid_probs = _probs(sess, np.column_stack([gx.ravel(), gy.ravel()]))
    return ProbabilityMap(lo, hi, gx, gy, [p[:, 1].reshape(gx.shape) for p in grid_probs])


def draw_curves(demo, training: Training, epochs: int, patience: int) -> None:
    """Figure: training and validation loss per epoch, with the best and the stopping epoch."""
    epoch_axis = np.arange(epochs + 1)
    best_epoch, stop_epoch = training.best_epoch, training.stop_epoch

    @demo.figure(
        "curves",
        caption=f"Training and validation loss per epoch; patience {patience} epochs",
        alt="Line chart of cross-entropy against epoch. Training loss falls toward zero. "
        "Validation loss falls at first, reaches its minimum early, then climbs steadily. "
        "A vertical line marks the restored best epoch and a second one, a little later, "
        "the epoch at which the patience rule stopped training; the region after it is shaded.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.axvspan(stop_epoch, epochs, color="C7", alpha=0.15, lw=0,
                   label="not needed (after the stop)")
        ax.plot(epoch_axis, training.train_loss, color="C0", label="training loss")
        ax.plot(epoch_axis, training.val_loss, color="C1", label="validation loss")
        ax.axvline(best_epoch, color="C2", ls="--", lw=1.5, label=f"best epoch {best_epoch}")
        ax.axvline(stop_epoch, color="C3", ls=":", lw=1.5, label=f"stopped at epoch {stop_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss")
        ax.set_ylim(0.0, None)
        ax.set_xlim(0, epochs)
        ax.set_title("Validation loss turns up: stop and restore")
        fig.legend(loc="outside lower center", ncols=3)


def draw_decision_regions(demo, prob_map: ProbabilityMap, data, best_epoch: int, epochs: int) -> None:
    """Figure: class-1 probability maps of the restored checkpoint and of the last epoch."""
    lo, hi, gx, gy = prob_map.lo, prob_map.hi, prob_map.gx, prob_map.gy

    @demo.figure(
        "decision-regions",
        caption="Class-1 probability from ONNX Runtime, restored checkpoint versus last epoch; "
        "markers are the 40 training points (circles class 0, triangles class 1)",
        alt="Two panels over the moons data, shaded by predicted probability. The restored "
        "checkpoint draws a smooth boundary between the two moons; the last-epoch network bends "
        "its boundary around individual noisy training points and is confident almost everywhere.",
        size=(6.4, 3.6),
    )
    def _(fig) -> None:
        axes = fig.subplots(1, 2, sharey=True)
        edge = plt_rc["text.color"]  # the theme's text colour: dark on light, light on dark
        titles = (f"restored (epoch {best_epoch})", f"last epoch ({epochs})")
        for ax, p1, title in zip(axes, prob_map.p1, titles, strict=True):
            im = ax.imshow(p1, origin="lower", extent=(lo, hi, lo, hi), cmap="RdBu_r",
                           vmin=0.0, vmax=1.0, alpha=0.5, interpolation="bilinear")
            ax.contour(gx, gy, p1, levels=[0.5], colors=edge, linewidths=1.2)
            for cls, marker in ((0, "o"), (1, "^")):
                pts = data.X_train[data.y_train == cls]
                ax.scatter(pts[:, 0], pts[:, 1], marker=marker, s=24, c=f"C{cls}",
                           edgecolors=edge, linewidths=0.7)
            ax.set_title(title, fontsize="medium")
            ax.set_xlabel("x₁")
            ax.grid(False)
        axes[0].set_ylabel("x₂")
        fig.colorbar(im, ax=axes, shrink=0.8, label="P(class 1)")


def measure(demo, training: Training, patience: int, epochs: int, scores: dict[str, float],
            ort_diff: float) -> None:
    """Record the stopping point and the scores of the checkpoint and the last epoch."""
    demo.metric("best_epoch", training.best_epoch, label="Restored (best-validation) epoch", fmt=".0f")
    demo.metric("stop_epoch", training.stop_epoch, label="Epoch at which the patience rule stopped",
                fmt=".0f")
    demo.metric("patience", patience, label="Patience (epochs)", fmt=".0f")
    demo.metric("epochs", epochs, label="Epochs in the full run", fmt=".0f")
    demo.metric("epochs_saved_fraction", 1.0 - training.stop_epoch / epochs,
                label="Share of the epoch budget not needed", fmt=".0%")
    demo.metric("val_loss_checkpoint", scores["val_loss_checkpoint"],
                label="Validation loss, restored checkpoint", fmt=".3f")
    demo.metric("val_loss_last", scores["val_loss_last"], label="Validation loss, last epoch",
                fmt=".3f")
    demo.metric("test_loss_checkpoint", scores["test_loss_checkpoint"],
                label="Test loss, restored checkpoint", fmt=".3f")
    demo.metric("test_loss_last", scores["test_loss_last"], label="Test loss, last epoch",
                fmt=".3f")
    demo.metric("test_acc_checkpoint", scores["test_acc_checkpoint"],
                label="Test accuracy, restored checkpoint", fmt=".1%")
    demo.metric("test_acc_last", scores["test_acc_last"], label="Test accuracy, last epoch",
                fmt=".1%")
    demo.metric("train_loss_last", training.train_loss[-1], label="Training loss, last epoch", fmt=".3f")
    demo.metric("ort_max_abs_diff", ort_diff, label="Max |ONNX Runtime − NumPy| probability",
                fmt=".1e")


def claim_findings(demo, training: Training, scores: dict[str, float]) -> None:
    """Claims: the checkpoint beats the last epoch, and the curves part after the stop."""
    train_loss, val_loss, stop_epoch = training.train_loss, training.val_loss, training.stop_epoch
    demo.claim(
        "The restored best-validation checkpoint has a lower validation loss than the last epoch",
        holds=bool(scores["val_loss_checkpoint"] < scores["val_loss_last"]),
        val_loss_checkpoint=scores["val_loss_checkpoint"],
        val_loss_last=scores["val_loss_last"],
    )
    demo.claim(
        "On the held-out test set the restored checkpoint also has the lower loss",
        holds=bool(scores["test_loss_checkpoint"] < scores["test_loss_last"]),
        test_loss_checkpoint=scores["test_loss_checkpoint"],
        test_loss_last=scores["test_loss_last"],
    )
    demo.claim(
        "Training loss keeps falling after the stopping point while validation loss rises",
        holds=bool(train_loss[-1] < train_loss[stop_epoch] and val_loss[-1] > val_loss[stop_epoch]),
        train_loss_at_stop=train_loss[stop_epoch],
        train_loss_last=train_loss[-1],
        val_loss_at_stop=val_loss[stop_epoch],
        val_loss_last=val_loss[-1],
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
