"""Batch normalization: faster training at the same learning rate, a wider range of usable learning
rates, and what the ONNX BatchNormalization node does at inference (running statistics)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from demolib import datasets, nets, onnx_export, plotting

SIZES = (2, 32, 32, 32, 32, 2)  # four hidden ReLU layers
THRESHOLD = 0.1  # training loss counted as reached
EVAL_EVERY = 10  # steps between recorded training losses
LR_POWERS = np.arange(-2, 4)  # learning-rate sweep: the demo's rate times 4**k
LATE_STEPS = 50  # the sweep judges a rate by the median training loss over the last steps


@dataclass
class Inference:
    """The trained BN net in ONNX Runtime against the NumPy forward passes."""

    accuracy: float
    diff_running_all: float  # all points, against running statistics
    diff_running: float  # lopsided batch, against running statistics
    diff_batch: float  # lopsided batch, against the batch's own statistics
    diff_alone: float  # each example alone against the same example in the batch
    margin: dict[str, np.ndarray]  # logit(inner) − logit(outer) on the lopsided batch


@dataclass
class LrSweep:
    """Late training loss of one start trained at each learning rate, without and with BN: the
    median over the last LATE_STEPS steps, so that one unlucky last batch does not decide."""

    lrs: np.ndarray
    late: dict[str, np.ndarray]  # +inf where training diverged

    def usable(self, name: str) -> np.ndarray:
        """Usable rates: the late training loss is below THRESHOLD (and training did not diverge)."""
        return self.late[name] < THRESHOLD

    def width(self, name: str) -> float:
        """Largest over smallest usable rate (1 for a single one, 0 for none)."""
        lrs = self.lrs[self.usable(name)]
        return float(lrs.max() / lrs.min()) if lrs.size else 0.0


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
    sweep = sweep_learning_rates(rng, X, y, lr, steps)
    inference = check_inference(demo, trained["batchnorm"], X, y)

    draw_training_loss(demo, curves, eval_steps, lr, steps)
    draw_lr_sweep(demo, sweep, steps)
    draw_running_stats(demo, inference.margin)
    measure(demo, lr, steps, n_seeds, curves, reach, speedup, sweep, inference)
    claim_findings(demo, reach, sweep, inference)


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
            net, hist = train_one(init, name == "batchnorm", X, y, lr, steps, batch_seed, EVAL_EVERY)
            curves[name].append(np.array(hist.train_loss))
            if s == 0:
                trained[name] = net
    eval_steps = np.array(hist.step)
    return curves, trained, eval_steps


def train_one(init: nets.MLP, batchnorm: bool, X: np.ndarray, y: np.ndarray, lr: float, steps: int,
              batch_seed: int, eval_every: int = 0) -> tuple[nets.MLP, nets.History]:
    """Plain SGD from ``init`` (with BatchNorm layers added if ``batchnorm``), batches of 32."""
    net = init.copy()
    if batchnorm:
        net = replace(net, batchnorm=[nets.BatchNorm.identity(n) for n in SIZES[1:-1]])
    with np.errstate(all="ignore"):  # a too-large rate overflows: that run counts as diverged
        hist = nets.fit(net, X, y, nets.softmax_cross_entropy, nets.SGD(lr=lr), steps=steps,
                        rng=np.random.default_rng(batch_seed), batch_size=32, eval_every=eval_every)
    return net, hist


def sweep_learning_rates(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, lr: float,
                         steps: int) -> LrSweep:
    """One new start, trained at lr * 4**k with and without BN (same batches); late training loss."""
    init = nets.init_mlp(rng, SIZES, activation="relu")
    batch_seed = int(rng.integers(2**31))
    lrs = lr * 4.0**LR_POWERS
    late: dict[str, np.ndarray] = {}
    for name in ("plain", "batchnorm"):
        losses = []
        for rate in lrs:
            _, hist = train_one(init, name == "batchnorm", X, y, float(rate), steps, batch_seed, EVAL_EVERY)
            last = np.array(hist.train_loss[-(LATE_STEPS // EVAL_EVERY):])
            losses.append(float(np.median(last)) if np.all(np.isfinite(last)) else np.inf)
        late[name] = np.array(losses)
    return LrSweep(lrs, late)


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
        notice="In every pair the network with batch normalization reaches the loss line first.",
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


def draw_lr_sweep(demo, sweep: LrSweep, steps: int) -> None:
    """Figure: late training loss against the learning rate, without and with BN."""
    cap = 3.0  # where a diverged run is drawn

    @demo.figure(
        "lr-sweep",
        caption=f"Median training loss over the last {LATE_STEPS} of {steps} steps against the learning "
        f"rate, from one start with the same batches; filled markers are usable rates (below {THRESHOLD:g})",
        alt=f"Log-log chart of late training loss against {len(sweep.lrs)} learning rates, each "
        f"four times the last. Without batch normalization the loss is below {THRESHOLD:g} for "
        f"{int(sweep.usable('plain').sum())} of them, spanning a factor of {sweep.width('plain'):g}; "
        f"with it for {int(sweep.usable('batchnorm').sum())}, spanning a factor of "
        f"{sweep.width('batchnorm'):g}.",
        notice="The filled markers with batch normalization cover every rate the plain net can use, and more.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for name, color, marker, label in (("plain", "C0", "o", "without BN"), ("batchnorm", "C1", "s", "with BN")):
            loss, ok = np.minimum(sweep.late[name], cap), sweep.usable(name)
            ax.plot(sweep.lrs, loss, "-", color=color, lw=1.5, label=f"{label}: usable range ×{sweep.width(name):g}")
            ax.plot(sweep.lrs[ok], loss[ok], marker, color=color, ms=8)
            ax.plot(sweep.lrs[~ok], loss[~ok], marker, color=color, ms=8, mfc="none")
        ax.axhline(THRESHOLD, color="C7", ls="--", lw=1.2, label=f"loss {THRESHOLD:g}")
        if any(np.isinf(v).any() for v in sweep.late.values()):
            ax.axhline(cap, color="C7", ls=":", lw=1.0, label="diverged (drawn here)")
        plotting.plain_log_axis(ax.xaxis, sweep.lrs, fmt="{:g}")
        plotting.plain_log_axis(ax.yaxis, [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, cap])
        ax.set_xlabel("learning rate (SGD)")
        ax.set_ylabel(f"training loss, last {LATE_STEPS} steps")
        ax.set_title("Which learning rates train")
        ax.legend(fontsize="small", loc="upper center")


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
        notice="ONNX Runtime matches the running statistics exactly, not the batch's own.",
        check=True,
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
            reach: dict[str, np.ndarray], speedup: np.ndarray, sweep: LrSweep, inference: Inference) -> None:
    """Record the speed-up from BN and how ONNX Runtime's output compares."""
    demo.key_numbers("steps_to_threshold_plain", "steps_to_threshold_bn", "speedup_min",
                     "usable_width_plain", "usable_width_bn")
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
    demo.setting("sweep_rates", len(sweep.lrs), label="Learning rates in the sweep")
    demo.setting("sweep_lr_min", sweep.lrs[0], label="Smallest learning rate in the sweep", fmt=".3g")
    demo.setting("sweep_lr_max", sweep.lrs[-1], label="Largest learning rate in the sweep", fmt=".3g")
    demo.setting("late_steps", LATE_STEPS, label="Last steps whose median loss judges a rate")
    demo.setting("sweep_factor", sweep.lrs[1] / sweep.lrs[0], label="Factor between neighbouring rates", fmt=".3g")
    for name, tag, label in (("plain", "plain", "without BN"), ("batchnorm", "bn", "with BN")):
        usable = sweep.lrs[sweep.usable(name)]
        demo.metric(f"usable_rates_{tag}", len(usable), label=f"Usable learning rates {label}", fmt=".0f")
        demo.metric(f"usable_width_{tag}", sweep.width(name), label=f"Largest / smallest usable rate {label}",
                    fmt=".3g", unit="×")
        if usable.size:
            demo.metric(f"usable_lr_min_{tag}", usable.min(), label=f"Smallest usable rate {label}", fmt=".3g")
            demo.metric(f"usable_lr_max_{tag}", usable.max(), label=f"Largest usable rate {label}", fmt=".3g")
    demo.metric("ort_accuracy", inference.accuracy, label="Training accuracy of the BN net in ONNX Runtime",
                fmt=".1%")
    demo.metric("ort_vs_running_max_abs_diff", inference.diff_running_all,
                label="Max |ONNX Runtime − NumPy (running stats)|, all 512 points", fmt=".1e")
    demo.metric("ort_vs_batch_stats_max_abs_diff", inference.diff_batch,
                label="Max |ONNX Runtime − NumPy (batch stats)|, lopsided batch", fmt=".2g")
    demo.metric("ort_alone_vs_batch_max_abs_diff", inference.diff_alone,
                label="Max |one example alone − same example in the batch| in ONNX Runtime",
                fmt=".2g")


