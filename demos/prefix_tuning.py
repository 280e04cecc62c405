"""Prefix tuning: a one-layer attention classifier pretrained on one "domain" of word polarities
is adapted to another by learning only k prefix key/value vectors at its attention layer.

The model's own weights stay frozen; the prefix alone lifts target accuracy well above the frozen
model's and close to full fine-tuning. Most attention goes to the prefix, the prefix re-scores the
words that changed polarity, and detaching it gives back the source model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import nets, transfer

VOCAB, DIM, LENGTH = 32, 16, 8
EVAL_EVERY = 25  # steps between validation checks (early stopping)
SLOT_COLORS = ["C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9"]


@dataclass
class Data:
    """Word scores in both domains, and sequences drawn from each."""
    src_scores: np.ndarray
    tgt_scores: np.ndarray
    X_src: np.ndarray
    y_src: np.ndarray
    X_src_val: np.ndarray
    y_src_val: np.ndarray
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@dataclass
class Results:
    """Test-set results from ONNX Runtime."""
    ort_diff: float
    acc: dict[str, float]  # target test accuracy: frozen, prefix, full
    src_acc_frozen: float
    src_acc_prefixed: float
    logits_p: np.ndarray
    att_p: np.ndarray
    prefix_mass: np.ndarray  # (N, T): each token's attention on the prefix
    mean_mass: float
    gap_closed: float
    n_test: int


@dataclass
class Probe:
    """Logit margins on one-word sequences, before and after prefix tuning."""
    margin_frozen: np.ndarray
    margin_prefix: np.ndarray
    changed: np.ndarray  # words whose score differs between the domains
    moved_right: float


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    k = int(opts.get("prefix_length", 4))
    steps = int(opts.get("steps", 300))
    n_changed = int(opts.get("changed_words", 8))

    data = make_data(rng, n_changed)
    base = pretrain(rng, data)
    frozen_copy = [p.copy() for p in base.model_params()]

    acc_curve: dict[str, list[float]] = {"prefix": [], "full": []}
    curves = {}
    prefixed, curves["prefix"] = train_prefix(rng, base, data, k, steps, acc_curve)
    full, curves["full"] = fine_tune_full(rng, base, data, steps, acc_curve)
    unchanged = all(np.array_equal(a, b) for a, b in zip(prefixed.model_params(), frozen_copy,
                                                          strict=True))

    sess, plain = export(demo, prefixed, base, full)
    res = evaluate(sess, plain, prefixed, data, k)
    n_prefix = transfer.n_params([prefixed.Pk, prefixed.Pv])
    n_model = transfer.n_params(base.model_params())
    share = n_prefix / (n_model + n_prefix)
    probe = probe_words(sess, plain, data)

    draw_accuracy_curves(demo, curves, acc_curve, base, data, k, n_prefix, n_model)
    draw_attention_split(demo, res, data, k)
    draw_word_probe(demo, probe, data)
    measure(demo, res, probe, data, k, n_prefix, n_model, share)
    claim_findings(demo, res, unchanged, n_prefix, n_model, share)


def make_data(rng: np.random.Generator, n_changed: int) -> Data:
    """Two polarity lexicons and sequences from each: plenty for the source, few for the target."""
    # Words score +1, -1 or 0; a sequence is positive if its scores sum above 0. In the target
    # domain n_changed words score differently (a neutral word turns negative, and so on).
    src_scores, tgt_scores = transfer.polarity_lexicons(rng, VOCAB, n_changed=n_changed)
    X_src, y_src = transfer.sample_sequences(rng, src_scores, 3000, LENGTH)
    X_src_val, y_src_val = transfer.sample_sequences(rng, src_scores, 300, LENGTH)
    X_train, y_train = transfer.sample_sequences(rng, tgt_scores, 300, LENGTH)
    X_val, y_val = transfer.sample_sequences(rng, tgt_scores, 300, LENGTH)
    X_test, y_test = transfer.sample_sequences(rng, tgt_scores, 500, LENGTH)
    return Data(src_scores, tgt_scores, X_src, y_src, X_src_val, y_src_val, X_train, y_train,
                X_val, y_val, X_test, y_test)


def pretrain(rng: np.random.Generator, data: Data) -> transfer.AttentionClassifier:
    """Pretrain the whole model on the source domain."""
    base = transfer.AttentionClassifier.init(rng, VOCAB, DIM)
    transfer.fit(base, data.X_src, data.y_src, nets.Adam(lr=0.01), steps=300, rng=rng, batch_size=64)
    return base


def tracker(acc_curve: dict[str, list[float]], name: str, data: Data):
    """Early stopping watches the validation loss; the accuracy is recorded for the figure."""
    def evaluate(model: transfer.AttentionClassifier) -> float:
        logits = model.predict(data.X_val)
        acc_curve[name].append(transfer.accuracy(logits, data.y_val))
        return transfer.cross_entropy(logits, data.y_val)
    return evaluate


def train_prefix(rng: np.random.Generator, base: transfer.AttentionClassifier, data: Data, k: int, steps: int,
                 acc_curve: dict[str, list[float]]) -> tuple[transfer.AttentionClassifier, list]:
    """Prefix tuning: k key/value vectors, started from the keys and values of random words."""
    prefixed = base.prefix_from_tokens(rng.integers(0, VOCAB, k))
    curve = transfer.fit(prefixed, data.X_train, data.y_train, nets.Adam(lr=0.1), steps=steps,
                         trainable=prefixed.prefix_tuning(), rng=rng, batch_size=64,
                         evaluate=tracker(acc_curve, "prefix", data), eval_every=EVAL_EVERY,
                         restore_best=True)
    return prefixed, curve


def fine_tune_full(rng: np.random.Generator, base: transfer.AttentionClassifier, data: Data, steps: int,
                   acc_curve: dict[str, list[float]]) -> tuple[transfer.AttentionClassifier, list]:
    """Full fine-tuning: every weight of the pretrained model, no prefix."""
    full = base.copy()
    curve = transfer.fit(full, data.X_train, data.y_train, nets.Adam(lr=0.01), steps=steps, rng=rng,
                         batch_size=64, evaluate=tracker(acc_curve, "full", data), eval_every=EVAL_EVERY,
                         restore_best=True)
    return full, curve


def export(demo, prefixed: transfer.AttentionClassifier, base: transfer.AttentionClassifier,
           full: transfer.AttentionClassifier):
    """The frozen model with its learned prefix in ONNX, and the plain graph for the other two."""
    # The frozen model with its learned prefix (Concat of prefix keys/values); and
    # the same graph without a prefix for the frozen baseline and the full fine-tune.
    sess = demo.onnx("prefix_attention", demo.make_model(transfer.export_attention(prefixed)))
    plain = {
        "frozen": demo.session(demo.make_model(transfer.export_attention(base, name="frozen"))),
        "full": demo.session(demo.make_model(transfer.export_attention(full, name="fine_tuned"))),
    }
    return sess, plain


def ort(session, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits and attention weights from an ONNX Runtime session."""
    logits, attention = session.run(None, {"tokens": ids.astype(np.int64)})
    return logits.astype(np.float64), attention.astype(np.float64)


