"""Transfer learning: a small MLP pretrained on a data-rich source task is reused on a target task
with few to several hundred labelled examples, as frozen features (new head only) and fine-tuned,
against the same network trained from scratch, and against features from a source that shares
nothing with the target. Every trained network is exported to one ONNX model and scored in ONNX Runtime."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import nets, onnx_export, plotting, transfer

SIZES = (50, 100, 200, 400, 800)  # target training examples
DRAWS = (3, 2, 1, 1, 1)  # training sets drawn per size (small ones vary most); scores are their mean
WIDTH = 32  # hidden units per layer
SHIFT = 0.5  # how far the target's high-level features are rotated from the related source's
N_SOURCE = 5000
PRETRAIN_STEPS = 400
N_VAL, N_TEST = 300, 1000
STEPS = 150
BATCH_SIZE = 100
EVAL_EVERY = 25
LR_SCRATCH, LR_HEAD, LR_FINE = 3e-3, 3e-3, 1e-3
SCRATCH, FROZEN, FINE, UNRELATED = ("from scratch", "related source, frozen", "related source, fine-tuned",
                                     "unrelated source, frozen")
METHODS = (SCRATCH, FROZEN, FINE, UNRELATED)
COLORS = {SCRATCH: "C3", FROZEN: "C0", FINE: "C1", UNRELATED: "C7"}
TAGS = {SCRATCH: "scratch", FROZEN: "frozen", FINE: "fine_tuned", UNRELATED: "unrelated"}


@dataclass
class Sources:
    """The two pretrained networks: one on a task related to the target, one on an unrelated task."""

    related: nets.MLP
    unrelated: nets.MLP
    accuracy_related: float  # on held-out source data
    accuracy_unrelated: float


@dataclass
class Target:
    teacher: transfer.Teacher
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@dataclass
class Curves:
    """Target test accuracy per method and size (mean over the draws), from ONNX Runtime."""

    acc: dict[str, np.ndarray]
    ort_diff: float
    n_models: int
    frozen_intact: bool  # the frozen bodies are bit-for-bit the pretrained ones


def run(demo) -> None:
    rng = demo.rng
    # A source task that shares low-level features with the target, and one that shares nothing.
    related_task, target_task = transfer.related_tasks(rng, shift=SHIFT)
    unrelated_task, _ = transfer.related_tasks(rng)
    sources = pretrain_sources(rng, related_task, unrelated_task)
    target = Target(target_task, *target_task.sample(rng, N_VAL), *target_task.sample(rng, N_TEST))

    models = train_every_size(rng, sources, target)
    curves = score_in_onnx(demo, models, sources, target)

    draw_learning_curves(demo, curves)
    draw_transfer_gain(demo, curves)
    measure(demo, sources, curves)
    claim_findings(demo, curves)


def pretrain_sources(rng: np.random.Generator, related: transfer.Teacher, unrelated: transfer.Teacher) -> Sources:
    """Pretrain the same architecture on plenty of examples of each source task."""
    out = []
    for teacher in (related, unrelated):
        X, y = teacher.sample(rng, N_SOURCE)
        net = nets.init_mlp(rng, [X.shape[1], WIDTH, WIDTH, teacher.n_classes])
        transfer.fit(net, X, y, nets.Adam(lr=0.01), steps=PRETRAIN_STEPS, rng=rng, batch_size=128)
        X_val, y_val = teacher.sample(rng, N_VAL)
        out += [net, transfer.accuracy(nets.predict(net, X_val), y_val)]
    return Sources(out[0], out[2], out[1], out[3])


def train_every_size(rng: np.random.Generator, sources: Sources,
                     target: Target) -> dict[tuple[str, int], list[nets.MLP]]:
    """For every size and draw of target training data, train the four variants."""
    n_classes = target.teacher.n_classes
    models: dict[tuple[str, int], list[nets.MLP]] = {}
    for n, draws in zip(SIZES, DRAWS, strict=True):
        for _ in range(draws):
            X, y = target.teacher.sample(rng, n)
            scratch = nets.init_mlp(rng, sources.related.sizes[:-1] + [n_classes])
            reused = transfer.with_new_head(sources.related, n_classes, rng)
            other = transfer.with_new_head(sources.unrelated, n_classes, rng)
            trained = {
                SCRATCH: fit(scratch, None, LR_SCRATCH, X, y, target, rng),
                FROZEN: fit(reused.copy(), transfer.head_only(reused), LR_HEAD, X, y, target, rng),
                FINE: fit(reused.copy(), None, LR_FINE, X, y, target, rng),
                UNRELATED: fit(other, transfer.head_only(other), LR_HEAD, X, y, target, rng),
            }
            for method, model in trained.items():
                models.setdefault((method, n), []).append(model)
    return models


def fit(model: nets.MLP, flags, rate: float, X: np.ndarray, y: np.ndarray, target: Target,
        rng: np.random.Generator) -> nets.MLP:
    """Adam (mini-batches once the set outgrows one), keeping the best-validation checkpoint."""
    transfer.fit(model, X, y, nets.Adam(lr=rate), steps=STEPS, trainable=flags, rng=rng,
                 batch_size=BATCH_SIZE if len(X) > BATCH_SIZE else None,
                 evaluate=lambda m: transfer.cross_entropy(nets.predict(m, target.X_val), target.y_val),
                 eval_every=EVAL_EVERY, restore_best=True)
    return model


def score_in_onnx(demo, models: dict[tuple[str, int], list[nets.MLP]], sources: Sources, target: Target) -> Curves:
    """Export every trained network side by side to one ONNX model; score them in ONNX Runtime."""
    keys = [(key, i) for key, group in models.items() for i in range(len(group))]
    flat = [models[key][i] for key, i in keys]
    sess = demo.onnx("target_models", demo.make_model(onnx_export.export_mlps(flat, name="target_models")))
    out = sess.run(None, {"x": target.X_test.astype(np.float32)})[0].astype(np.float64)
    c = target.teacher.n_classes
    ort_diff = float(np.max(np.abs(out - np.hstack([nets.predict(m, target.X_test) for m in flat]))))
    per_key: dict[tuple[str, int], list[float]] = {}
    for j, (key, _) in enumerate(keys):
        per_key.setdefault(key, []).append(transfer.accuracy(out[:, j * c : (j + 1) * c], target.y_test))
    acc = {m: np.array([np.mean(per_key[m, n]) for n in SIZES]) for m in METHODS}
    frozen_intact = all(
        np.array_equal(a, b)
        for method, body in ((FROZEN, sources.related), (UNRELATED, sources.unrelated))
        for n in SIZES for model in models[method, n]
        for a, b in zip(model.params()[:-2], body.params()[:-2], strict=True))
    return Curves(acc, ort_diff, len(flat), frozen_intact)


def draw_learning_curves(demo, curves: Curves) -> None:
    """Figure: target test accuracy against the number of target training examples."""
    acc = curves.acc

    @demo.figure(
        "learning-curves",
        caption=f"Target-task test accuracy against the number of target training examples (log scale). With "
        f"{SIZES[0]} examples, training from scratch reaches {acc[SCRATCH][0]:.0%}, the related source's frozen "
        f"features {acc[FROZEN][0]:.0%} and fine-tuning them {acc[FINE][0]:.0%}; with {SIZES[-1]}, "
        f"{acc[SCRATCH][-1]:.0%}, {acc[FROZEN][-1]:.0%} and {acc[FINE][-1]:.0%}. Features from the unrelated "
        f"source reach {acc[UNRELATED][0]:.0%} and {acc[UNRELATED][-1]:.0%}.",
        alt=f"Four rising curves of accuracy against training-set size. The fine-tuned and frozen-feature curves "
        f"start high, near {acc[FINE][0]:.0%} and {acc[FROZEN][0]:.0%}; the from-scratch curve starts at "
        f"{acc[SCRATCH][0]:.0%} and climbs to {acc[SCRATCH][-1]:.0%}, while they reach {acc[FINE][-1]:.0%} and "
        f"{acc[FROZEN][-1]:.0%}. The dashed unrelated-source curve rises least, from {acc[UNRELATED][0]:.0%} to "
        f"{acc[UNRELATED][-1]:.0%}.",
        notice="Reused features help most when target data is scarce; features from the wrong source cap accuracy.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for method in METHODS:
            ax.plot(SIZES, acc[method], marker="o", color=COLORS[method], lw=1.8, ms=6, label=method,
                    ls="--" if method == UNRELATED else "-")
        plotting.plain_log_axis(ax.xaxis, SIZES)
        plotting.plain_ticks(ax.yaxis, None, fmt=lambda v: f"{v:.0%}")
        ax.set_xlabel("target training examples")
        ax.set_ylabel("target test accuracy")
        ax.set_title("Reusing a pretrained network vs. starting from scratch")
        ax.legend(loc="center right", fontsize="small")


def draw_transfer_gain(demo, curves: Curves) -> None:
    """Figure: accuracy gained over training from scratch, per size and way of reusing."""
    gain = {m: curves.acc[m] - curves.acc[SCRATCH] for m in (FINE, FROZEN, UNRELATED)}

    @demo.figure(
        "transfer-gain",
        caption=f"Accuracy gained over training from scratch at each size. Fine-tuning the related source's "
        f"network gains {gain[FINE][0] * 100:+.0f} points with {SIZES[0]} examples and "
        f"{gain[FINE][-1] * 100:+.0f} with {SIZES[-1]}; frozen features from the unrelated source end at "
        f"{gain[UNRELATED][-1] * 100:+.0f} points: negative transfer.",
        alt=f"Grouped bars per training-set size. The fine-tuned bar goes from {gain[FINE][0] * 100:+.0f} points at "
        f"{SIZES[0]} examples to {gain[FINE][-1] * 100:+.0f} at {SIZES[-1]}, the frozen related one from "
        f"{gain[FROZEN][0] * 100:+.0f} to {gain[FROZEN][-1] * 100:+.0f}, and the unrelated-source one from "
        f"{gain[UNRELATED][0] * 100:+.0f} to {gain[UNRELATED][-1] * 100:+.0f}.",
        notice="The gain shrinks as target data grows; an unrelated source ends up costing accuracy.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        x = np.arange(len(SIZES))
        for k, method in enumerate((FINE, FROZEN, UNRELATED)):
            ax.bar(x + (k - 1) * 0.27, gain[method] * 100, 0.27, color=COLORS[method], label=method)
        ax.axhline(0.0, color="C7", lw=1)
        ax.set_xticks(x, [str(n) for n in SIZES])
        ax.set_xlabel("target training examples")
        ax.set_ylabel("accuracy gain over scratch (points)")
        ax.set_title("What the source is worth, by amount of target data")
        ax.legend(fontsize="small", loc="upper right")


def measure(demo, sources: Sources, curves: Curves) -> None:
    """Record the setup and the accuracies at the smallest and largest sizes."""
    demo.key_numbers("accuracy_scratch_small", "accuracy_fine_tuned_small", "accuracy_scratch_large",
                     "accuracy_unrelated_large")
    acc = curves.acc
    demo.setting("n_source", N_SOURCE, label="Source-task training examples (each source)", fmt=",.0f")
    demo.setting("hidden_width", WIDTH, label="Units in each of the two hidden layers", fmt=".0f")
    demo.setting("size_small", SIZES[0], label="Smallest target training set", fmt=".0f")
    demo.setting("size_large", SIZES[-1], label="Largest target training set", fmt=".0f")
    demo.setting("draws_small", DRAWS[0], label="Training sets drawn at the smallest size", fmt=".0f")
    demo.setting("n_sizes", len(SIZES), label="Target training-set sizes", fmt=".0f")
    demo.setting("n_models", curves.n_models, label="Networks trained on the target and exported", fmt=".0f")
    demo.metric("source_accuracy_related", sources.accuracy_related,
                label="Related source network, accuracy on its own task", fmt=".0%")
    demo.metric("source_accuracy_unrelated", sources.accuracy_unrelated,
                label="Unrelated source network, accuracy on its own task", fmt=".0%")
    for method in METHODS:
        for tag, i in (("small", 0), ("large", -1)):
            demo.metric(f"accuracy_{TAGS[method]}_{tag}", acc[method][i],
                        label=f"Target test accuracy, {method}, {SIZES[i]} examples", fmt=".1%")
    demo.metric("gain_fine_tuned_small", acc[FINE][0] - acc[SCRATCH][0],
                label=f"Fine-tuned minus scratch accuracy, {SIZES[0]} examples", fmt=".1%")
    demo.metric("gain_fine_tuned_large", acc[FINE][-1] - acc[SCRATCH][-1],
                label=f"Fine-tuned minus scratch accuracy, {SIZES[-1]} examples", fmt=".1%")
    demo.metric("ort_max_abs_diff", curves.ort_diff, label="Max |ONNX Runtime − NumPy| logit", fmt=".1e")


def claim_findings(demo, curves: Curves) -> None:
    """Findings: transfer wins with little data, less with more; an unrelated source hurts.
    Checks: frozen bodies untouched, ONNX Runtime matches NumPy."""
    acc = curves.acc
    gain_small, gain_large = acc[FINE][0] - acc[SCRATCH][0], acc[FINE][-1] - acc[SCRATCH][-1]
    demo.claim(
        "With the fewest target examples, reusing the related source's network beats training from scratch, "
        "both as frozen features and fine-tuned",
        holds=bool(acc[FINE][0] > acc[SCRATCH][0] and acc[FROZEN][0] > acc[SCRATCH][0]),
        accuracy_scratch_small=acc[SCRATCH][0],
        accuracy_frozen_small=acc[FROZEN][0],
        accuracy_fine_tuned_small=acc[FINE][0],
    )
    demo.claim(
        "The advantage shrinks as target data grows: with the most examples, fine-tuning gains less than two "
        "thirds of what it gains over training from scratch with the fewest",
        holds=bool(gain_large < 2 / 3 * gain_small),
        gain_fine_tuned_small=gain_small,
        gain_fine_tuned_large=gain_large,
    )
    mean_related, mean_unrelated = float(np.mean(acc[FROZEN])), float(np.mean(acc[UNRELATED]))
    demo.claim(
        "Frozen features from a source that shares nothing with the target are worse than the related "
        "source's, averaged over the sizes",
        holds=bool(mean_unrelated < mean_related),
        related=demo.number(mean_related, "mean accuracy, related source's frozen features", fmt=".1%"),
        unrelated=demo.number(mean_unrelated, "mean accuracy, unrelated source's frozen features", fmt=".1%"),
    )
    demo.claim(
        "Negative transfer: with the most target examples, frozen features from the unrelated source do worse "
        "than the same network trained from scratch",
        holds=bool(acc[UNRELATED][-1] < acc[SCRATCH][-1]),
        accuracy_unrelated_large=acc[UNRELATED][-1],
        accuracy_scratch_large=acc[SCRATCH][-1],
    )
    demo.check(
        "Training a new head on frozen features leaves the pretrained hidden layers bit-for-bit unchanged",
        holds=bool(curves.frozen_intact),
    )
    demo.check(
        "ONNX Runtime reproduces every trained network (all exported side by side in one model)",
        holds=bool(curves.ort_diff < 1e-4 and curves.n_models == len(METHODS) * sum(DRAWS)),
        max_abs_diff=curves.ort_diff,
        networks=curves.n_models,
    )
