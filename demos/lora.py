"""LoRA: a frozen pretrained MLP learns a new task through a rank-r update ``W + A B`` of each
hidden weight matrix (plus a new head). Compared with training only the head, with adapters and
with full fine-tuning; full fine-tuning's own update turns out to be nearly low rank, which is
why LoRA works; merged, the LoRA model exports to ONNX with exactly the original network's nodes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import lora, nets, onnx_export, plotting, transfer

RANKS = (1, 2, 4, 8)
TRUNCATIONS = (1, 2, 4, 8, 16, 32)  # ranks full fine-tuning's update is cut down to
WIDTH = 32  # hidden units per layer of the pretrained network
SHIFT = 1.4  # how far the target task's high-level features are rotated from the source's
PRETRAIN_STEPS = 400
BATCH_SIZE = 100
EVAL_EVERY = 15
LR_FULL = 1e-3  # full fine-tuning: every pretrained weight moves, so smaller steps
LR_SMALL = 3e-3  # head only, adapters and LoRA: the few new parameters start from scratch
ADAPTER_WIDTH = 4
N_RANDOM = 20  # random matrices averaged for the reference spectrum
HEAD, FULL, ADAPTERS = "head only", "full fine-tuning", f"adapters, m = {ADAPTER_WIDTH}"


def lora_label(r: int) -> str:
    return f"LoRA, r = {r}"


@dataclass
class Runs:
    """Every way of adapting the pretrained network to the target task, trained once each."""

    models: dict[str, object]  # label -> trained model (head only, full, adapters, each LoRA rank)
    lora: dict[int, lora.LoRAMLP]
    start_diff: float  # LoRA before training against the network it wraps


@dataclass
class Scores:
    test_loss: dict[str, float]
    test_acc: dict[str, float]
    n_trained: dict[str, int]


@dataclass
class Spectrum:
    """How low-rank full fine-tuning's weight update is, per hidden layer."""

    energy: list[np.ndarray]  # cumulative share of the squared Frobenius norm, top-k singular values
    random_energy: list[np.ndarray]  # the same for Gaussian matrices of the same shape (mean)
    truncated_loss: dict[int, float]  # target test loss with both updates cut to rank k


@dataclass
class Export:
    ort_unmerged: np.ndarray
    ort_merged: np.ndarray
    diff_unmerged: float
    diff_merged: float
    merged_ops: list[str]
    plain_ops: list[str]
    unmerged_ops: list[str]


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    n_target = int(opts.get("n_target", 1000))
    steps = int(opts.get("steps", 150))
    main_rank = int(opts.get("rank", 4))
    ranks = sorted(set(RANKS) | {main_rank})

    # Source and target share low-level features; the target's high-level ones are rotated away.
    setup = transfer.make_setup(rng, n_target=n_target, shift=SHIFT, width=WIDTH, pretrain_steps=PRETRAIN_STEPS)
    start = transfer.with_new_head(setup.pretrained, setup.target.n_classes, rng)
    runs = train_all(rng, setup, start, ranks, steps)
    main = runs.lora[main_rank]

    exported = export(demo, main, start, setup)
    scores = evaluate(runs, main, exported, start, setup)
    spectrum = analyse_full_update(rng, start, runs.models[FULL], setup)

    draw_trainable_vs_loss(demo, scores, ranks)
    draw_update_spectrum(demo, spectrum, scores, main_rank, ranks)
    measure(demo, setup, start, main, ranks, scores, spectrum, exported, n_target, steps)
    claim_findings(demo, runs, main, start, ranks, scores, spectrum, exported)