def evaluate(sess, plain: dict, prefixed: transfer.AttentionClassifier, data: Data, k: int) -> Results:
    """Accuracy of all three models on both domains, and where the attention goes."""
    logits_p, att_p = ort(sess, data.X_test)
    logits_np, cache = prefixed.forward(data.X_test)
    ort_diff = float(max(np.max(np.abs(logits_p - logits_np)), np.max(np.abs(att_p - cache["A"]))))
    acc = {
        "frozen": transfer.accuracy(ort(plain["frozen"], data.X_test)[0], data.y_test),
        "prefix": transfer.accuracy(logits_p, data.y_test),
        "full": transfer.accuracy(ort(plain["full"], data.X_test)[0], data.y_test),
    }
    src_acc_frozen = transfer.accuracy(ort(plain["frozen"], data.X_src_val)[0], data.y_src_val)
    src_acc_prefixed = transfer.accuracy(ort(sess, data.X_src_val)[0], data.y_src_val)
    prefix_mass = att_p[:, :, :k].sum(axis=2)  # (N, T): each token's attention on the prefix
    mean_mass = float(prefix_mass.mean())
    gap_closed = (acc["prefix"] - acc["frozen"]) / max(acc["full"] - acc["frozen"], 1e-12)
    return Results(ort_diff, acc, src_acc_frozen, src_acc_prefixed, logits_p, att_p, prefix_mass,
                   mean_mass, gap_closed, len(data.y_test))


