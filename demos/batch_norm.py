"""Batch normalization: faster training at the same learning rate, and what the ONNX
BatchNormalization node does at inference (running statistics)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from demolib import datasets, nets, onnx_export, plotting

SIZES = (2, 32, 32, 32, 32, 2)  # four hidden ReLU layers
THRESHOLD = 0.1  # training loss counted as reached
EVAL_EVERY = 10  # steps between recorded training losses


@dataclass
class Inference:
    """The trained BN net in ONNX Runtime against the NumPy forward passes."""

    accuracy: float
    diff_running_all: float  # all points, against running statistics
    diff_running: float  # lopsided batch, against running statistics
    diff_batch: float  # lopsided batch, against the batch's own statistics
    diff_alone: float  # each example alone against the same example in the batch
    margin: dict[str, np.ndarray]  # logit(inner) − logit(outer) on the lopsided batch


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    lr = float(opts.get("lr", 0.05))
    steps = int(opts.get("steps", 300))
    n_seeds = int(opts.get("seeds", 3))

    # Two noisy concentric circles, 512 points; plain SGD, batches of 32.
    X, y = datasets.circles(rng, 512, noise=0.08)
    curves, trained, eval_steps = train_with_and_without(rng, X, y, lr, steps, n_seeds)
    reach = {name: np.array([steps_to(c, eval_steps, steps) for c in cs]) for name, cs in curves.items()}
    speedup = reach["plain"] / reach["batchnorm"]
    inference = check_inference(demo, trained["batchnorm"], X, y)

    draw_training_loss(demo, curves, eval_steps, lr, steps)
    draw_running_stats(demo, inference.margin)
    measure(demo, lr, steps, n_seeds, curves, reach, speedup, inference)
    claim_findings(demo, reach, inference)


def train_with_and_without(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, lr: float, steps: int,
                           n_seeds: int):
    """Train each seed's net twice, without and with BatchNorm; return loss curves and first-seed nets."""
    # For each seed: one initial net, one batch order; train it with and without BatchNorm
    # (same weights, same batches, same learning rate).
    curves: dict[str, list[np.ndarray]] = {"plain": [], "batchnorm": []}
    trained: dict[str, nets.MLP] = {}
    for s in range(n_seeds):
        init = nets.init_mlp(rng, SIZES, activation="relu")
        batch_seed = int(rng.integers(2**31))
        for name in curves:
            net = init.copy()
            if name == "batchnorm":
                net = replace(net, batchnorm=[nets.BatchNorm.identity(n) for n in SIZES[1:-1]])
            hist = nets.fit(net, X, y, nets.softmax_cross_entropy, nets.SGD(lr=lr), steps=steps,
                            rng=np.random.default_rng(batch_seed), batch_size=32,
                            eval_every=EVAL_EVERY)
            curves[name].append(np.array(hist.train_loss))
            if s == 0:
                trained[name] = net
    eval_steps = np.array(hist.step)
    return curves, trained, eval_steps


def steps_to(curve: np.ndarray, eval_steps: np.ndarray, steps: int) -> int:
    """First evaluated step with training loss below the threshold (steps + 1 if never)."""
    below = np.flatnonzero(curve < THRESHOLD)
    return int(eval_steps[below[0]]) if below.size else steps + 1


