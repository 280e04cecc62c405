"""Data augmentation: a small network classifies short signals from a handful of examples.

Each signal is one of three shapes (a single bump, a double bump, a bump followed by a dip) placed
anywhere on a ring of samples, with noise. With a few examples per class, a plain network learns
where its training examples happened to sit, not what the shapes look like: training accuracy is
perfect and validation accuracy is poor. Training on freshly shifted, freshly noised copies of the
same examples (the label does not depend on where a shape sits) closes most of that gap; noise
alone does not, because it does not teach the network that position is irrelevant. Every
condition is trained on several independent small training sets, all nets side by side, and the
trained nets are one ONNX graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import nets
from demolib import stack as st

LENGTH = 32  # samples per signal, on a ring (a shift wraps around)
WIDTH = 1.5  # width of a bump, in samples
CLASSES = ("bump", "double bump", "bump then dip")
CONDITIONS = ("none", "noise only", "shifts + noise")
N_VAL_PER_CLASS = 200
EVAL_EVERY = 20
SHOWN = 2  # augmented copies drawn per class
OFFSET = 2.2  # vertical distance between the drawn signals
BIG_GAP, HALF = 0.3, 0.5  # "far below": a median gap of at least 30 points; "less than half"


@dataclass
class Setup:
    per_class: int
    noise: float
    hidden: int
    steps: int
    repeats: int
    copies: int  # augmented copies of every example in each step's batch


@dataclass
class Data:
    X: np.ndarray  # (repeats, n, LENGTH): independent small training sets
    y: np.ndarray  # (repeats, n)
    X_val: np.ndarray  # (n_val, LENGTH): one shared validation set
    y_val: np.ndarray


@dataclass
class Curves:
    steps: list[int]
    train_acc: np.ndarray  # (evals, conditions, repeats), on the un-augmented training examples
    val_acc: np.ndarray


@dataclass
class Scores:
    """Final accuracies from ONNX Runtime, (conditions, repeats)."""
    train: np.ndarray
    val: np.ndarray
    ort_diff: float

    @property
    def gap(self) -> np.ndarray:
        return self.train - self.val


def run(demo) -> None:
    opts = demo.options
    setup = Setup(per_class=int(opts.get("per_class", 6)), noise=float(opts.get("noise", 0.3)),
                  hidden=int(opts.get("hidden", 32)), steps=int(opts.get("steps", 300)),
                  repeats=int(opts.get("repeats", 5)), copies=int(opts.get("copies", 3)))

    data = make_data(demo.rng, setup)
    net, curves = train_side_by_side(demo.rng, data, setup)
    sess = export(demo, net, setup)
    scores = evaluate(sess, net, data, setup)
    shift_ok = shifts_preserve_labels(demo.rng)

    draw_signals(demo, demo.rng, data, setup)
    draw_accuracy(demo, curves, setup)
    measure(demo, scores, setup, len(data.y_val))
    claim_findings(demo, scores, setup)
    check_model(demo, scores, shift_ok)


def clean_signal(cls: int, pos: np.ndarray) -> np.ndarray:
    """Shape ``cls`` centred at ``pos`` (one row per position) on the ring of LENGTH samples."""
    d = (np.arange(LENGTH)[None, :] - np.asarray(pos, float)[:, None] + LENGTH / 2) % LENGTH - LENGTH / 2

    def bump(centre: float) -> np.ndarray:
        return np.exp(-((d - centre) ** 2) / (2 * WIDTH**2))

    return (bump(0.0), bump(-3.0) + bump(3.0), bump(-2.5) - bump(2.5))[cls]


def draw(rng: np.random.Generator, per_class: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` signals of each shape at random positions and amplitudes, with noise."""
    X = [rng.uniform(0.8, 1.2, (per_class, 1)) * clean_signal(c, rng.uniform(0, LENGTH, per_class))
         for c in range(len(CLASSES))]
    X = np.vstack(X) + noise * rng.standard_normal((per_class * len(CLASSES), LENGTH))
    return X, np.repeat(np.arange(len(CLASSES)), per_class)


