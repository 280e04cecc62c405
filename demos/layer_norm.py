"""Layer normalization: deep ReLU nets without normalization, with layer norm and with RMS norm,
started from badly scaled weights; and an example's output inside different batches under layer
norm and under batch norm.

Every hidden weight matrix of one start is multiplied by a scale (too small, right, too large),
and each scaled copy is trained without normalization, with LayerNorm and with RMSNorm (same
batches, same plain SGD). A batch-norm net trained beside them shows the other half: its output
for an example in training mode depends on the examples it shares a batch with; layer norm's never
does. The nets are exported to ONNX (``LayerNormalization``; RMS norm from elementary nodes;
``BatchNormalization``) and run in ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, normnets, plotting

DEPTH, WIDTH = 5, 16  # hidden ReLU layers, units each
SCALES = (0.25, 1.0, 4.0)  # factor on every hidden weight matrix of the He initialisation
SWEPT = ("none", "layer", "rms")
NAMES = {"none": "no normalization", "layer": "LayerNorm", "rms": "RMSNorm", "batch": "BatchNorm"}
COLORS = {"none": "C0", "layer": "C1", "rms": "C2", "batch": "C3"}
LEARNED = 0.5  # late training loss counted as "learned" (guessing is ln 2 = 0.69)
BATCH, EVAL_EVERY, LATE = 16, 25, 3  # SGD batch; loss recorded every EVAL_EVERY steps; median of the last LATE
PROBE_BATCHES, PROBE_SIZE = 40, 8  # random batches the probed example is placed in


@dataclass
class Sweep:
    labels: list[tuple[str, float, int]]  # (kind, scale, start) of every net in the stack
    late: np.ndarray  # late training loss per net (9 where training diverged)
    trained: normnets.NormNets

    def median(self, kind: str, scale: float) -> float:
        vals = [v for (k, s, _), v in zip(self.labels, self.late, strict=True) if k == kind and s == scale]
        return float(np.median(vals))

    def index(self, kind: str, scale: float = 1.0, start: int = 0) -> int:
        return self.labels.index((kind, scale, start))


def run(demo) -> None:
    opts = demo.options
    lr = float(opts.get("lr", 0.05))
    steps = int(opts.get("steps", 200))
    starts = int(opts.get("starts", 3))

    X, y = datasets.moons(demo.rng, 256, noise=0.15)
    init, labels = make_stack(demo.rng, starts)
    signal = activation_scales(init, labels, X)
    same_at_init = invariance_at_init(init, labels, X)
    sweep = train(demo.rng, init, labels, X, y, lr, steps)
    probe = batch_dependence(demo.rng, sweep, X)
    ort = export_and_compare(demo, sweep, X)

    draw_scale_sweep(demo, sweep, steps)
    draw_activation_scales(demo, signal)
    draw_batch_dependence(demo, probe)
    measure(demo, sweep, signal, probe, ort, lr, steps, starts)
    claim_findings(demo, sweep, same_at_init, probe, ort)


def make_stack(rng: np.random.Generator, starts: int) -> tuple[normnets.NormNets, list[tuple[str, float, int]]]:
    """``starts`` He initialisations; each at every scale with every swept kind, plus one
    batch-norm copy of the first start at scale 1."""
    sizes = [2] + [WIDTH] * DEPTH + [2]
    base = normnets.init_normnets(rng, sizes, ["none"] * starts)
    labels = [(k, s, i) for k in SWEPT for s in SCALES for i in range(starts)] + [("batch", 1.0, 0)]
    nets = normnets.init_normnets(rng, sizes, [k for k, _, _ in labels], init=base)
    for j, (_, scale, start) in enumerate(labels):
        for i in range(DEPTH):  # the hidden layers only; the read-out keeps its scale
            nets.weights[i][j] = base.weights[i][start] * scale
    return nets, labels


def activation_scales(nets: normnets.NormNets, labels, X: np.ndarray) -> dict[tuple[str, float], np.ndarray]:
    """Root mean square of each hidden layer's output at initialisation, first start."""
    _, cache = normnets.forward(nets, X, train=True)
    return {(k, s): np.array([np.sqrt(np.mean(a[labels.index((k, s, 0))] ** 2)) for a in cache.inputs[1:]])
            for k, s, i in labels if i == 0 and k != "batch"}