def train_all(rng: np.random.Generator, setup: transfer.TransferSetup, start: nets.MLP, ranks: list[int],
              steps: int) -> Runs:
    """Train the head alone, every weight, adapters, and LoRA at each rank, from the same new head."""
    head = start.copy()
    fit(head, transfer.head_only(head), LR_SMALL, setup, rng, steps)
    full = start.copy()
    fit(full, None, LR_FULL, setup, rng, steps)
    adapted = transfer.AdapterMLP.wrap(start, ADAPTER_WIDTH, rng)
    fit(adapted, adapted.adapter_tuning(), LR_SMALL, setup, rng, steps)
    models: dict[str, object] = {HEAD: head, FULL: full, ADAPTERS: adapted}
    low_rank: dict[int, lora.LoRAMLP] = {}
    start_diff = 0.0
    for r in ranks:
        model = lora.LoRAMLP.wrap(start, r, rng)
        # B starts at zero, so before training the wrapped network is the pretrained one exactly.
        gap = model.predict(setup.X_test) - nets.predict(start, setup.X_test)
        start_diff = max(start_diff, float(np.max(np.abs(gap))))
        fit(model, model.lora_tuning(), LR_SMALL, setup, rng, steps)
        low_rank[r] = models[lora_label(r)] = model
    return Runs(models, low_rank, start_diff)


def fit(model, flags, rate: float, setup: transfer.TransferSetup, rng: np.random.Generator, steps: int) -> None:
    """Adam on the flagged arrays in mini-batches, keeping the best-validation checkpoint."""
    transfer.fit(model, setup.X_train, setup.y_train, nets.Adam(lr=rate), steps=steps, trainable=flags, rng=rng,
                 batch_size=BATCH_SIZE, evaluate=lambda m: transfer.cross_entropy(logits(m, setup.X_val), setup.y_val),
                 eval_every=EVAL_EVERY, restore_best=True)


def logits(model, X: np.ndarray) -> np.ndarray:
    return nets.predict(model, X) if isinstance(model, nets.MLP) else model.predict(X)


def export(demo, main: lora.LoRAMLP, start: nets.MLP, setup: transfer.TransferSetup) -> Export:
    """The main-rank LoRA model twice: unmerged (side path per layer) and merged (plain MLP)."""
    x = {"x": setup.X_test.astype(np.float32)}
    unmerged_graph = lora.export_lora_mlp(main)
    merged_graph = onnx_export.export_mlp(main.merged(), name="lora_merged")
    unmerged = demo.onnx("lora_unmerged", demo.make_model(unmerged_graph)).run(None, x)[0].astype(np.float64)
    merged = demo.onnx("lora_merged", demo.make_model(merged_graph)).run(None, x)[0].astype(np.float64)
    reference = main.predict(setup.X_test)
    plain_ops = [n.op_type for n in onnx_export.export_mlp(start).node]
    return Export(unmerged, merged, float(np.max(np.abs(unmerged - reference))),
                  float(np.max(np.abs(merged - reference))), [n.op_type for n in merged_graph.node], plain_ops,
                  [n.op_type for n in unmerged_graph.node])


def evaluate(runs: Runs, main: lora.LoRAMLP, exported: Export, start: nets.MLP,
             setup: transfer.TransferSetup) -> Scores:
    """Target test loss and accuracy (the main LoRA model's from ONNX Runtime) and trained parameters."""
    test_loss, test_acc, n_trained = {}, {}, {}
    n_head = transfer.n_params(start.params()[-2:])
    for label, model in runs.models.items():
        out = exported.ort_merged if model is main else logits(model, setup.X_test)
        test_loss[label] = transfer.cross_entropy(out, setup.y_test)
        test_acc[label] = transfer.accuracy(out, setup.y_test)
    n_trained[HEAD] = n_head
    n_trained[FULL] = transfer.n_params(start.params())
    n_trained[ADAPTERS] = n_head + transfer.n_params(runs.models[ADAPTERS].adapter_params())
    for r, model in runs.lora.items():
        n_trained[lora_label(r)] = n_head + transfer.n_params(model.lora_params())
    return Scores(test_loss, test_acc, n_trained)


