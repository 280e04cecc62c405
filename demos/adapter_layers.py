"""Adapter layers: a frozen pretrained MLP gets small residual bottleneck adapters after each
hidden layer; only they and a new head are trained. Compared with training only the head and
with full fine-tuning, and exported to ONNX as Gemm + Relu + Add."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import nets, plotting, transfer

RANKS = (2, 4, 8)
BATCH_SIZE = 100
EVAL_EVERY = 20
HEAD_LR = 3e-3  # learning rate when only the head is trained
REPEATS = 3  # training runs per method (new batch order, new adapter init); test numbers are their mean


@dataclass
class Runs:
    """The three ways of adapting the pretrained network, trained on the target task."""

    head: nets.MLP  # only the new head trained
    full: nets.MLP  # every weight trained
    adapted: dict[int, transfer.AdapterMLP]  # adapters of each bottleneck width, and the head
    curves: dict[str, np.ndarray]  # validation loss during training, per method
    identity_diff: float  # adapters before training against the network without them
    repeats: dict[str, list]  # the models of the further training runs, per method


@dataclass
class Counts:
    """Parameters trained for the new task, per method."""

    n_head: int
    n_backbone: int
    n_trainable: dict[str, int]
    share: dict[int, float]  # trainable share of the adapted network, per bottleneck width


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    n_target = int(opts.get("n_target", 1000))
    steps = int(opts.get("steps", 200))
    lr = float(opts.get("lr", 1e-3))
    main_rank = int(opts.get("rank", 4))
    ranks = sorted(set(RANKS) | {main_rank})

    # A target task whose high-level features differ more from the source's than in the
    # fine-tuning demo, with a thousand labelled examples (trained in mini-batches of 100).
    setup = transfer.make_setup(rng, n_target=n_target, shift=1.2)
    start = transfer.with_new_head(setup.pretrained, setup.target.n_classes, rng)
    runs = train_three_ways(rng, setup, start, ranks, steps, lr)
    main = runs.adapted[main_rank]
    main_label = f"adapters, m = {main_rank}"
    counts = count_trainable(start, runs.adapted)

    ort_test, ort_diff, node_types = export(demo, main, setup)
    test_loss, test_acc = evaluate(runs, main, ort_test, setup)
    gap_closed = (test_loss["head only"] - test_loss[main_label]) / (
        test_loss["head only"] - test_loss["full fine-tuning"])
    backbone_same, src_pre, src_full = check_source_task(main, runs.full, setup)
    rel_change = adapter_change(main, setup)

    draw_trainable_vs_loss(demo, counts, test_loss)
    draw_validation_curves(demo, runs.curves, main_label, n_target)
    measure(demo, n_target, main_rank, ranks, main, counts, test_loss, test_acc, gap_closed, src_pre, src_full,
            rel_change, ort_diff)
    claim_findings(demo, main_rank, ranks, main, counts, runs.identity_diff, test_loss, backbone_same, src_pre,
                   src_full, node_types, ort_diff)


def train_three_ways(rng: np.random.Generator, setup: transfer.TransferSetup, start: nets.MLP, ranks: list[int],
                     steps: int, lr: float) -> Runs:
    """Train only the head, every weight, and adapters of each bottleneck width (plus the head),
    REPEATS times each; the first run's models are exported and drawn."""
    repeats: dict[str, list] = {}
    for rep in range(REPEATS):
        head = start.copy()
        curves = {"head only": fit(head, transfer.head_only(head), HEAD_LR, setup, rng, steps)}
        full = start.copy()
        curves["full fine-tuning"] = fit(full, None, lr, setup, rng, steps)
        adapted: dict[int, transfer.AdapterMLP] = {}
        identity_diff = 0.0
        for r in ranks:
            model = transfer.AdapterMLP.wrap(start, r, rng)
            # Before training, the adapters are the identity: same outputs as the network without them.
            identity_diff = max(identity_diff, float(np.max(np.abs(
                model.predict(setup.X_test) - nets.predict(start, setup.X_test)))))
            curves[f"adapters, m = {r}"] = fit(model, model.adapter_tuning(), lr, setup, rng, steps)
            adapted[r] = model
        if rep == 0:
            first = Runs(head, full, adapted, curves, identity_diff, repeats)
            continue
        for label, model in ({"head only": head, "full fine-tuning": full}
                             | {f"adapters, m = {r}": m for r, m in adapted.items()}).items():
            repeats.setdefault(label, []).append(model)
    return first