def make_data(rng: np.random.Generator, s: Setup) -> Data:
    """Independent small training sets (one per repeat) and a large shared validation set."""
    sets = [draw(rng, s.per_class, s.noise) for _ in range(s.repeats)]
    X_val, y_val = draw(rng, N_VAL_PER_CLASS, s.noise)
    return Data(np.array([x for x, _ in sets]), np.array([y for _, y in sets]), X_val, y_val)


def shift(rng: np.random.Generator, X: np.ndarray) -> np.ndarray:
    """Every signal rotated round the ring by its own random number of samples."""
    k = rng.integers(0, LENGTH, X.shape[:-1])
    return np.take_along_axis(X, (np.arange(LENGTH) - k[..., None]) % LENGTH, axis=-1)


def batch(rng: np.random.Generator, X: np.ndarray, s: Setup) -> np.ndarray:
    """One step's inputs for the three conditions: the examples as they are, with fresh noise, and
    shifted with fresh noise (``copies`` of each example); nets are ordered condition by condition."""
    rep = np.repeat(X, s.copies, axis=1)
    noisy = rep + s.noise * rng.standard_normal(rep.shape)
    return np.concatenate([rep, noisy, shift(rng, noisy)])


def train_side_by_side(rng: np.random.Generator, data: Data, s: Setup) -> tuple[st.Stack, Curves]:
    """One net per condition and training set, all trained together with Adam on cross-entropy."""
    k = len(CONDITIONS)
    net = st.init_stack(rng, [LENGTH, s.hidden, len(CLASSES)], ["relu", "linear"], members=k * s.repeats)
    opt, params = nets.Adam(lr=0.01), net.params()
    targets = np.eye(len(CLASSES))[np.tile(np.repeat(data.y, s.copies, axis=1), (k, 1))]
    X_plain, y_plain = np.tile(data.X, (k, 1, 1)), np.tile(data.y, (k, 1))
    curves = Curves([], [], [])
    for step in range(1, s.steps + 1):
        out, cache = st.forward(net, batch(rng, data.X, s))
        p = _softmax(out)
        grads, _ = st.backward(net, cache, (p - targets) / out.shape[1])
        opt.step(params, grads)
        if step % EVAL_EVERY == 0 or step == 1:
            curves.steps.append(step)
            curves.train_acc.append(_by_condition(_accuracy(st.predict(net, X_plain), y_plain), k))
            curves.val_acc.append(_by_condition(_accuracy(st.predict(net, data.X_val), data.y_val), k))
    return net, Curves(curves.steps, np.array(curves.train_acc), np.array(curves.val_acc))


def export(demo, net: st.Stack, s: Setup):
    """All trained nets in one ONNX graph: output (N, nets, classes), condition by condition."""
    graph = st.export_stack(net, name="augmentation_nets", doc_string=(
        f"{net.members} MLPs {net.sizes} side by side: nets 0..{s.repeats - 1} trained without "
        f"augmentation, then {s.repeats} with noise only, then {s.repeats} with shifts + noise"))
    return demo.onnx("augmentation_nets", demo.make_model(graph))


def evaluate(sess, net: st.Stack, data: Data, s: Setup) -> Scores:
    """Final training and validation accuracy of every net, from ONNX Runtime."""
    k = len(CONDITIONS)
    val_logits = sess.run(None, {"x": data.X_val.astype(np.float32)})[0]  # (N, nets, classes)
    val = _accuracy(np.moveaxis(val_logits, 1, 0), data.y_val)
    train_x = data.X.reshape(-1, LENGTH).astype(np.float32)  # every repeat's training set, stacked
    train_logits = sess.run(None, {"x": train_x})[0].reshape(s.repeats, -1, net.members, len(CLASSES))
    own = np.stack([train_logits[i % s.repeats, :, i] for i in range(net.members)])  # net i on its own set
    train = _accuracy(own, np.tile(data.y, (k, 1)))
    ort_diff = float(np.max(np.abs(np.moveaxis(val_logits, 1, 0) - st.predict(net, data.X_val))))
    return Scores(_by_condition(train, k), _by_condition(val, k), ort_diff)