def analyse_full_update(rng: np.random.Generator, start: nets.MLP, full: nets.MLP,
                        setup: transfer.TransferSetup) -> Spectrum:
    """Singular values of full fine-tuning's update to each hidden layer, against random matrices,
    and the target loss when each update is cut down to its top-k singular directions."""
    svds = [np.linalg.svd(w1 - w0, full_matrices=False) for w0, w1 in zip(start.weights[:-1], full.weights[:-1],
                                                                           strict=True)]
    energy = [np.cumsum(s**2) / np.sum(s**2) for _, s, _ in svds]
    random_energy = []
    for w in start.weights[:-1]:
        s = np.linalg.svd(rng.standard_normal((N_RANDOM, *w.shape)), compute_uv=False)
        random_energy.append(np.mean(np.cumsum(s**2, axis=1) / np.sum(s**2, axis=1, keepdims=True), axis=0))
    truncated_loss = {}
    for k in TRUNCATIONS:
        cut = full.copy()
        for i, (U, s, Vt) in enumerate(svds):
            cut.weights[i] = start.weights[i] + (U[:, :k] * s[:k]) @ Vt[:k]
        truncated_loss[k] = transfer.cross_entropy(nets.predict(cut, setup.X_test), setup.y_test)
    return Spectrum(energy, random_energy, truncated_loss)