def fit(model, flags, rate: float, setup: transfer.TransferSetup, rng: np.random.Generator,
        steps: int) -> np.ndarray:
    """Train the ``flags`` part of a model with Adam, keeping the checkpoint with the best validation loss."""

    def val_loss(m) -> float:
        return transfer.cross_entropy(logits(m, setup.X_val), setup.y_val)

    curve = transfer.fit(model, setup.X_train, setup.y_train, nets.Adam(lr=rate), steps=steps,
                         trainable=flags, rng=rng, batch_size=BATCH_SIZE, evaluate=val_loss,
                         eval_every=EVAL_EVERY, restore_best=True)
    return np.array(curve)


def logits(model, X: np.ndarray) -> np.ndarray:
    """The NumPy logits of a plain MLP or of an adapted one."""
    return nets.predict(model, X) if isinstance(model, nets.MLP) else model.predict(X)


def count_trainable(start: nets.MLP, adapted: dict[int, transfer.AdapterMLP]) -> Counts:
    """Trainable parameters per task (every method trains the new head too)."""
    n_head = transfer.n_params(start.params()[-2:])
    n_backbone = transfer.n_params(start.params()[:-2])
    n_full = transfer.n_params(start.params())
    n_trainable = {"head only": n_head, "full fine-tuning": n_full}
    share = {}
    for r, model in adapted.items():
        n_trainable[f"adapters, m = {r}"] = n_head + transfer.n_params(model.adapter_params())
        share[r] = n_trainable[f"adapters, m = {r}"] / transfer.n_params(model.params())
    return Counts(n_head, n_backbone, n_trainable, share)


def export(demo, main: transfer.AdapterMLP, setup: transfer.TransferSetup):
    """Export the adapted network (main rank) to ONNX; ORT gives the test numbers for it."""
    sess = demo.onnx("adapter_mlp", demo.make_model(transfer.export_adapter_mlp(main)))
    ort_test = sess.run(None, {"x": setup.X_test.astype(np.float32)})[0].astype(np.float64)
    ort_diff = float(np.max(np.abs(ort_test - main.predict(setup.X_test))))
    node_types = [n.op_type for n in transfer.export_adapter_mlp(main).node]
    return ort_test, ort_diff, node_types


def evaluate(runs: Runs, main: transfer.AdapterMLP, ort_test: np.ndarray, setup: transfer.TransferSetup):
    """Target-task test loss and accuracy of every method, averaged over its training runs."""

    def test_logits(model) -> np.ndarray:
        if model is main:
            return ort_test
        return logits(model, setup.X_test)

    models = {"head only": runs.head, "full fine-tuning": runs.full} | {
        f"adapters, m = {r}": m for r, m in runs.adapted.items()}
    every = {k: [m] + runs.repeats.get(k, []) for k, m in models.items()}
    test_loss = {k: float(np.mean([transfer.cross_entropy(test_logits(m), setup.y_test) for m in ms]))
                 for k, ms in every.items()}
    test_acc = {k: float(np.mean([transfer.accuracy(test_logits(m), setup.y_test) for m in ms]))
                for k, ms in every.items()}
    return test_loss, test_acc


def check_source_task(main: transfer.AdapterMLP, full: nets.MLP, setup: transfer.TransferSetup):
    """Is the backbone under the adapters untouched, and what did full fine-tuning do to the source task?"""
    pre = setup.pretrained
    # The backbone under the adapters is bit-for-bit the pretrained one; full fine-tuning moved it.
    backbone_same = all(np.array_equal(a, b) for a, b in zip(
        main.net.params()[:-2], pre.params()[:-2], strict=True))
    src_pre = transfer.cross_entropy(nets.predict(pre, setup.X_source_val), setup.y_source_val)
    src_full = transfer.cross_entropy(
        nets.predict(transfer.with_head_of(full, pre), setup.X_source_val), setup.y_source_val)
    return backbone_same, src_pre, src_full


def adapter_change(main: transfer.AdapterMLP, setup: transfer.TransferSetup) -> list[float]:
    """How much the trained adapters change each hidden representation (relative norm)."""
    _, cache = main.forward(setup.X_test)
    return [float(np.linalg.norm(u @ ad.Wu + ad.bu) / np.linalg.norm(h))
            for (_, h, u), ad in zip(cache[:-1], main.adapters, strict=True)]