def check_inference(demo, bn_net: nets.MLP, X: np.ndarray, y: np.ndarray) -> Inference:
    """Export the BN net (BatchNormalization nodes in inference mode) and compare it with NumPy."""
    sess = demo.onnx("mlp_batchnorm", demo.make_model(
        onnx_export.export_mlp(bn_net, name="mlp_batchnorm")))
    ort_all = logits(sess, X)
    diff_running_all = float(np.max(np.abs(ort_all - nets.predict(bn_net, X))))
    acc_ort = float(np.mean(ort_all.argmax(axis=1) == y))
    # A lopsided batch: 24 points of the inner circle only. Its own batch statistics are far from
    # the running statistics, so the two NumPy forwards disagree; ONNX Runtime follows one of them.
    skewed = X[y == 1][:24]
    ort_skewed = logits(sess, skewed)
    np_running = nets.predict(bn_net, skewed)
    np_batch = nets.forward(bn_net, skewed, train=True)[0]
    diff_running = float(np.max(np.abs(ort_skewed - np_running)))
    diff_batch = float(np.max(np.abs(ort_skewed - np_batch)))
    one_by_one = np.vstack([logits(sess, skewed[i : i + 1]) for i in range(len(skewed))])
    diff_alone = float(np.max(np.abs(one_by_one - ort_skewed)))
    margin = {  # class-1 logit minus class-0 logit: > 0 means "inner circle"
        "ort": ort_skewed[:, 1] - ort_skewed[:, 0],
        "running": np_running[:, 1] - np_running[:, 0],
        "batch": np_batch[:, 1] - np_batch[:, 0],
    }
    return Inference(acc_ort, diff_running_all, diff_running, diff_batch, diff_alone, margin)


def logits(sess, inputs: np.ndarray) -> np.ndarray:
    """The ONNX model's logits, in float64."""
    return sess.run(None, {"x": inputs.astype(np.float32)})[0].astype(np.float64)