def probe_words(sess, plain: dict, data: Data) -> Probe:
    """What the prefix changed: margins on one-word sequences, for the words that changed."""
    # A probe of what the prefix changed: the logit margin (positive − negative) for a sequence
    # made of one word repeated, for every word, before and after prefix tuning.
    src_scores, tgt_scores = data.src_scores, data.tgt_scores
    probe = np.repeat(np.arange(VOCAB)[:, None], LENGTH, axis=1)
    margin_frozen = np.diff(ort(plain["frozen"], probe)[0], axis=1)[:, 0]
    margin_prefix = np.diff(ort(sess, probe)[0], axis=1)[:, 0]
    changed = np.flatnonzero(src_scores != tgt_scores)
    direction = np.sign(tgt_scores[changed] - src_scores[changed])
    moved_right = float(np.mean(np.sign(margin_prefix[changed] - margin_frozen[changed]) == direction))
    return Probe(margin_frozen, margin_prefix, changed, moved_right)


def draw_accuracy_curves(demo, curves: dict, acc_curve: dict[str, list[float]], base: transfer.AttentionClassifier,
                         data: Data, k: int, n_prefix: int, n_model: int) -> None:
    """Figure: validation accuracy while training, prefix against full fine-tuning."""
    @demo.figure(
        "accuracy-curves",
        caption=f"Target-domain validation accuracy while training on {len(data.y_train)} examples: "
        f"prefix tuning trains {n_prefix:,} numbers, full fine-tuning all {n_model:,}. The dashed "
        "line is the frozen source model.",
        alt="Line chart of validation accuracy against training step. The frozen model's "
        "accuracy is a flat dashed line; prefix tuning climbs well above it and ends close to "
        "full fine-tuning.",
        notice="Prefix tuning climbs far above the frozen model and ends near full fine-tuning.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for name, color, label in (("prefix", "C0", f"prefix tuning (k = {k})"),
                                   ("full", "C1", "full fine-tuning")):
            x = [step for step, _ in curves[name]]
            ax.plot(x, 100 * np.array(acc_curve[name]), color=color, lw=1.8, marker="o", ms=3.5, label=label)
        frozen_val_acc = transfer.accuracy(base.predict(data.X_val), data.y_val)
        ax.axhline(100 * frozen_val_acc, color="C7", ls="--", lw=1.2, label="frozen source model")
        ax.set_xlabel("training step (batches of 64)")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title("Only the prefix is trained, yet accuracy rises")
        ax.legend(loc="center right")