def draw_trainable_vs_loss(demo, scores: Scores, ranks: list[int]) -> None:
    """Figure: target test loss against the number of parameters each method trains."""
    loss, n = scores.test_loss, scores.n_trained
    lo, hi = lora_label(min(ranks)), lora_label(max(ranks))

    @demo.figure(
        "trainable-vs-loss",
        caption=f"Target-task test loss against the parameters trained for the task (log scale). LoRA "
        f"trains {n[lo]:,} to {n[hi]:,} parameters (r = {min(ranks)} to {max(ranks)}) and reaches "
        f"{min(loss[lora_label(r)] for r in ranks):.3f} to {max(loss[lora_label(r)] for r in ranks):.3f}; "
        f"the head alone ({n[HEAD]:,}) reaches {loss[HEAD]:.3f}, adapters ({n[ADAPTERS]:,}) "
        f"{loss[ADAPTERS]:.3f} and full fine-tuning ({n[FULL]:,}) {loss[FULL]:.3f}.",
        alt=f"Scatter of test loss against trained parameters. The head alone sits at the upper left at "
        f"{loss[HEAD]:.2f}; the LoRA points for ranks {', '.join(map(str, ranks))} lie well below it, "
        f"between {min(loss[lora_label(r)] for r in ranks):.2f} and "
        f"{max(loss[lora_label(r)] for r in ranks):.2f}; adapters sit at {loss[ADAPTERS]:.2f} and full fine-tuning, "
        f"at the far right, at {loss[FULL]:.2f}.",
        notice="Every LoRA rank lands well below the head alone, for a fraction of full fine-tuning's parameters.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        xs = [n[lora_label(r)] for r in ranks]
        ax.plot(xs, [loss[lora_label(r)] for r in ranks], "o-", color="C2", ms=9, lw=1, label="LoRA (rank r)")
        for r, x in zip(ranks, xs, strict=True):
            ax.annotate(f"r = {r}", (x, loss[lora_label(r)]), textcoords="offset points", xytext=(0, -17),
                        ha="center", fontsize="small")
        for label, color in ((HEAD, "C0"), (ADAPTERS, "C4"), (FULL, "C1")):
            ax.plot(n[label], loss[label], "s" if label == ADAPTERS else "o", color=color, ms=9, label=label)
        plotting.plain_log_axis(ax.xaxis, [100, 200, 500, 1000, 2000])
        ax.set_xlim(min(n.values()) / 1.5, max(n.values()) * 1.5)
        low, high = min(loss.values()), max(loss.values())
        ax.set_ylim(low - 0.25 * (high - low) - 0.01, high + 0.15 * (high - low) + 0.01)
        ax.set_xlabel("parameters trained for the new task")
        ax.set_ylabel("target test loss")
        ax.set_title("Parameters trained, and the loss reached")
        ax.legend(loc="upper right", fontsize="small")


def draw_update_spectrum(demo, spectrum: Spectrum, scores: Scores, main_rank: int, ranks: list[int]) -> None:
    """Figure: how much of full fine-tuning's update its top singular directions hold, and what
    cutting the update to them does to the target loss."""
    share = [float(e[main_rank - 1]) for e in spectrum.energy]
    share_random = [float(e[main_rank - 1]) for e in spectrum.random_energy]
    loss = scores.test_loss

    @demo.figure(
        "update-spectrum",
        caption=f"Left: share of the squared size of full fine-tuning's weight update held by its top k singular "
        f"directions, per hidden layer, against random matrices of the same shape (dashed); at k = {main_rank} it is "
        f"{share[0]:.0%} and {share[1]:.0%} (random: {share_random[0]:.0%} and {share_random[1]:.0%}). Right: target "
        f"test loss when both updates are cut to rank k ({spectrum.truncated_loss[main_rank]:.3f} at "
        f"k = {main_rank}, {loss[FULL]:.3f} uncut), with the LoRA runs of each rank.",
        alt=f"Left, two solid curves that rise steeply to {share[0]:.0%} and {share[1]:.0%} by k = {main_rank} "
        f"and flatten, above dashed random-matrix curves that rise slowly. Right, the loss of the truncated "
        f"update falls from {spectrum.truncated_loss[1]:.2f} at rank 1 to about the uncut "
        f"{loss[FULL]:.2f} within a few ranks; the LoRA points for the same ranks lie between "
        f"{min(loss[lora_label(r)] for r in ranks):.2f} and {max(loss[lora_label(r)] for r in ranks):.2f}.",
        size=(6.4, 3.6),
        notice="Full fine-tuning's update lives in a few directions; keeping only those keeps its gain.",
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2)
        for i, (e, er) in enumerate(zip(spectrum.energy, spectrum.random_energy, strict=True)):
            k = np.arange(1, len(e) + 1)
            left.plot(k, e, color=f"C{i}", lw=1.8, label=f"layer {i + 1} update")
            left.plot(k, er, color=f"C{i}", lw=1.2, ls="--", label=f"layer {i + 1} random")
        left.axvline(main_rank, color="C7", lw=1, ls=":")
        left.set_xlabel("top k singular directions")
        left.set_ylabel("share of squared size")
        plotting.plain_ticks(left.yaxis, [0, 0.25, 0.5, 0.75, 1.0], fmt=lambda v: f"{v:.0%}")
        left.set_ylim(0, 1.03)
        left.set_title("Full fine-tuning's update", fontsize="medium")
        left.legend(fontsize="x-small", loc="lower right")
        ks = sorted(spectrum.truncated_loss)
        right.plot(ks, [spectrum.truncated_loss[k] for k in ks], "o-", color="C1", lw=1.4, ms=5,
                   label="full, update cut to rank k")
        right.plot(ranks, [loss[lora_label(r)] for r in ranks], "D", color="C2", ms=6, label="LoRA, rank k")
        right.axhline(loss[HEAD], color="C0", lw=1.2, ls="--", label=HEAD)
        right.axhline(loss[FULL], color="C1", lw=1.2, ls=":", label="full, uncut")
        plotting.plain_log_axis(right.xaxis, ks)
        right.set_xlabel("rank k")
        right.set_ylabel("target test loss")
        right.set_title("Keeping the top k directions", fontsize="medium")
        top = max(loss[HEAD], *spectrum.truncated_loss.values())
        bottom = min(loss[FULL], *spectrum.truncated_loss.values(), *(loss[lora_label(r)] for r in ranks))
        right.set_ylim(bottom - 0.05 * (top - bottom), top + 0.45 * (top - bottom))
        right.legend(fontsize="x-small", loc="upper right")


def measure(demo, setup: transfer.TransferSetup, start: nets.MLP, main: lora.LoRAMLP, ranks: list[int],
            scores: Scores, spectrum: Spectrum, exported: Export, n_target: int, steps: int) -> None:
    """Record the setup, each method's size and scores, and the spectrum of full fine-tuning's update."""
    demo.key_numbers("test_loss_head_only", "test_loss_lora", "test_loss_full", "trained_share_lora",
                     "update_share_layer2")
    loss, acc, n = scores.test_loss, scores.test_acc, scores.n_trained
    r = main.rank
    sizes = start.sizes
    demo.setting("n_target", n_target, label="Target-task training examples", fmt=",.0f")
    demo.setting("n_inputs", sizes[0], label="Inputs of the network", fmt=".0f")
    demo.setting("hidden_width", sizes[1], label="Units in each of the two hidden layers", fmt=".0f")
    demo.setting("target_classes", sizes[-1], label="Classes of the target task", fmt=".0f")
    demo.setting("steps", steps, label=f"Training steps per method (mini-batches of {BATCH_SIZE})", fmt=".0f")
    demo.setting("rank", r, label="Main LoRA rank r", fmt=".0f")
    demo.setting("rank_small", min(ranks), label="Smallest LoRA rank tried", fmt=".0f")
    demo.setting("rank_large", max(ranks), label="Largest LoRA rank tried", fmt=".0f")
    demo.setting("adapter_width", ADAPTER_WIDTH, label="Adapter bottleneck width", fmt=".0f")
    demo.setting("lr_full", LR_FULL, label="Learning rate, full fine-tuning", fmt="g")
    demo.setting("lr_small", LR_SMALL, label="Learning rate, head only, adapters and LoRA", fmt="g")
    demo.setting("params_full", n[FULL], label="Parameters trained by full fine-tuning", fmt=",.0f")
    demo.setting("params_head", n[HEAD], label="Parameters of the new head", fmt=",.0f")
    demo.setting("params_lora", n[lora_label(r)] - n[HEAD], label=f"LoRA factor parameters (r = {r})", fmt=",.0f")
    demo.setting("params_lora_small", n[lora_label(min(ranks))] - n[HEAD],
                 label=f"LoRA factor parameters (r = {min(ranks)})", fmt=",.0f")
    demo.setting("params_adapters", n[ADAPTERS] - n[HEAD], label="Adapter parameters", fmt=",.0f")
    demo.setting("trained_share_lora", n[lora_label(r)] / n[FULL],
                 label=f"LoRA (r = {r}) trained parameters / full fine-tuning's", fmt=".0%")
    tags = {HEAD: "head_only", FULL: "full", ADAPTERS: "adapters", lora_label(r): "lora"}
    for label, tag in tags.items():
        demo.metric(f"test_loss_{tag}", loss[label], label=f"Target test loss, {label}", fmt=".3f")
        demo.metric(f"test_accuracy_{tag}", acc[label], label=f"Target test accuracy, {label}", fmt=".1%")
    for tag, k in (("small", min(ranks)), ("large", max(ranks))):
        demo.metric(f"test_loss_lora_{tag}", loss[lora_label(k)], label=f"Target test loss, {lora_label(k)}",
                    fmt=".3f")
    demo.metric("gap_closed_lora", gap_closed(loss, lora_label(r)),
                label=f"Share of the head-only → full fine-tuning loss gap closed by LoRA (r = {r})", fmt=".0%")
    for i in range(len(spectrum.energy)):
        demo.metric(f"update_share_layer{i + 1}", float(spectrum.energy[i][r - 1]),
                    label=f"Top {r} singular directions' share of full fine-tuning's update, layer {i + 1}", fmt=".0%")
        demo.metric(f"random_share_layer{i + 1}", float(spectrum.random_energy[i][r - 1]),
                    label=f"Same share for a random matrix of layer {i + 1}'s shape", fmt=".0%")
    demo.metric("test_loss_truncated", spectrum.truncated_loss[r],
                label=f"Target test loss, full fine-tuning's update cut to rank {r}", fmt=".3f")
    demo.metric("test_loss_truncated_rank1", spectrum.truncated_loss[1],
                label="Target test loss, full fine-tuning's update cut to rank 1", fmt=".3f")
    demo.metric("ort_max_abs_diff", max(exported.diff_merged, exported.diff_unmerged),
                label="Max |ONNX Runtime − NumPy| logit (merged and unmerged)", fmt=".1e")


def gap_closed(loss: dict[str, float], label: str) -> float:
    return (loss[HEAD] - loss[label]) / (loss[HEAD] - loss[FULL])


def claim_findings(demo, runs: Runs, main: lora.LoRAMLP, start: nets.MLP, ranks: list[int], scores: Scores,
                   spectrum: Spectrum, exported: Export) -> None:
    """Findings: LoRA beats the head, nears full fine-tuning, and full's update is nearly low rank.
    Checks: start identity, ranks and counts, frozen backbone, merging and ONNX Runtime."""
    loss, n, r = scores.test_loss, scores.n_trained, main.rank
    demo.claim(
        "Every LoRA rank tried, even r = 1, reaches a lower target loss than training only the head",
        holds=bool(all(loss[lora_label(k)] < loss[HEAD] for k in ranks)),
        head_only=demo.number(loss[HEAD], "target test loss, head only"),
        **{f"r{k}": demo.number(loss[lora_label(k)], f"target test loss, LoRA with r = {k}") for k in ranks},
    )
    demo.claim(
        f"LoRA with r = {r} closes at least three quarters of the loss gap between training only the head and "
        "full fine-tuning, while training a fraction of full fine-tuning's parameters",
        holds=bool(gap_closed(loss, lora_label(r)) >= 0.75 and n[lora_label(r)] < n[FULL]),
        gap_closed_lora=gap_closed(loss, lora_label(r)),
        trained_lora=demo.number(n[lora_label(r)], f"parameters trained, LoRA with r = {r}"),
        trained_full=demo.number(n[FULL], "parameters trained, full fine-tuning"),
    )
    shares = [float(e[r - 1]) for e in spectrum.energy]
    random_shares = [float(e[r - 1]) for e in spectrum.random_energy]
    demo.claim(
        f"Full fine-tuning's own update is close to low rank: in each hidden layer its top {r} singular "
        "directions hold over three quarters of its squared size, and what they leave out is less than half of "
        "what they leave out of a random matrix of the same shape",
        holds=bool(all(s > 0.75 and 1 - s < 0.5 * (1 - q) for s, q in zip(shares, random_shares, strict=True))),
        update_share_layer1=shares[0], random_share_layer1=random_shares[0],
        update_share_layer2=shares[1], random_share_layer2=random_shares[1],
    )
    kept = (loss[HEAD] - spectrum.truncated_loss[r]) / (loss[HEAD] - loss[FULL])
    demo.claim(
        f"Cutting full fine-tuning's update down to its top {r} directions keeps at least 80% of its gain over "
        "training only the head",
        holds=bool(kept >= 0.8),
        test_loss_truncated=spectrum.truncated_loss[r],
        test_loss_full=loss[FULL],
        test_loss_head_only=loss[HEAD],
        gain_kept=demo.number(kept, "share of the gain kept", fmt=".0%"),
    )
    demo.check(
        "Before training, every LoRA model computes exactly what the pretrained network with the new head does "
        "(B starts at zero)",
        holds=bool(runs.start_diff == 0.0),
        max_abs_diff=runs.start_diff,
    )
    ranks_found = [int(np.linalg.matrix_rank(d)) for d in main.deltas()]
    factor_count = sum(r * (w.shape[0] + w.shape[1]) for w in start.weights[:-1])
    demo.check(
        f"Each learned update has rank {r}, and the factors hold r × (fan-in + fan-out) parameters per layer",
        holds=bool(all(k == r for k in ranks_found) and factor_count == transfer.n_params(main.lora_params())),
        ranks=", ".join(map(str, ranks_found)),
        factor_parameters=factor_count,
    )
    demo.check(
        "Under LoRA the pretrained weights stay bit-for-bit unchanged",
        holds=bool(all(np.array_equal(a, b) for a, b in zip(main.net.params()[:-2], start.params()[:-2],
                                                               strict=True))),
    )
    demo.check(
        "Merged, the LoRA model has exactly the original network's ONNX nodes (no extra inference cost), and "
        "ONNX Runtime gives the same logits merged, unmerged and in NumPy",
        holds=bool(exported.merged_ops == exported.plain_ops and exported.diff_merged < 1e-4
                   and exported.diff_unmerged < 1e-4),
        merged_nodes=len(exported.merged_ops),
        unmerged_nodes=len(exported.unmerged_ops),
        max_abs_diff_merged=exported.diff_merged,
        max_abs_diff_unmerged=exported.diff_unmerged,
    )