def invariance_at_init(nets: normnets.NormNets, labels, X: np.ndarray) -> dict[str, float]:
    """Largest logit difference between scales at initialisation, per kind (first start): zero
    up to rounding for the normalized nets, whose biases start at zero."""
    logits = normnets.forward(nets, X)[0]
    out = {}
    for kind in SWEPT:
        ref = logits[labels.index((kind, 1.0, 0))]
        out[kind] = max(float(np.max(np.abs(logits[labels.index((kind, s, 0))] - ref))) for s in SCALES)
    return out


def train(rng: np.random.Generator, nets: normnets.NormNets, labels, X: np.ndarray, y: np.ndarray,
          lr: float, steps: int) -> Sweep:
    """Plain SGD on the same batches for every net; late loss = median of the last LATE records."""
    n = len(X)
    order, pos, record = rng.permutation(n), 0, []
    with np.errstate(all="ignore"):  # a plain net with large weights may overflow: it diverged
        for step in range(1, steps + 1):
            if pos + BATCH > n:
                order, pos = rng.permutation(n), 0
            idx = order[pos : pos + BATCH]
            pos += BATCH
            normnets.sgd_step(nets, X[idx], y[idx], lr)
            if step % EVAL_EVERY == 0:
                record.append(normnets.cross_entropy(normnets.forward(nets, X)[0], y)[0])
    late = np.median(np.array(record[-LATE:]), axis=0)
    return Sweep(labels, np.where(np.isfinite(late), late, 9.0), nets)


@dataclass
class Probe:
    """One example's output margin (logit 1 − logit 0) inside PROBE_BATCHES random batches."""

    in_batches: dict[str, np.ndarray]  # training-mode forward, per kind
    alone: dict[str, float]  # inference-mode forward of the example alone


def batch_dependence(rng: np.random.Generator, sweep: Sweep, X: np.ndarray) -> Probe:
    """Place example 0 among random others; record its margin under layer norm and batch norm."""
    nets = {k: sweep.trained.member(sweep.index(k)) for k in ("layer", "batch")}
    margins: dict[str, list[float]] = {k: [] for k in nets}
    for _ in range(PROBE_BATCHES):
        batch = X[np.r_[0, 1 + rng.choice(len(X) - 1, PROBE_SIZE - 1, replace=False)]]
        for k, net in nets.items():
            z = normnets.forward(net, batch, train=True)[0][0, 0]
            margins[k].append(float(z[1] - z[0]))
    alone = {k: float(np.subtract(*normnets.forward(net, X[:1])[0][0, 0, ::-1])) for k, net in nets.items()}
    return Probe({k: np.array(v) for k, v in margins.items()}, alone)


@dataclass
class OrtResult:
    max_abs_diff: dict[str, float]  # ONNX Runtime against the NumPy inference forward, all points
    alone_vs_batch: float  # layer norm in ORT: example 0 alone against inside the full batch
    ort_alone: dict[str, float]  # ORT margin of example 0 alone


def export_and_compare(demo, sweep: Sweep, X: np.ndarray) -> OrtResult:
    """Export the first start at scale 1 with each normalization; compare ORT with NumPy."""
    diffs, alone, single = {}, {}, 0.0
    for kind in ("layer", "rms", "batch"):
        k = sweep.index(kind)
        sess = demo.onnx(f"mlp_{kind}norm", demo.make_model(
            normnets.export_normnet(sweep.trained, k, name=f"mlp_{kind}norm")))
        z_all = sess.run(None, {"x": X.astype(np.float32)})[0].astype(np.float64)
        z_np = normnets.forward(sweep.trained.member(k), X)[0][0]
        diffs[kind] = float(np.max(np.abs(z_all - z_np)))
        z_one = sess.run(None, {"x": X[:1].astype(np.float32)})[0].astype(np.float64)
        alone[kind] = float(z_one[0, 1] - z_one[0, 0])
        if kind == "layer":
            single = float(np.max(np.abs(z_one[0] - z_all[0])))
    return OrtResult(diffs, single, alone)


