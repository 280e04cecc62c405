"""Attention: one learned attention layer retrieves the value stored under a queried key, and why
the scores are divided by sqrt(d)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import attention as att
from demolib import plotting
from matplotlib.patches import Rectangle

N_KEYS, N_VALUES = 16, 8  # key symbols k0..k15, value symbols 0..7
N_TEST = 1000  # held-out examples
TRIALS = 300  # random draws per width in the scaling study
SCALING_KEYS = 16  # keys each random query is scored against in the scaling study
BATCH = 32  # fresh training examples per step


@dataclass
class HeldOut:
    """The trained layer on held-out examples, run in ONNX Runtime."""

    test: att.LookupData
    weights: np.ndarray  # attention weights from ONNX Runtime
    weights_before: np.ndarray  # attention weights of the untrained layer (NumPy)
    accuracy: float
    on_match: np.ndarray  # weight on the matching key, per query
    on_match_before: np.ndarray
    argmax_right: float  # share of queries whose largest weight is on the matching key
    diff_logits: float
    diff_weights: float


@dataclass
class Scaling:
    """Random queries and keys of growing width, with and without the 1/sqrt(d) scale."""

    sat: att.Saturation
    jac_drop: float
    jac_spread: float


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    d = int(opts.get("d", 8))
    length = int(opts.get("pairs", 8))
    steps = int(opts.get("steps", 200))
    dims = [int(v) for v in opts.get("dims", (4, 16, 64, 256, 1024))]

    model, untrained, losses = train(rng, d, steps, length)
    held = evaluate(demo, rng, model, untrained, length)
    diag_margin = key_margin(model)
    scaling = measure_scaling(rng, dims)

    draw_lookup_weights(demo, held, length)
    draw_scaling(demo, scaling)
    measure(demo, d, length, steps, losses, held, diag_margin, dims, scaling)
    claim_findings(demo, held, diag_margin, dims, scaling)


def train(rng: np.random.Generator, d: int, steps: int, length: int):
    """Train one attention layer on fresh batches of the lookup task; keep a copy of the start."""
    model = att.init_lookup(rng, N_KEYS, N_VALUES, d)
    untrained = att.Lookup(*(p.copy() for p in model.params()), model.scale)
    losses = att.train_lookup(model, rng, steps=steps, batch=BATCH, length=length, lr=0.02)
    return model, untrained, losses


def evaluate(demo, rng: np.random.Generator, model: att.Lookup, untrained: att.Lookup, length: int) -> HeldOut:
    """Export the layer to ONNX and run held-out examples through ONNX Runtime."""
    sess = demo.onnx("lookup_attention", demo.make_model(att.export_lookup(model)))
    test = att.lookup_batch(rng, N_TEST, length, N_KEYS, N_VALUES)
    feeds = {"queries": test.queries.astype(np.float32), "pairs": test.pairs.astype(np.float32)}
    logits, weights = (a.astype(np.float64) for a in sess.run(["logits", "weights"], feeds))
    np_logits, np_cache = att.lookup_forward(model, test)
    diff_logits = float(np.max(np.abs(logits - np_logits)))
    diff_weights = float(np.max(np.abs(weights - np_cache["P"])))
    accuracy = float(np.mean(logits.argmax(-1) == test.labels))
    on_match = np.take_along_axis(weights, test.match[..., None], -1)[..., 0]
    argmax_right = float(np.mean(weights.argmax(-1) == test.match))
    _, before_cache = att.lookup_forward(untrained, test)
    on_match_before = np.take_along_axis(before_cache["P"], test.match[..., None], -1)[..., 0]
    return HeldOut(test, weights, before_cache["P"], accuracy, on_match, on_match_before, argmax_right,
                   diff_logits, diff_weights)


def key_margin(model: att.Lookup) -> float:
    """Smallest margin by which a query's learned score for its own key beats every other key."""
    # What the layer learned: the key part of the score a query for key a gives a stored key b
    compat = (model.Wq @ model.Wk[:N_KEYS].T) * model.scale
    off = compat[~np.eye(N_KEYS, dtype=bool)].reshape(N_KEYS, N_KEYS - 1)
    return float(np.min(np.diag(compat) - off.max(axis=1)))


def measure_scaling(rng: np.random.Generator, dims: list[int]) -> Scaling:
    """The 1/sqrt(d) scale: random unit-variance queries and keys of growing width."""
    sat = att.saturation(rng, dims, n_keys=SCALING_KEYS, trials=TRIALS)
    jac = sat.jacobian
    jac_drop = float(jac["unscaled"][0] / jac["unscaled"][-1])
    jac_spread = float(np.ptp(jac["scaled"]) / np.mean(jac["scaled"]))
    return Scaling(sat, jac_drop, jac_spread)