def shifts_preserve_labels(rng: np.random.Generator) -> float:
    """A shifted clean signal is the same shape drawn at the shifted position (largest difference)."""
    pos, k = rng.uniform(0, LENGTH, 8), rng.integers(1, LENGTH, 8)
    worst = 0.0
    for c in range(len(CLASSES)):
        rolled = np.array([np.roll(row, kk) for row, kk in zip(clean_signal(c, pos), k, strict=True)])
        worst = max(worst, float(np.max(np.abs(rolled - clean_signal(c, pos + k)))))
    return worst


def draw_signals(demo, rng: np.random.Generator, data: Data, s: Setup) -> None:
    """Figure: one training example per class and augmented copies of it."""
    first = [int(np.flatnonzero(data.y[0] == c)[0]) for c in range(len(CLASSES))]
    originals = data.X[0, first]
    copies = shift(rng, np.repeat(originals[:, None], SHOWN, axis=1))
    copies = copies + s.noise * rng.standard_normal(copies.shape)

    @demo.figure(
        "signals",
        caption=f"One training example of each class (top, thick) and {SHOWN} augmented copies below it: shifted "
        f"round the ring of {LENGTH} samples, with fresh noise",
        alt="Three panels, one per class: a single bump, a double bump and a bump followed by a dip. In "
        "each, the thick original sits at one position and the augmented copies drawn below it show "
        "the same shape at other positions, with different noise.",
        size=(6.4, 4.4),
        notice="An augmented copy keeps the shape, so the label, while its position and noise change.",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, 3, sharey=True)
        t = np.arange(LENGTH)
        for c, ax in enumerate(axes):
            ax.plot(t, originals[c], color="C0", lw=2.2)
            for j, copy in enumerate(copies[c], 1):
                ax.plot(t, copy - OFFSET * j, color="C1", lw=1.2)
            ax.set_title(CLASSES[c])
            ax.set_xlabel("sample")
            ax.set_yticks([])
        axes[0].set_ylabel("original, then copies below")