def draw_scale_sweep(demo, sweep: Sweep, steps: int) -> None:
    """Figure: late training loss against the initial weight scale, per kind."""
    med = {k: [sweep.median(k, s) for s in SCALES] for k in SWEPT}
    lo, hi = SCALES[0], SCALES[-1]
    text = "; ".join(f"{NAMES[k]} {', '.join(f'{v:.2f}' for v in med[k])}" for k in SWEPT)

    @demo.figure(
        "scale-sweep",
        caption=f"Training loss after {steps} SGD steps against the scale of the initial hidden weights "
        f"(×{lo:.2g}, ×1, ×{hi:g}), without normalization, with LayerNorm and with RMSNorm; small "
        f"markers are starts, lines join medians",
        alt=f"Chart of late training loss against initial weight scale on a log axis. Median losses at "
        f"the three scales: {text}. Guessing gives {np.log(2):.2f}.",
        notice="Without normalization only the middle scale learns; with either norm every scale does.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for dx, kind in zip((0.94, 1.0, 1.06), SWEPT, strict=True):
            pts = [(s * dx, min(v, 1.0)) for (k, s, _), v in zip(sweep.labels, sweep.late, strict=True) if k == kind]
            ax.plot(*zip(*pts, strict=True), "o", color=COLORS[kind], ms=4, alpha=0.5)
            ax.plot(np.array(SCALES) * dx, np.minimum(med[kind], 1.0), "-", marker="s", color=COLORS[kind],
                    lw=2, ms=7, label=NAMES[kind])
        ax.axhline(np.log(2), color="C7", ls=":", lw=1.0, label="guessing (ln 2)")
        ax.axhline(LEARNED, color="C7", ls="--", lw=1.0, label=f"learned (below {LEARNED:g})")
        plotting.plain_log_axis(ax.xaxis, SCALES, fmt=lambda v: f"×{v:.2g}")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("scale of the initial hidden weights")
        ax.set_ylabel("training loss (late median)")
        ax.set_title("Which starting scales train")
        ax.legend(loc="upper center", fontsize="small", ncols=2)


def draw_activation_scales(demo, signal: dict[tuple[str, float], np.ndarray]) -> None:
    """Figure: RMS of each hidden layer's output at initialisation."""
    ends = {s: signal["none", s][-1] for s in SCALES}

    @demo.figure(
        "activation-scale",
        caption="Root mean square of each hidden layer's output at initialization, for the three weight "
        "scales without normalization, and with LayerNorm (the same at every scale)",
        alt=f"Log-scale chart of activation size against layer. Without normalization the size at the "
        f"last hidden layer is {ends[SCALES[0]]:.2g}, {ends[1.0]:.2g} and {ends[SCALES[-1]]:.3g} for "
        f"the three scales; with LayerNorm it is {signal['layer', 1.0][-1]:.2f} at every scale.",
        notice="Without normalization the signal shrinks or grows layer by layer; LayerNorm resets it.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        layers = np.arange(1, DEPTH + 1)
        for c, s in enumerate(SCALES):
            ax.plot(layers, signal["none", s], "-o", color=f"C{c + 4}", label=f"no normalization, ×{s:g}")
        ax.plot(layers, signal["layer", 1.0], "--s", color=COLORS["layer"], lw=2, label="LayerNorm, every scale")
        plotting.plain_log_axis(ax.yaxis, [1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 1000])
        ax.set_xticks(layers)
        ax.set_xlabel("hidden layer")
        ax.set_ylabel("RMS of the layer's output")
        ax.set_title("The signal through depth at initialization")
        ax.legend(fontsize="small", loc="lower left")


def draw_batch_dependence(demo, probe: Probe) -> None:
    """Figure: one example's output in many batches, batch norm against layer norm."""
    spread = {k: float(np.ptp(v)) for k, v in probe.in_batches.items()}

    @demo.figure(
        "batch-dependence",
        caption=f"The same training example placed in {PROBE_BATCHES} random batches of {PROBE_SIZE}: its "
        f"output margin in training mode under batch norm and under layer norm, and alone at inference",
        alt=f"Strip chart. Under batch norm the example's margin spreads over a range of {spread['batch']:.2f} "
        f"depending on the other examples in its batch; under layer norm all {PROBE_BATCHES} values coincide "
        f"(range {spread['layer']:.1g}). Diamonds mark the example alone at inference.",
        notice="Batch norm's answer for one example depends on the rest of its batch; layer norm's never does.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        jitter = np.linspace(-0.15, 0.15, PROBE_BATCHES)
        for row, kind in enumerate(("batch", "layer")):
            ax.plot(probe.in_batches[kind], row + jitter, "o", color=COLORS[kind], ms=5, alpha=0.7,
                    label=f"{NAMES[kind]}, training mode, in a batch")
            ax.plot(probe.alone[kind], row, "D", color="C7", ms=9, mfc="none", mew=2,
                    label="alone, inference" if row == 0 else None)
        ax.set_yticks([0, 1], [NAMES["batch"], NAMES["layer"]])
        ax.set_ylim(-0.6, 1.9)
        ax.set_xlabel("output margin: logit 1 − logit 0")
        ax.set_title("One example, many batches")
        ax.legend(fontsize="small", loc="upper left")


def measure(demo, sweep: Sweep, signal, probe: Probe, ort: OrtResult, lr: float, steps: int, starts: int) -> None:
    """Record the setup, the sweep's medians, the activation scales and the batch probe."""
    demo.key_numbers("loss_none_small", "loss_none_large", "worst_loss_layer", "worst_loss_rms",
                     "batchnorm_spread")
    demo.setting("hidden_layers", DEPTH, label="Hidden ReLU layers")
    demo.setting("hidden_units", WIDTH, label="Units per hidden layer")
    demo.setting("scale_small", SCALES[0], label="Smallest weight scale", fmt=".2g")
    demo.setting("scale_large", SCALES[-1], label="Largest weight scale")
    demo.setting("starts", starts, label="Starts per scale and kind")
    demo.setting("steps", steps, label="SGD steps")
    demo.setting("batch_size", BATCH, label="Examples per SGD batch")
    demo.setting("learning_rate", lr, label="Learning rate")
    demo.setting("learned", LEARNED, label="Training loss counted as learned")
    demo.setting("probe_batches", PROBE_BATCHES, label="Random batches the probed example is placed in")
    demo.setting("probe_size", PROBE_SIZE, label="Examples per probe batch")
    for tag, scale in (("small", SCALES[0]), ("mid", 1.0), ("large", SCALES[-1])):
        demo.metric(f"loss_none_{tag}", sweep.median("none", scale),
                    label=f"Late loss without normalization, scale ×{scale:.2g} (median)", fmt=".2f")
    for kind in ("layer", "rms"):
        demo.metric(f"worst_loss_{kind}", max(sweep.median(kind, s) for s in SCALES),
                    label=f"Late loss with {NAMES[kind]}, worst scale (median)", fmt=".2f")
        demo.metric(f"best_loss_{kind}", min(sweep.median(kind, s) for s in SCALES),
                    label=f"Late loss with {NAMES[kind]}, best scale (median)", fmt=".2f")
    for tag, scale, fmt in (("small", SCALES[0], ".2g"), ("large", SCALES[-1], ".3g")):
        demo.metric(f"act_none_{tag}", signal["none", scale][-1], fmt=fmt,
                    label=f"RMS of the last hidden layer at init, no normalization, scale ×{scale:g}")
    demo.metric("batchnorm_spread", float(np.ptp(probe.in_batches["batch"])),
                label="Range of one example's margin across batches, batch norm", fmt=".2f")
    demo.metric("layernorm_spread", float(np.ptp(probe.in_batches["layer"])),
                label="Range of one example's margin across batches, layer norm", fmt=".1g")
    demo.metric("ort_max_abs_diff", max(ort.max_abs_diff.values()),
                label="Max |ONNX Runtime − NumPy| logit, three exported nets", fmt=".1e")


def claim_findings(demo, sweep: Sweep, same_at_init: dict[str, float], probe: Probe, ort: OrtResult) -> None:
    """Findings: the plain net needs the right scale, the normalized nets do not; checks: invariance, batch, ORT."""
    none = [sweep.median("none", s) for s in SCALES]
    demo.claim(
        f"Without normalization the initial weight scale decides: at the middle scale the net learns "
        f"(loss below {LEARNED:g}), at the smallest and the largest scale it stays above {LEARNED:g}",
        holds=bool(none[1] < LEARNED < min(none[0], none[2])),
        loss_none_small=none[0], loss_none_mid=none[1], loss_none_large=none[2],
    )
    demo.claim(
        f"With LayerNorm, and with RMSNorm, the net learns from every scale: the median late loss "
        f"is below {LEARNED:g} at each of them",
        holds=bool(all(sweep.median(k, s) < LEARNED for k in ("layer", "rms") for s in SCALES)),
        worst_loss_layer=max(sweep.median("layer", s) for s in SCALES),
        worst_loss_rms=max(sweep.median("rms", s) for s in SCALES),
    )
    slower = {k: sweep.median(k, SCALES[-1]) > sweep.median(k, 1.0) for k in ("layer", "rms")}
    demo.claim(
        "The scale does not vanish from training: with either norm the nets started at the largest "
        "scale end with a higher median loss than those started at scale 1 (large weights act like "
        "a smaller learning rate)",
        holds=bool(all(slower.values())),
        loss_layer_mid=demo.number(sweep.median("layer", 1.0), "LayerNorm, scale ×1", fmt=".2f"),
        loss_layer_large=demo.number(sweep.median("layer", SCALES[-1]), f"LayerNorm, scale ×{SCALES[-1]:g}", fmt=".2f"),
        loss_rms_mid=demo.number(sweep.median("rms", 1.0), "RMSNorm, scale ×1", fmt=".2f"),
        loss_rms_large=demo.number(sweep.median("rms", SCALES[-1]), f"RMSNorm, scale ×{SCALES[-1]:g}", fmt=".2f"),
    )
    demo.check(
        "At initialization (zero biases) the LayerNorm and RMSNorm nets compute the same function at "
        "every weight scale, up to the effect of ε (largest logit difference below 0.01); the plain "
        "net's logits differ by more than 1",
        holds=bool(max(same_at_init["layer"], same_at_init["rms"]) < 1e-2 < 1.0 < same_at_init["none"]),
        max_diff_layer=same_at_init["layer"], max_diff_rms=same_at_init["rms"], max_diff_none=same_at_init["none"],
    )
    demo.check(
        "In training mode an example's output does not depend on the rest of its batch under layer norm, "
        "and does under batch norm",
        holds=bool(np.ptp(probe.in_batches["layer"]) < 1e-9 < 1e-3 < np.ptp(probe.in_batches["batch"])),
        range_layer=float(np.ptp(probe.in_batches["layer"])), range_batch=float(np.ptp(probe.in_batches["batch"])),
    )
    demo.check(
        "ONNX Runtime (LayerNormalization node; RMS norm from elementary nodes; BatchNormalization "
        "with running statistics) matches the NumPy inference forward pass, and the layer-norm net "
        "gives an example the same output alone as inside the full batch",
        holds=bool(max(ort.max_abs_diff.values()) < 1e-4 and ort.alone_vs_batch < 1e-5),
        max_abs_diff=max(ort.max_abs_diff.values()), alone_vs_batch=ort.alone_vs_batch,
    )