def draw_lookup_weights(demo, held: HeldOut, length: int) -> None:
    """Figure: attention weights of one held-out example, before and after training."""
    test = held.test
    ex = 0
    key_names = [f"k{k}" for k in test.keys[ex]]
    col_labels = [f"k{k}→{v}" for k, v in zip(test.keys[ex], test.values[ex], strict=True)]
    row_labels = [f"{key_names[j]}?" for j in test.match[ex]]

    @demo.figure(
        "lookup-weights",
        caption=f"Attention weights for one held-out example ({length} stored pairs, {length} "
        "queries) before and after training: each square's area is its weight; the framed cell in "
        "each row holds the queried key",
        alt=f"Two {length}-by-{length} grids of squares. Rows are queries such as 'k3?', columns are "
        "the stored key→value pairs. Before training every row has small squares spread over all "
        "columns; after training each row has one large square, inside the framed cell whose key "
        "matches the query.",
        size=(6.4, 3.9),
        notice="Training moves each row's weight from everywhere onto the framed key that matches the query.",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, 2, sharey=True)
        panels = ((held.weights_before[ex], "before training"), (held.weights[ex], "after training (ONNX Runtime)"))
        for ax, (w, title) in zip(axes, panels, strict=True):
            att.hinton(ax, w)
            for i, j in enumerate(test.match[ex]):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="C3", lw=1.4))
            ax.set_xticks(range(length), col_labels, rotation=90, fontsize="small")
            ax.set_title(title, fontsize="medium")
            ax.set_xlabel("stored pair (key→value)")
        axes[0].set_yticks(range(length), row_labels, fontsize="small")
        axes[0].set_ylabel("query: value of key …?")


def draw_scaling(demo, scaling: Scaling) -> None:
    """Figure: largest weight and gradient size against width, with and without scaling."""
    sat = scaling.sat
    mw, jac = sat.max_weight, sat.jacobian

    @demo.figure(
        "scaling",
        caption="Why the scores are divided by √d: queries and keys with unit-variance entries, "
        f"one query against {SCALING_KEYS} keys, {TRIALS} draws per width",
        alt=f"Two line charts against the width d on a log scale from {sat.dims[0]} to {sat.dims[-1]}. "
        f"Left: the mean largest attention weight; with scaling it stays near {mw['scaled'].mean():.2f}, "
        f"without scaling it climbs to {mw['unscaled'][-1]:.2f}. Right: the size of the softmax's "
        "gradient; with scaling it stays flat, without scaling it falls towards zero.",
        notice="Without 1/√d the largest weight climbs towards one and the gradient fades; with it both stay level.",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, 2)
        series = (("scaled", "C0", "o", "q·k / √d"), ("unscaled", "C1", "s", "q·k (no scaling)"))
        for ax, data, ylabel in ((axes[0], mw, "mean largest weight"),
                                 (axes[1], jac, "softmax gradient size")):
            for key, color, marker, label in series:
                ax.plot(sat.dims, data[key], marker=marker, color=color, label=label)
            plotting.plain_log_axis(ax.xaxis, sat.dims)
            ax.set_xlabel("width d of queries and keys")
            ax.set_ylabel(ylabel)
            ax.set_ylim(0, 1.02 if data is mw else None)
        axes[0].axhline(1.0 / SCALING_KEYS, color="C7", ls=":", lw=1.2, label=f"uniform (1/{SCALING_KEYS})")
        axes[1].set_ylim(bottom=0)
        axes[0].set_title("weights saturate…", fontsize="medium")
        axes[1].set_title("…and gradients vanish", fontsize="medium")
        axes[0].legend(fontsize="small", loc="center right")