def draw_trainable_vs_loss(demo, counts: Counts, test_loss: dict[str, float]) -> None:
    """Figure: test loss against the number of parameters each method trains."""
    n_trainable = counts.n_trainable
    colors = {"head only": "C0", "full fine-tuning": "C1"}

    @demo.figure(
        "trainable-vs-loss",
        caption="Target-task test loss (mean of "
        f"{REPEATS} training runs) against the number of parameters trained for the task "
        "(log scale), for the head alone, adapters of each bottleneck width m and full "
        "fine-tuning.",
        alt="Scatter of test loss against trainable parameters: head only at the left, one "
        "adapter point per bottleneck width in the middle, full fine-tuning at the far right.",
        notice="Adapters reach most of full fine-tuning's loss while training a small share of the weights.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        adapter_labels = [label for label in n_trainable if label.startswith("adapters")]
        ax.plot([n_trainable[label] for label in adapter_labels],
                [test_loss[label] for label in adapter_labels], "o-", color="C2", ms=9, lw=1,
                label="adapters (bottleneck m)")
        for label in adapter_labels:
            ax.annotate(label.split(", ")[1], (n_trainable[label], test_loss[label]),
                        textcoords="offset points", xytext=(0, -17), ha="center", fontsize="small")
        for label in ("head only", "full fine-tuning"):
            ax.plot(n_trainable[label], test_loss[label], "o", color=colors[label], ms=9, label=label)
        xs = sorted(n_trainable.values())
        plotting.plain_log_axis(ax.xaxis, [100, 300, 1000, 3000, 10000])
        ax.set_xlim(xs[0] / 1.8, xs[-1] * 1.8)
        lo, hi = min(test_loss.values()), max(test_loss.values())
        ax.set_ylim(lo - 0.25 * (hi - lo) - 0.01, hi + 0.15 * (hi - lo) + 0.01)
        ax.set_xlabel("parameters trained for the new task")
        ax.set_ylabel("target test loss")
        ax.set_title("What each method trains, and the loss it reaches")
        ax.legend(loc="upper right")


def draw_validation_curves(demo, curves: dict[str, np.ndarray], main_label: str, n_target: int) -> None:
    """Figure: validation loss during training for head only, adapters and full fine-tuning."""
    colors = {"head only": "C0", "full fine-tuning": "C1", main_label: "C2"}

    @demo.figure(
        "validation-curves",
        caption=f"Validation loss on the target task during training ({n_target:,} training "
        "examples). All runs start at the same value because the adapters start as the identity; "
        "dots mark the checkpoints early stopping keeps.",
        alt="Line chart of validation loss against training step for head only, adapters and "
        "full fine-tuning, all starting from the same point.",
        notice="All runs start together; adapters and full fine-tuning end well below the head alone.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for label in ("head only", main_label, "full fine-tuning"):
            c = curves[label]
            ax.plot(c[:, 0], c[:, 1], color=colors[label], lw=1.8, label=label)
            i = int(np.argmin(c[:, 1]))
            ax.plot(c[i, 0], c[i, 1], "o", color=colors[label], ms=7)
        ax.set_xlabel("training step")
        ax.set_ylabel("validation cross-entropy")
        ax.set_title("Same starting point, different trainable parts")
        ax.legend()


def measure(demo, n_target: int, main_rank: int, ranks: list[int], main: transfer.AdapterMLP, counts: Counts,
            test_loss: dict[str, float], test_acc: dict[str, float], gap_closed: float, src_pre: float,
            src_full: float, rel_change: list[float], ort_diff: float) -> None:
    """Record parameter counts, target and source losses, and how much the adapters change."""
    demo.key_numbers(
        "test_loss_head_only", "test_loss_adapters", "test_loss_full", "trainable_share", "source_loss_full")
    main_label = f"adapters, m = {main_rank}"
    sizes = main.net.sizes
    demo.setting("n_target", n_target, label="Target-task training examples", fmt=",.0f")
    demo.setting("batch_size", BATCH_SIZE, label="Mini-batch size", fmt=".0f")
    demo.setting("n_repeats", REPEATS, label="Training runs per method (test numbers are their mean)", fmt=".0f")
    demo.setting("n_inputs", sizes[0], label="Inputs of the network", fmt=".0f")
    demo.setting("hidden_width", sizes[1], label="Units in each of the two hidden layers", fmt=".0f")
    demo.setting("target_classes", sizes[-1], label="Classes of the target task", fmt=".0f")
    demo.setting("rank", main_rank, label="Adapter bottleneck width m", fmt=".0f")
    demo.setting("rank_small", min(ranks), label="Smallest bottleneck width tried", fmt=".0f")
    demo.setting("rank_large", max(ranks), label="Largest bottleneck width tried", fmt=".0f")
    demo.setting("params_backbone", counts.n_backbone, label="Frozen backbone parameters", fmt=",.0f")
    demo.setting("params_head", counts.n_head, label="New head parameters", fmt=",.0f")
    demo.setting("params_adapters", transfer.n_params(main.adapter_params()),
                 label=f"Adapter parameters (m = {main_rank}, two adapters)", fmt=",.0f")
    demo.setting("trainable_share", counts.share[main_rank],
                 label=f"Trainable share of the adapted network (m = {main_rank})", fmt=".1%")
    demo.setting("trainable_share_small", counts.share[min(ranks)],
                 label=f"Trainable share with m = {min(ranks)}", fmt=".1%")
    tags = {"head only": "head_only", "full fine-tuning": "full", main_label: "adapters"}
    for label, tag in tags.items():
        demo.metric(f"test_loss_{tag}", test_loss[label], label=f"Target test loss, {label}",
                    fmt=".3f")
        demo.metric(f"test_accuracy_{tag}", test_acc[label],
                    label=f"Target test accuracy, {label}", fmt=".1%")
    for tag, r in (("small", min(ranks)), ("large", max(ranks))):
        demo.metric(f"test_loss_rank_{tag}", test_loss[f"adapters, m = {r}"],
                    label=f"Target test loss, adapters with m = {r}", fmt=".3f")
    demo.metric("test_loss_adapters_mean", float(np.mean([test_loss[f"adapters, m = {r}"] for r in ranks])),
                label="Target test loss, adapters, mean over the widths tried", fmt=".3f")
    demo.metric("gap_closed", gap_closed,
                label="Share of the head-only → full fine-tuning loss gap the adapters close",
                fmt=".0%")
    demo.metric("source_loss_pretrained", src_pre, label="Source-task loss, pretrained backbone",
                fmt=".3f")
    demo.metric("source_loss_full", src_full,
                label="Source-task loss after full fine-tuning (original head)", fmt=".3f")
    demo.metric("adapter_change_layer1", rel_change[0],
                label="Adapter output / hidden activation norm, layer 1", fmt=".1%")
    demo.metric("adapter_change_layer2", rel_change[1],
                label="Adapter output / hidden activation norm, layer 2", fmt=".1%")
    demo.metric("ort_max_abs_diff", ort_diff, label="Max |ONNX Runtime − NumPy| logit", fmt=".1e")


def claim_findings(demo, main_rank: int, ranks: list[int], main: transfer.AdapterMLP, counts: Counts,
                   identity_diff: float, test_loss: dict[str, float], backbone_same: bool, src_pre: float,
                   src_full: float, node_types: list[str], ort_diff: float) -> None:
    """Claims: adapters are cheap, start as the identity, beat the head alone, and export cleanly."""
    main_label = f"adapters, m = {main_rank}"
    demo.check(
        f"Adapter tuning (m = {main_rank}) trains less than a quarter of the adapted network's "
        "parameters",
        holds=bool(counts.share[main_rank] < 0.25),
        trainable=counts.n_trainable[main_label],
        total=transfer.n_params(main.params()),
        share=counts.share[main_rank],
    )
    demo.check(
        "Before training, the network with adapters computes exactly what the network without "
        "them computes",
        holds=bool(identity_diff == 0.0),
        max_abs_diff=identity_diff,
    )
    mean_adapters = float(np.mean([test_loss[f"adapters, m = {r}"] for r in ranks]))
    demo.claim(
        "Averaged over the bottleneck widths tried, adapters reach a lower target loss than "
        "training only the head",
        holds=bool(mean_adapters < test_loss["head only"]),
        head_only=demo.number(test_loss["head only"], "target test loss, head only"),
        mean_adapters=demo.number(mean_adapters, "target test loss, adapters (mean over widths)"),
        **{f"m{r}": demo.number(test_loss[f"adapters, m = {r}"], f"target test loss, adapters with m = {r}")
           for r in ranks},
    )
    demo.claim(
        "Full fine-tuning, which trains every weight, reaches a lower target loss than training "
        "only the head",
        holds=bool(test_loss["full fine-tuning"] < test_loss["head only"]),
        full_fine_tuning=demo.number(test_loss["full fine-tuning"], "target test loss, full fine-tuning"),
        head_only=demo.number(test_loss["head only"], "target test loss, head only"),
    )
    demo.claim(
        "Full fine-tuning raises the source-task loss (with the original head put back), which "
        "adapter tuning cannot do",
        holds=bool(src_full > src_pre),
        source_loss_pretrained=src_pre,
        source_loss_after_full_fine_tuning=demo.number(src_full, "source-task loss after full fine-tuning"),
    )
    demo.check(
        "Under the adapters the pretrained backbone stays bit-for-bit unchanged (so the source "
        "task is intact)",
        holds=bool(backbone_same),
    )
    demo.check(
        "The exported graph is Gemm/Relu layers with Gemm-Relu-Gemm adapters joined by Add, and "
        "ONNX Runtime matches NumPy",
        holds=bool(ort_diff < 1e-4 and node_types.count("Add") == len(main.adapters)
                   and node_types.count("Gemm") == 3 * len(main.adapters) + 1),
        max_abs_diff=ort_diff,
        gemm_nodes=node_types.count("Gemm"),
        add_nodes=node_types.count("Add"),
    )