def draw_training_loss(demo, curves: dict[str, list[np.ndarray]], eval_steps: np.ndarray, lr: float,
                       steps: int) -> None:
    """Figure: training loss with and without BN, one line per seed."""

    @demo.figure(
        "training-loss",
        caption=f"Training loss with and without batch normalization: same initial weights, same "
        f"batches, SGD with learning rate {lr:g}; one line per seed",
        alt=f"Log-scale chart of training cross-entropy against step, one pair of lines for each of "
        f"{len(curves['plain'])} seeds. The network with batch normalization reaches the {THRESHOLD:g} "
        f"line before the plain network in every pair.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for name, color, label in (("plain", "C0", "without BN"), ("batchnorm", "C1", "with BN")):
            for k, curve in enumerate(curves[name]):
                ax.plot(eval_steps, curve, color=color, lw=1.8 if k == 0 else 1.0,
                        alpha=1.0 if k == 0 else 0.6, label=label if k == 0 else None)
        ax.axhline(THRESHOLD, color="C7", ls="--", lw=1.2, label=f"loss {THRESHOLD:g}")
        plotting.plain_log_axis(ax.yaxis, [0.003, 0.01, 0.03, 0.1, 0.3, 1.0])
        ax.set_xlabel("training step")
        ax.set_ylabel("training loss (cross-entropy)")
        ax.set_xlim(0, steps)
        ax.set_title(f"Same learning rate ({lr:g}): BN gets there sooner")
        ax.legend(loc="upper right")


def draw_running_stats(demo, margin: dict[str, np.ndarray]) -> None:
    """Figure: ONNX Runtime's output against NumPy with running and with batch statistics."""

    @demo.figure(
        "onnx-running-stats",
        caption="ONNX Runtime's output for a batch of 24 inner-circle points against the NumPy "
        "forward pass with running statistics and with the batch's own statistics",
        alt="Scatter with ONNX Runtime's output on the horizontal axis. Points computed with the "
        "running statistics lie exactly on the diagonal; points computed with the batch's own "
        "statistics lie far off it, several of them on the wrong side of zero.",
        size=(5.6, 4.4),
    )
    def _(fig) -> None:
        ax = fig.subplots()
        lo = float(min(v.min() for v in margin.values())) - 1
        hi = float(max(v.max() for v in margin.values())) + 1
        ax.plot([lo, hi], [lo, hi], color="C7", lw=1, label="y = x")
        ax.axhline(0.0, color="C7", lw=0.8, ls=":")
        ax.plot(margin["ort"], margin["batch"], "s", color="C3", ms=6, alpha=0.8,
                label="NumPy, batch statistics")
        ax.plot(margin["ort"], margin["running"], "o", color="C0", ms=6,
                label="NumPy, running statistics")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel("ONNX Runtime: logit(inner) − logit(outer)")
        ax.set_ylabel("NumPy: same quantity")
        ax.set_title("ONNX BatchNormalization = running stats")
        ax.legend(loc="upper left")


def measure(demo, lr: float, steps: int, n_seeds: int, curves: dict[str, list[np.ndarray]],
            reach: dict[str, np.ndarray], speedup: np.ndarray, inference: Inference) -> None:
    """Record the speed-up from BN and how ONNX Runtime's output compares."""
    demo.setting("hidden_layers", len(SIZES) - 2, label="Hidden ReLU layers")
    demo.setting("hidden_units", SIZES[1], label="Units per hidden layer")
    demo.setting("loss_threshold", THRESHOLD, label="Training loss counted as reached")
    demo.metric("learning_rate", lr, label="Learning rate (both nets)", fmt="g")
    demo.metric("steps_to_threshold_bn", float(np.median(reach["batchnorm"])),
                label=f"Steps to training loss {THRESHOLD:g} with BN (median over seeds)",
                fmt=".0f")
    demo.metric("steps_to_threshold_plain", float(np.median(reach["plain"])),
                label=f"Steps to training loss {THRESHOLD:g} without BN (median over seeds)",
                fmt=".0f")
    demo.metric("speedup_min", float(speedup.min()), label="Speed-up, worst seed", fmt=".1f",
                unit="×")
    demo.metric("speedup_median", float(np.median(speedup)), label="Speed-up, median seed",
                fmt=".1f", unit="×")
    demo.metric("seeds", n_seeds, label="Seeds", fmt=".0f")
    demo.metric("final_loss_bn", float(curves["batchnorm"][0][-1]),
                label=f"Training loss after {steps} steps with BN (first seed)", fmt=".3f")
    demo.metric("final_loss_plain", float(curves["plain"][0][-1]),
                label=f"Training loss after {steps} steps without BN (first seed)", fmt=".3f")
    demo.metric("ort_accuracy", inference.accuracy, label="Training accuracy of the BN net in ONNX Runtime",
                fmt=".1%")
    demo.metric("ort_vs_running_max_abs_diff", inference.diff_running_all,
                label="Max |ONNX Runtime − NumPy (running stats)|, all 512 points", fmt=".1e")
    demo.metric("ort_vs_batch_stats_max_abs_diff", inference.diff_batch,
                label="Max |ONNX Runtime − NumPy (batch stats)|, lopsided batch", fmt=".2g")
    demo.metric("ort_alone_vs_batch_max_abs_diff", inference.diff_alone,
                label="Max |one example alone − same example in the batch| in ONNX Runtime",
                fmt=".2g")


def claim_findings(demo, reach: dict[str, np.ndarray], inference: Inference) -> None:
    """Claims: BN trains faster, and ONNX inference uses the running statistics."""
    demo.claim(
        f"With the same learning rate, the BN network reaches training loss {THRESHOLD:g} in "
        "fewer steps, for every seed",
        holds=bool(np.all(reach["batchnorm"] < reach["plain"])),
        steps_bn=", ".join(str(v) for v in reach["batchnorm"]),
        steps_plain=", ".join(str(v) for v in reach["plain"]),
    )
    demo.check(
        "At inference the ONNX BatchNormalization node uses the running statistics: ONNX Runtime "
        "matches the NumPy running-statistics forward pass",
        holds=bool(inference.diff_running_all < 1e-4 and inference.diff_running < 1e-4),
        max_abs_diff_all=inference.diff_running_all,
        max_abs_diff_lopsided_batch=inference.diff_running,
    )
    demo.check(
        "It does not use the batch's own statistics: on a lopsided batch those give very "
        "different outputs, and an example's output does not depend on the rest of its batch",
        holds=bool(inference.diff_batch > 1.0 and inference.diff_alone < 1e-5),
        max_abs_diff_batch_stats=inference.diff_batch,
        max_abs_diff_alone_vs_batch=inference.diff_alone,
    )