def draw_accuracy(demo, curves: Curves, s: Setup) -> None:
    """Figure: training and validation accuracy during training, median over the training sets."""
    tr, va = np.median(curves.train_acc, axis=2), np.median(curves.val_acc, axis=2)

    @demo.figure(
        "accuracy",
        caption=f"Training accuracy (dashed) and validation accuracy (solid) during training, median over "
        f"{s.repeats} training sets of {s.per_class} examples per class",
        alt="Line chart over training steps for three conditions. "
        + " ".join(f"{name.capitalize()}: training accuracy ends at {tr[-1, i]:.0%}, validation "
                   f"accuracy at {va[-1, i]:.0%}." for i, name in enumerate(CONDITIONS))
        + " Only shifted copies lift validation accuracy far above the other two.",
        size=(6.4, 4.0),
        notice="Without shifts the gap between the dashed and solid lines stays wide; with them it nearly closes.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for i, name in enumerate(CONDITIONS):
            ax.plot(curves.steps, tr[:, i], "--", color=f"C{i}", lw=1.5)
            ax.plot(curves.steps, va[:, i], "-", color=f"C{i}", lw=2.2, label=name)
        ax.axhline(1 / len(CLASSES), ls=":", color="C7", label="chance")
        ax.set_ylim(0.0, 1.05)
        ax.set_xlabel("training step")
        ax.set_ylabel("accuracy")
        ax.set_title("Training (dashed) against validation (solid)")
        ax.legend(fontsize="small", loc="lower right", title="augmentation")


def measure(demo, scores: Scores, s: Setup, n_val: int) -> None:
    """Record the setup and the median accuracies and gaps of each condition."""
    demo.key_numbers("val_acc_none", "val_acc_shift", "gap_none", "gap_shift", "val_acc_noise")
    demo.setting("per_class", s.per_class, label="Training examples per class", fmt=".0f")
    demo.setting("n_classes", len(CLASSES), label="Classes", fmt=".0f")
    demo.setting("length", LENGTH, label="Samples per signal", fmt=".0f")
    demo.setting("n_conditions", len(CONDITIONS), label="Training conditions compared", fmt=".0f")
    demo.setting("repeats", s.repeats, label="Independent training sets per condition", fmt=".0f")
    demo.setting("n_val", n_val, label="Validation signals", fmt=".0f")
    demo.setting("steps", s.steps, label="Training steps", fmt=".0f")
    demo.setting("hidden", s.hidden, label="Hidden units", fmt=".0f")
    demo.setting("copies", s.copies, label="Augmented copies of each example per step", fmt=".0f")
    demo.setting("big_gap", BIG_GAP, label="'Far below': a gap of at least", fmt=".0%")
    for i, key in enumerate(("none", "noise", "shift")):
        what = CONDITIONS[i]
        demo.metric(f"train_acc_{key}", float(np.median(scores.train[i])),
                    label=f"Training accuracy, augmentation: {what} (median)", fmt=".0%")
        demo.metric(f"val_acc_{key}", float(np.median(scores.val[i])),
                    label=f"Validation accuracy, augmentation: {what} (median)", fmt=".0%")
        demo.metric(f"gap_{key}", float(np.median(scores.gap[i])),
                    label=f"Training minus validation accuracy, augmentation: {what} (median)", fmt=".0%")


def claim_findings(demo, scores: Scores, s: Setup) -> None:
    """Findings: memorising without augmentation, the gap closing with shifts, noise alone not enough."""
    med = {key: float(np.median(scores.gap[i])) for i, key in enumerate(("none", "noise", "shift"))}
    demo.claim(
        f"Without augmentation the nets fit their {s.per_class} examples per class perfectly while validation "
        f"accuracy is far below (median gap at least {BIG_GAP:.0%})",
        holds=bool(np.median(scores.train[0]) == 1.0 and med["none"] >= BIG_GAP),
        train_acc_none=float(np.median(scores.train[0])),
        val_acc_none=float(np.median(scores.val[0])),
        gap_none=med["none"],
    )
    demo.claim(
        f"Training on shifted, noisy copies cuts the median gap to less than {HALF:.0%} of the gap without "
        f"augmentation, and raises validation accuracy on every one of the {s.repeats} training sets",
        holds=bool(med["shift"] < HALF * med["none"] and np.all(scores.val[2] > scores.val[0])),
        gap_shift=med["shift"],
        gap_none=med["none"],
        smallest_gain=demo.number(float(np.min(scores.val[2] - scores.val[0])),
                                  "smallest gain in validation accuracy", fmt=".0%"),
    )
    demo.claim(
        "Noise alone does not teach that position is irrelevant: on every training set, the net trained "
        "with noise only is less accurate on validation data than the one trained with shifts",
        holds=bool(np.all(scores.val[1] < scores.val[2])),
        val_acc_noise=float(np.median(scores.val[1])),
        val_acc_shift=float(np.median(scores.val[2])),
    )


def check_model(demo, scores: Scores, shift_ok: float) -> None:
    """Checks: ONNX Runtime = NumPy, and a shift is a label-preserving transformation here."""
    demo.check(
        "ONNX Runtime (float32) matches NumPy on every net's validation logits",
        holds=bool(scores.ort_diff < 1e-3),
        max_abs_diff=scores.ort_diff,
    )
    demo.check(
        "Shifting a clean signal round the ring gives the same shape drawn at the shifted position, so a "
        "shifted copy keeps its label",
        holds=bool(shift_ok < 1e-12),
        max_abs_diff=shift_ok,
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _accuracy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Accuracy of every net: ``logits (nets, N, classes)`` against labels ``(N,)`` or ``(nets, N)``."""
    return np.mean(logits.argmax(axis=-1) == y, axis=-1)


def _by_condition(values: np.ndarray, k: int) -> np.ndarray:
    """Per-net values (condition-major) as (conditions, repeats)."""
    return values.reshape(k, -1)