def draw_attention_split(demo, res: Results, data: Data, k: int) -> None:
    """Figure: for one test sequence, each word's attention on the prefix slots and on the words."""
    # One test sequence for the attention picture.
    example = int(np.argmax(res.logits_p.argmax(axis=1) == data.y_test))
    example_att = res.att_p[example]
    example_ids = data.X_test[example]
    word_labels = [f"w{i}" for i in example_ids]

    @demo.figure(
        "attention-split",
        caption=f"Where each word of one test sequence sends its attention in the prefix-tuned "
        f"model (weights from ONNX Runtime): the {k} learned prefix slots P1–P{k} or the "
        f"sequence's own {LENGTH} words.",
        alt=f"{LENGTH} horizontal stacked bars, one per word, each summing to one. Most of every "
        "bar is taken by the prefix slots; the grey part for the sequence's own words is small.",
        size=(6.4, 4.0),
        notice="Most of every word's attention goes to the learned prefix slots.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        rows = np.arange(LENGTH)[::-1]
        left = np.zeros(LENGTH)
        for j in range(k):
            ax.barh(rows, example_att[:, j], left=left, color=SLOT_COLORS[j % len(SLOT_COLORS)],
                    label=f"P{j + 1}")
            left += example_att[:, j]
        ax.barh(rows, example_att[:, k:].sum(axis=1), left=left, color="C7", alpha=0.6,
                label="the words")
        ax.set_yticks(rows, word_labels)
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of the word's attention")
        ax.set_ylabel("word (query)")
        ax.set_title(f"{res.prefix_mass[example].mean():.0%} of this sequence's attention is on the prefix")
        ax.legend(ncol=k + 1, loc="lower center", bbox_to_anchor=(0.5, 1.1), fontsize="small",
                  frameon=False)


def draw_word_probe(demo, probe: Probe, data: Data) -> None:
    """Figure: each changed word's margin before and after prefix tuning."""
    src_scores, tgt_scores, changed = data.src_scores, data.tgt_scores, probe.changed
    margin_frozen, margin_prefix = probe.margin_frozen, probe.margin_prefix
    order = changed[np.argsort(tgt_scores[changed] - src_scores[changed])]

    @demo.figure(
        "word-probe",
        caption="For each word whose polarity differs between the domains: the model's margin "
        "(positive minus negative logit) on a sequence of that word repeated, before and after "
        "prefix tuning. Labels give the word's score in the source → target domain.",
        alt="Paired markers for the changed words joined by lines. After prefix tuning the "
        "margins move in the direction of each word's new polarity.",
        notice="After prefix tuning the margins move towards each word's new polarity.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        x = np.arange(len(order))
        ax.axhline(0.0, color="C7", lw=1)
        ax.vlines(x, margin_frozen[order], margin_prefix[order], color="C0", lw=1.2)
        ax.plot(x, margin_frozen[order], "s", color="C7", ms=7, label="frozen model")
        ax.plot(x, margin_prefix[order], "o", color="C0", ms=7, label="with prefix")
        ax.set_xticks(x, [f"w{w}\n{src_scores[w]:+.0f}→{tgt_scores[w]:+.0f}" for w in order])
        ax.set_ylabel("margin on 'w w w … w'")
        ax.set_title("The prefix re-scores the words that changed meaning")
        ax.legend(loc="upper left", fontsize="small")


def measure(demo, res: Results, probe: Probe, data: Data, k: int, n_prefix: int, n_model: int,
            share: float) -> None:
    """Record the sizes, the accuracies, the attention on the prefix and the probe."""
    demo.key_numbers("accuracy_frozen", "accuracy_prefix", "accuracy_full", "trainable_share", "prefix_attention_mass")
    acc = res.acc
    demo.setting("prefix_length", k, label="Prefix length k", fmt=".0f")
    demo.setting("dim", DIM, label="Model width d", fmt=".0f")
    demo.setting("vocab", VOCAB, label="Vocabulary size", fmt=".0f")
    demo.setting("length", LENGTH, label="Words per sequence", fmt=".0f")
    demo.setting("changed_words", len(probe.changed), label="Words whose polarity changes", fmt=".0f")
    demo.setting("n_target", len(data.y_train), label="Target-domain training sequences", fmt=".0f")
    demo.setting("params_prefix", n_prefix, label="Trained prefix parameters (2·k·d)", fmt=",.0f")
    demo.setting("params_model", n_model, label="Frozen model parameters", fmt=",.0f")
    demo.setting("trainable_share", share, label="Trainable share (prefix / model + prefix)",
                fmt=".1%")
    demo.metric("accuracy_frozen", acc["frozen"], label="Target test accuracy, frozen model",
                fmt=".1%")
    demo.metric("accuracy_prefix", acc["prefix"], label="Target test accuracy, prefix tuning",
                fmt=".1%")
    demo.metric("accuracy_full", acc["full"], label="Target test accuracy, full fine-tuning",
                fmt=".1%")
    demo.metric("gap_closed", res.gap_closed,
                label="Share of the frozen → full fine-tuning accuracy gap closed by the prefix",
                fmt=".0%")
    demo.metric("prefix_attention_mass", res.mean_mass,
                label="Mean attention weight on the prefix (test set)", fmt=".0%")
    demo.metric("source_accuracy", res.src_acc_frozen,
                label="Source-domain accuracy of the model without a prefix", fmt=".1%")
    demo.metric("source_accuracy_with_prefix", res.src_acc_prefixed,
                label="Source-domain accuracy with the target prefix attached", fmt=".1%")
    demo.metric("changed_words_moved_right", probe.moved_right,
                label="Changed words whose probe margin moved in the direction of the change",
                fmt=".0%")
    demo.metric("ort_max_abs_diff", res.ort_diff,
                label="Max |ONNX Runtime − NumPy| (logits and attention)", fmt=".1e")


def claim_findings(demo, res: Results, unchanged: bool, n_prefix: int, n_model: int, share: float) -> None:
    """Findings: the prefix lifts accuracy, closes a good part of the gap, takes the attention, and is
    target-specific. Checks: only the prefix trains, ONNX Runtime matches NumPy."""
    acc = res.acc
    demo.check(
        "Only the prefix is trained: a small fraction of the parameters, and the model's own "
        "weights stay bit-for-bit the same",
        holds=bool(unchanged and share < 0.1),
        prefix_parameters=n_prefix,
        model_parameters=n_model,
        share=share,
    )
    demo.claim(
        "The prefix lifts target accuracy clearly above the frozen model's (by more than three "
        "standard errors of a test-set accuracy)",
        holds=bool(acc["prefix"] - acc["frozen"] > 3 * np.sqrt(acc["frozen"] * (1 - acc["frozen"]) / res.n_test)),
        frozen=demo.number(acc["frozen"], "target accuracy, frozen model", fmt=".1%"),
        prefix=demo.number(acc["prefix"], "target accuracy, with the prefix", fmt=".1%"),
    )
    demo.claim(
        "It closes a substantial part (at least a third) of the gap to full fine-tuning",
        holds=bool(res.gap_closed > 1 / 3),
        gap_closed=res.gap_closed,
        prefix=demo.number(acc["prefix"], "target accuracy, with the prefix", fmt=".1%"),
        full_fine_tuning=demo.number(acc["full"], "target accuracy, full fine-tuning", fmt=".1%"),
    )
    demo.claim(
        "Most of the attention goes to the prefix",
        holds=bool(res.mean_mass > 0.5),
        mean_attention_on_prefix=demo.number(res.mean_mass, "mean attention on the prefix", fmt=".1%"),
    )
    demo.claim(
        "Detaching the prefix gives back the source model, which does better on the source "
        "domain than with the target prefix attached",
        holds=bool(res.src_acc_frozen > res.src_acc_prefixed),
        source_accuracy_without_prefix=demo.number(res.src_acc_frozen, "source accuracy without the prefix", fmt=".1%"),
        source_accuracy_with_target_prefix=demo.number(
            res.src_acc_prefixed, "source accuracy with the target's prefix", fmt=".1%"),
    )
    demo.check(
        "ONNX Runtime (prefix keys and values joined with Concat) matches the NumPy forward pass",
        holds=bool(res.ort_diff < 1e-4),
        max_abs_diff=res.ort_diff,
    )
