"""Label smoothing and calibration: one over-parameterised network trained twice on overlapping
classes, with hard and with smoothed targets; reliability diagrams and expected calibration error.

Both nets start from the same weights and see the same batches of data; ONNX Runtime scores them
on a large validation set. Without smoothing the net grows its logit gaps far past what the data
support and becomes overconfident; with smoothing the gaps stop near the value where the smoothed
targets are fitted exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, nets, onnx_export

CENTERS = np.array([[0.0, 1.2], [-1.04, -0.6], [1.04, -0.6]])  # three overlapping classes
K = len(CENTERS)
STD = 0.8
N_TRAIN, N_VAL = 150, 1500
HIDDEN = 64
STEPS = 300
LR = 0.01
BINS = 10  # equal-width confidence bins on [1/K, 1]
GAP_PCT = 90  # the percentile of the training logit gaps the findings use
NAMES = {"hard": "hard targets", "smooth": "label smoothing"}


@dataclass
class Calibration:
    """One net's calibration on the validation set (from ONNX Runtime)."""

    accuracy: float
    confidence: float  # mean largest probability
    ece: float
    nll: float
    bin_acc: np.ndarray  # (BINS,) accuracy per bin (NaN where empty)
    bin_conf: np.ndarray
    bin_count: np.ndarray
    gaps: np.ndarray  # top-two logit gap of every training point


def run(demo) -> None:
    eps = float(demo.options.get("epsilon", 0.1))
    data = make_data(demo.rng)
    trained = train(demo.rng, data, eps)
    sess = export(demo, trained)
    cal, ort_diff = calibrate(sess, trained, data)
    gap_star = exact_fit_gap(eps)
    identity_err = smoothed_loss_identity(demo.rng, eps)

    draw_reliability(demo, cal, eps)
    draw_logit_gaps(demo, cal, gap_star, eps)
    measure(demo, cal, gap_star, eps, ort_diff)
    claim_findings(demo, cal, gap_star, ort_diff, identity_err)


def make_data(rng):
    """Three overlapping Gaussian classes: N_TRAIN training and N_VAL validation points."""
    X, y = datasets.blobs(rng, N_TRAIN + N_VAL, centers=CENTERS, std=STD)
    return datasets.split(rng, X, y, val=N_VAL / len(y), test=0.0)


def train(rng, data, eps: float) -> dict[str, nets.MLP]:
    """A 2-64-64-3 ReLU net trained from one start twice: hard targets, smoothed targets."""
    init = nets.init_mlp(rng, [2, HIDDEN, HIDDEN, K], activation="relu")
    trained = {}
    for name, e in (("hard", 0.0), ("smooth", eps)):
        net = init.copy()
        nets.fit(net, data.X_train, data.y_train, smoothed_cross_entropy(e), nets.Adam(lr=LR), steps=STEPS)
        trained[name] = net
    return trained