def claim_findings(demo, reach: dict[str, np.ndarray], sweep: LrSweep, inference: Inference) -> None:
    """Claims: BN trains faster and over a wider range of rates; ONNX inference uses the running statistics."""
    demo.claim(
        f"With the same learning rate, the BN network reaches training loss {THRESHOLD:g} in "
        "fewer steps, for every seed",
        holds=bool(np.all(reach["batchnorm"] < reach["plain"])),
        steps_bn=demo.number(", ".join(str(v) for v in reach["batchnorm"]), "steps to the loss with BN, by seed"),
        steps_plain=demo.number(", ".join(str(v) for v in reach["plain"]), "without BN, by seed"),
    )
    plain_ok, bn_ok = sweep.usable("plain"), sweep.usable("batchnorm")
    demo.claim(
        f"Batch normalization widens the range of usable learning rates (median training loss over "
        f"the last {LATE_STEPS} steps below {THRESHOLD:g}, no divergence): every rate usable without it "
        f"is usable with it, and the usable range (largest over smallest rate) is at least four times wider",
        holds=bool(plain_ok.any() and np.all(bn_ok[plain_ok])
                   and sweep.width("batchnorm") >= 4 * sweep.width("plain")),
        rates_plain=demo.number(", ".join(f"{v:.3g}" for v in sweep.lrs[plain_ok]), "usable rates without BN"),
        rates_bn=demo.number(", ".join(f"{v:.3g}" for v in sweep.lrs[bn_ok]), "with BN"),
        width_plain=demo.number(sweep.width("plain"), "usable range without BN", fmt=".3g", unit="×"),
        width_bn=demo.number(sweep.width("batchnorm"), "with BN", fmt=".3g", unit="×"),
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