def measure(demo, d: int, length: int, steps: int, losses, held: HeldOut, diag_margin: float,
            dims: list[int], scaling: Scaling) -> None:
    """Record the set-up, the held-out results and the scaling study's numbers."""
    demo.key_numbers(
        "test_accuracy", "chance_accuracy", "weight_on_match", "max_weight_unscaled_dmax", "max_weight_scaled_dmax")
    demo.setting("d_model", d, label="Width of queries, keys and values", fmt=".0f")
    demo.setting("pairs", length, label="Stored key→value pairs per example", fmt=".0f")
    demo.setting("train_steps", steps, label=f"Training steps (Adam, {BATCH} fresh examples each)", fmt=".0f")
    demo.setting("n_test", N_TEST, label="Held-out examples", fmt=".0f")
    demo.setting("scaling_keys", SCALING_KEYS, label="Keys per random query in the scaling study", fmt=".0f")
    demo.setting("dim_min", dims[0], label="Smallest width in the scaling study", fmt=".0f")
    demo.setting("dim_max", dims[-1], label="Largest width in the scaling study", fmt=".0f")
    demo.metric("final_train_loss", losses[-1], label="Training cross-entropy, last step", fmt=".2g")
    demo.metric("test_accuracy", held.accuracy, label="Held-out queries answered correctly (ONNX Runtime)",
                fmt=".1%")
    demo.setting("chance_accuracy", 1.0 / N_VALUES, label="Accuracy of guessing", fmt=".1%")
    demo.metric("weight_on_match", float(held.on_match.mean()), label="Mean attention weight on the matching key",
                fmt=".2f")
    demo.metric("weight_on_match_before", float(held.on_match_before.mean()),
                label="Same, before training", fmt=".2f")
    demo.metric("argmax_on_match", held.argmax_right, label="Queries whose largest weight is on the matching key",
                fmt=".1%")
    demo.metric("ort_max_abs_diff", held.diff_logits, label="Max |ONNX Runtime − NumPy| logit", fmt=".1e")
    demo.metric("ort_weights_max_abs_diff", held.diff_weights,
                label="Max |ONNX Runtime − NumPy| attention weight", fmt=".1e")
    demo.metric("diag_margin", diag_margin, label="Smallest margin of own-key score over the best other key",
                fmt=".2f")
    sat = scaling.sat
    mw = sat.max_weight
    for key in ("scaled", "unscaled"):
        demo.metric(f"max_weight_{key}_dmin", mw[key][0],
                    label=f"Mean largest weight, d = {dims[0]}, {key}", fmt=".2f")
        demo.metric(f"max_weight_{key}_dmax", mw[key][-1],
                    label=f"Mean largest weight, d = {dims[-1]}, {key}", fmt=".2f")
        demo.metric(f"score_std_{key}_dmax", sat.score_std[key][-1],
                    label=f"Standard deviation of the scores, d = {dims[-1]}, {key}", fmt=".3g")
    demo.metric("jacobian_drop", scaling.jac_drop,
                label=f"Unscaled gradient size, d = {dims[0]} over d = {dims[-1]}", fmt=".1f", unit="×")


def claim_findings(demo, held: HeldOut, diag_margin: float, dims: list[int], scaling: Scaling) -> None:
    """Claims: the layer retrieves by attending to the key, ONNX agrees, and the scale matters."""
    mw = scaling.sat.max_weight
    demo.claim(
        "The trained attention layer answers held-out queries correctly (run in ONNX Runtime)",
        holds=bool(held.accuracy >= 0.99),
        accuracy=demo.number(held.accuracy, "accuracy on held-out queries", fmt=".1%"),
        chance=demo.number(1.0 / N_VALUES, "chance accuracy", fmt=".1%"),
        test_queries=demo.number(held.test.labels.size, "held-out queries"),
    )
    demo.claim(
        "It answers by attending to the matching key: the largest weight sits on that key",
        holds=bool(held.argmax_right >= 0.99 and held.on_match.mean() > 0.5),
        share_argmax_on_match=demo.number(
            held.argmax_right, "share of queries whose largest weight is on the matching key", fmt=".1%"),
        mean_weight_on_match=demo.number(float(held.on_match.mean()), "mean weight on the matching key"),
        mean_weight_before_training=demo.number(float(held.on_match_before.mean()), "the same before training"),
    )
    demo.claim(
        f"The learned query–key scores (key part) put every symbol's own key above all {N_KEYS - 1} other keys",
        holds=bool(diag_margin > 0.0),
        smallest_margin=demo.number(diag_margin, "smallest margin of a symbol's own key"),
    )
    demo.check(
        "ONNX Runtime (MatMul, Softmax) matches the NumPy forward pass",
        holds=bool(held.diff_logits < 1e-4 and held.diff_weights < 1e-5),
        max_abs_diff_logits=held.diff_logits,
        max_abs_diff_weights=held.diff_weights,
    )
    demo.claim(
        f"Without 1/√d the softmax saturates as d grows: the mean largest weight rises to "
        f"{mw['unscaled'][-1]:.2f} at d = {dims[-1]} and the gradient shrinks",
        holds=bool(mw["unscaled"][-1] > 0.9 and np.all(np.diff(mw["unscaled"]) > 0) and scaling.jac_drop > 3.0),
        max_weight_unscaled=demo.number(
            ", ".join(f"{v:.3f}" for v in mw["unscaled"]), "mean largest weight without 1/√d, by width"),
        gradient_drop=demo.number(scaling.jac_drop, "fall of the gradient across the widths (×)"),
    )
    demo.claim(
        "With 1/√d neither happens: the mean largest weight stays below 0.3 at every width and the "
        "gradient size varies by under 10%",
        holds=bool(np.all(mw["scaled"] < 0.3) and scaling.jac_spread < 0.1),
        max_weight_scaled=demo.number(
            ", ".join(f"{v:.3f}" for v in mw["scaled"]), "mean largest weight with 1/√d, by width"),
        relative_spread_gradient=demo.number(scaling.jac_spread, "relative spread of the gradient across the widths"),
    )