def smoothed_cross_entropy(eps: float):
    """Cross-entropy against targets (1 − ε) one-hot + ε/K, and its gradient (p − q)/n."""

    def loss(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        q = _targets(labels, eps)
        logp = _log_softmax(logits)
        return float(-(q * logp).sum(axis=1).mean()), (np.exp(logp) - q) / len(labels)

    return loss


def export(demo, trained: dict[str, nets.MLP]):
    """Both nets side by side in one ONNX graph with Softmax heads."""
    graph = onnx_export.export_mlps(list(trained.values()), head="softmax", name="hard_and_smoothed")
    return demo.onnx("hard_and_smoothed", demo.make_model(graph))


def calibrate(sess, trained: dict[str, nets.MLP], data) -> tuple[dict[str, Calibration], float]:
    """Reliability bins, ECE, NLL and accuracy of both nets from ORT's probabilities."""
    probs = sess.run(None, {"x": data.X_val.astype(np.float32)})[0].astype(np.float64).reshape(-1, len(trained), K)
    y = data.y_val
    edges = np.linspace(1.0 / K, 1.0, BINS + 1)
    out, ort_diff = {}, 0.0
    for j, (name, net) in enumerate(trained.items()):
        p = probs[:, j]
        ort_diff = max(ort_diff, float(np.max(np.abs(p - nets.softmax(nets.predict(net, data.X_val))))))
        conf, correct = p.max(axis=1), p.argmax(axis=1) == y
        idx = np.clip(np.digitize(conf, edges) - 1, 0, BINS - 1)
        count = np.bincount(idx, minlength=BINS)
        with np.errstate(invalid="ignore"):
            b_acc = np.bincount(idx, correct, BINS) / count
            b_conf = np.bincount(idx, conf, BINS) / count
        filled = count > 0
        ece = float(np.sum(count[filled] / len(y) * np.abs(b_acc[filled] - b_conf[filled])))
        # the cross-entropy from the logits: a float32 probability of a confident mistake rounds to 0
        nll = float(-np.mean(_log_softmax(nets.predict(net, data.X_val))[np.arange(len(y)), y]))
        z = np.sort(nets.predict(net, data.X_train), axis=1)
        out[name] = Calibration(float(correct.mean()), float(conf.mean()), ece, nll, b_acc, b_conf, count,
                                z[:, -1] - z[:, -2])
    return out, ort_diff


def exact_fit_gap(eps: float) -> float:
    """The logit gap at which softmax reproduces the smoothed targets exactly: log(q_true / q_other)."""
    return float(np.log((1.0 - eps + eps / K) / (eps / K)))


def smoothed_loss_identity(rng, eps: float) -> float:
    """Cross-entropy against smoothed targets = (1 − ε) · hard cross-entropy + ε · mean over classes
    of −log p_k: largest difference on random logits."""
    z = 3.0 * rng.standard_normal((200, K))
    labels = rng.integers(0, K, 200)
    logp = _log_softmax(z)
    smoothed = -(_targets(labels, eps) * logp).sum(axis=1)
    split = (1 - eps) * -logp[np.arange(200), labels] + eps * -logp.mean(axis=1)
    return float(np.max(np.abs(smoothed - split)))


def draw_reliability(demo, cal: dict[str, Calibration], eps: float) -> None:
    """Figure: reliability diagrams of both nets."""
    edges = np.linspace(1.0 / K, 1.0, BINS + 1)
    width = edges[1] - edges[0]
    h, s = cal["hard"], cal["smooth"]

    @demo.figure(
        "reliability",
        caption=f"Reliability diagrams on {N_VAL} validation points: accuracy within each confidence bin "
        f"(bars) and the bin's mean confidence (red dashes), hard targets and label smoothing ε = {eps:g}",
        alt=f"Two bar charts of accuracy per confidence bin. With hard targets the bars fall below the "
        f"diagonal: mean confidence {h.confidence:.0%} against "
        f"an accuracy of {h.accuracy:.0%}, expected calibration error {h.ece:.3f}. With label smoothing "
        f"the bars follow the diagonal more closely: confidence {s.confidence:.0%}, accuracy "
        f"{s.accuracy:.0%}, error {s.ece:.3f}.",
        size=(6.4, 3.4),
        notice="Bars below their red dash mean overconfidence; smoothing brings them closer to the diagonal.",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, 2, sharey=True)
        for ax, (name, c) in zip(axes, cal.items(), strict=True):
            filled = c.bin_count > 0
            centers = edges[:-1] + width / 2
            ax.bar(centers[filled], c.bin_acc[filled], width=width * 0.9, color="C0", label="accuracy")
            ax.plot(centers[filled], c.bin_conf[filled], "_", ms=14, mew=2.5, color="C3",
                    label="mean confidence")
            ax.plot([1.0 / K, 1.0], [1.0 / K, 1.0], "--", color="C7", label="perfect calibration")
            ax.set_xlim(1.0 / K, 1.0)
            ax.set_ylim(0.0, 1.0)
            ax.set_xlabel("confidence (largest probability)")
            ax.set_title(f"{NAMES[name]}\nECE {c.ece:.3f}, accuracy {c.accuracy:.0%}", fontsize="medium")
        axes[0].set_ylabel("accuracy in bin")
        axes[0].legend(fontsize="x-small", loc="upper left")


def draw_logit_gaps(demo, cal: dict[str, Calibration], gap_star: float, eps: float) -> None:
    """Figure: histograms of the training points' top-two logit gaps, log axis."""
    p90 = {n: float(np.percentile(c.gaps, GAP_PCT)) for n, c in cal.items()}

    @demo.figure(
        "logit-gaps",
        caption="Gap between the largest and second-largest logit on the training points (log axis); "
        f"dashed: the gap log(q_true / q_other) = {gap_star:.2f} that fits the smoothed targets exactly",
        alt=f"Two histograms. With label smoothing the gaps pile up around the dashed line at "
        f"{gap_star:.2f}, with 90% of them below {p90['smooth']:.1f}. With hard targets they spread far to "
        f"the right, with a tenth of them above {p90['hard']:.0f}.",
        notice="Hard targets keep pushing the true logit further ahead; smoothed targets stop it near the dashed line.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        bins = np.geomspace(0.01, max(c.gaps.max() for c in cal.values()) * 1.1, 40)
        for c, (name, cl) in enumerate(cal.items()):
            ax.hist(np.clip(cl.gaps, 0.01, None), bins=bins, color=f"C{c}", alpha=0.6, label=NAMES[name])
        ax.axvline(gap_star, ls="--", color="C7", label=f"exact fit of smoothed targets (ε = {eps:g})")
        ax.set_xscale("log")
        ax.set_xlabel("top-two logit gap")
        ax.set_ylabel("training points")
        ax.legend(fontsize="small", loc="upper left")


def measure(demo, cal: dict[str, Calibration], gap_star: float, eps: float, ort_diff: float) -> None:
    """Record the setup and what was measured."""
    demo.key_numbers("ece_hard", "ece_smooth", "overconfidence_hard", "accuracy_hard", "accuracy_smooth")
    demo.setting("epsilon", eps, label="Smoothing ε")
    demo.setting("n_classes", K, label="Classes")
    demo.setting("n_train", N_TRAIN, label="Training points")
    demo.setting("n_val", N_VAL, label="Validation points")
    demo.setting("hidden_units", HIDDEN, label="Units in each of the two hidden layers")
    demo.setting("steps", STEPS, label="Adam steps (full batch)")
    demo.setting("bins", BINS, label="Confidence bins of the reliability diagram")
    demo.setting("gap_percentile", GAP_PCT, label="Percentile of the training logit gaps quoted", fmt=".0f")
    for name, c in cal.items():
        what = NAMES[name]
        demo.metric(f"ece_{name}", c.ece, label=f"Expected calibration error, {what}", fmt=".3f")
        demo.metric(f"accuracy_{name}", c.accuracy, label=f"Validation accuracy, {what}", fmt=".1%")
        demo.metric(f"confidence_{name}", c.confidence, label=f"Mean confidence, {what}", fmt=".1%")
        demo.metric(f"overconfidence_{name}", c.confidence - c.accuracy,
                    label=f"Mean confidence − accuracy, {what}", fmt="+.1%")
        demo.metric(f"nll_{name}", c.nll, label=f"Validation cross-entropy, {what}", fmt=".3f")
        demo.metric(f"gap_p90_{name}", float(np.percentile(c.gaps, GAP_PCT)),
                    label=f"90th percentile of the training logit gap, {what}", fmt=".3g")
    demo.metric("gap_exact_fit", gap_star, label="Logit gap that fits the smoothed targets exactly", fmt=".3g")
    demo.metric("ece_ratio", cal["smooth"].ece / cal["hard"].ece, label="ECE with smoothing / ECE without", fmt=".2f")
    demo.metric("ort_max_diff", ort_diff, label="Max |ORT − NumPy| probability", fmt=".1e")


def claim_findings(demo, cal: dict[str, Calibration], gap_star: float, ort_diff: float, identity_err: float) -> None:
    """Findings: hard targets overconfident, smoothing calibrates better, caps the logit gaps, keeps
    accuracy. Checks: ORT = NumPy, the smoothed-loss identity, bin counts."""
    h, s = cal["hard"], cal["smooth"]
    p90 = {n: float(np.percentile(c.gaps, GAP_PCT)) for n, c in cal.items()}
    demo.claim(
        "Trained on hard targets, the network is overconfident: its mean confidence on validation points "
        "exceeds its accuracy by more than 5 points",
        holds=bool(h.confidence - h.accuracy > 0.05),
        overconfidence_hard=h.confidence - h.accuracy, confidence_hard=h.confidence, accuracy_hard=h.accuracy,
    )
    demo.claim(
        "Label smoothing cuts the expected calibration error by at least a quarter",
        holds=bool(s.ece < 0.75 * h.ece),
        ece_hard=h.ece, ece_smooth=s.ece, ece_ratio=s.ece / h.ece,
    )
    demo.claim(
        "Smoothing caps the logits: 90% of the training points have a top-two logit gap below 1.5 times "
        "the gap that fits the smoothed targets exactly, while with hard targets a tenth of them exceed "
        "3 times it",
        holds=bool(p90["smooth"] < 1.5 * gap_star and p90["hard"] > 3 * gap_star),
        gap_p90_smooth=p90["smooth"], gap_p90_hard=p90["hard"], gap_exact_fit=gap_star,
    )
    demo.claim(
        "… at little cost in accuracy: the two validation accuracies are within 5 points of each other",
        holds=bool(abs(s.accuracy - h.accuracy) < 0.05),
        accuracy_hard=h.accuracy, accuracy_smooth=s.accuracy,
    )
    demo.check("ONNX Runtime's probabilities equal NumPy's for both nets (within 1e-5)",
               holds=bool(ort_diff < 1e-5), ort_max_diff=ort_diff)
    demo.check("Cross-entropy against smoothed targets equals (1 − ε) × the hard cross-entropy + ε × the mean "
               "of −log p over the classes", holds=bool(identity_err < 1e-12), max_error=identity_err)
    demo.check(f"The reliability bins hold every validation point ({N_VAL})",
               holds=bool(all(int(c.bin_count.sum()) == N_VAL for c in cal.values())))


def _targets(labels: np.ndarray, eps: float) -> np.ndarray:
    """Smoothed targets: 1 − ε + ε/K on the true class, ε/K on every other."""
    q = np.full((len(labels), K), eps / K)
    q[np.arange(len(labels)), labels] += 1.0 - eps
    return q


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
