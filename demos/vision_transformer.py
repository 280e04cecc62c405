"""Vision transformer: a one-block ViT reads a small image as a sequence of patches and finds,
with its class token's attention, the one patch that decides the label.

Every image is a grid of patches, each holding a dark bar of random orientation; in most images
one patch at a random place holds a light bar instead, and the label is that bar's orientation
(or "none"). The class token learns to put its attention on the light-bar patch. The same network
with the attention replaced by a plain average of the patch tokens stays far below, as it must:
no model that sees only the average patch can do much better, and a linear model on the raw
pixels does no better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import product

import numpy as np
from demolib import attention as att
from demolib import nets, plotting, vit
from matplotlib.patches import Rectangle

CLASSES = ("horizontal", "vertical", "diagonal", "anti-diagonal", "none")
SYMBOLS = ("—", "|", "╲", "╱", "none")
N_BARS = 4  # orientations; class N_BARS means "no light bar"
NOISE = 0.2  # pixel noise (standard deviation)
BATCH = 32  # training images per step
N_TEST = 2000  # held-out images
N_SHUFFLED = 200  # held-out images used for the patch-order test


@dataclass
class Images:
    images: np.ndarray  # (n, side, side)
    patches: np.ndarray  # (n, patches, patch*patch)
    labels: np.ndarray
    where: np.ndarray  # index of the light-bar patch (meaningless for "none")

    @property
    def has_bar(self) -> np.ndarray:
        return self.labels < N_BARS


@dataclass
class Results:
    """Held-out results: the ViT in ONNX Runtime, the baselines in NumPy."""
    acc: float
    acc_by_place: np.ndarray  # accuracy on images whose light bar sits at each patch position
    acc_mean: float
    acc_linear: float
    weights: np.ndarray  # class-token attention (n, 1 + patches), from ONNX Runtime
    on_bar: np.ndarray  # weight on the light-bar patch, images with a bar
    argmax_on_bar: float
    on_self: float  # mean weight the class token keeps on itself
    on_bar_before: float  # mean weight on the light-bar patch before training
    diff_logits: float
    diff_weights: float
    shuffle_gap_no_pos: float
    shuffle_gap_pos: float


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    side, patch = int(opts.get("side", 16)), int(opts.get("patch", 4))
    d, d_mlp, steps = int(opts.get("d", 16)), int(opts.get("d_mlp", 32)), int(opts.get("steps", 300))

    train = make_images(rng, steps * BATCH, side, patch)
    test = make_images(rng, N_TEST, side, patch)
    models, losses = train_models(rng, train, d, d_mlp, steps)
    models["linear"], losses["linear"] = train_linear(rng, train, steps)
    sess = demo.onnx("vision_transformer", demo.make_model(vit.export_vit(models["vit"], side, patch)))
    res = evaluate(rng, sess, models, test)
    bound = average_patch_bound((side // patch) ** 2)

    examples = pick_examples(test)
    draw_examples(demo, test, examples, side, patch)
    draw_attention(demo, test, res, examples, side // patch)
    draw_accuracy(demo, losses, res, bound)
    measure(demo, models, losses, res, bound, side, patch, d, d_mlp, steps)
    claim_findings(demo, res, bound, (side // patch) ** 2)


def bar_templates(patch: int) -> np.ndarray:
    """One bar per orientation, as a patch: a row, a column, the diagonal, the anti-diagonal."""
    t = np.zeros((N_BARS, patch, patch))
    t[0, patch // 2 - 1, :] = 1.0
    t[1, :, patch // 2 - 1] = 1.0
    t[2] = np.eye(patch)
    t[3] = np.fliplr(np.eye(patch))
    return t.reshape(N_BARS, -1)


def make_images(rng: np.random.Generator, n: int, side: int, patch: int) -> Images:
    """Every patch a dark bar of random orientation plus noise; unless the label is "none", one
    patch at a random place holds a light bar whose orientation is the label."""
    n_patches = (side // patch) ** 2
    bars = bar_templates(patch)
    labels = rng.integers(0, len(CLASSES), n)
    where = rng.integers(0, n_patches, n)
    patches = rng.normal(0.0, NOISE, (n, n_patches, patch * patch)) - bars[rng.integers(0, N_BARS, (n, n_patches))]
    lit = np.flatnonzero(labels < N_BARS)
    patches[lit, where[lit]] = rng.normal(0.0, NOISE, (lit.size, patch * patch)) + bars[labels[lit]]
    k = side // patch
    images = patches.reshape(n, k, k, patch, patch).transpose(0, 1, 3, 2, 4).reshape(n, side, side)
    return Images(images, patches, labels, where)


def train_models(rng: np.random.Generator, train: Images, d: int, d_mlp: int, steps: int):
    """The ViT and its ablation (a plain average of the patch tokens instead of the class token
    and its attention), trained on the same batches with the same settings; plus an untrained copy."""
    n_patches, d_patch = train.patches.shape[1:]
    models, losses = {}, {}
    for name, pool in (("vit", "cls"), ("mean", "mean")):
        models[name] = vit.init_vit(rng, d_patch, n_patches, d, d_mlp, len(CLASSES), pool=pool)
        if name == "vit":
            models["untrained"] = replace(models[name], **{n: p.copy() for n, p in zip(
                vit.ViT.NAMES, models[name].params(), strict=True)})

        def batch(s: int) -> tuple[np.ndarray, np.ndarray]:
            sl = slice(s * BATCH, (s + 1) * BATCH)
            return train.patches[sl], train.labels[sl]

        losses[name] = vit.train_vit(models[name], batch, steps=steps, lr=0.005, final_lr=0.0005)
    return models, losses


def train_linear(rng: np.random.Generator, train: Images, steps: int) -> tuple[list[np.ndarray], list[float]]:
    """Softmax regression on all pixels, on the same batches (Adam)."""
    n_pixels = train.images[0].size
    params = [rng.normal(0.0, 1.0 / np.sqrt(n_pixels), (n_pixels, len(CLASSES))), np.zeros(len(CLASSES))]
    opt, losses = nets.Adam(lr=0.01), []
    for s in range(steps):
        x = train.images[s * BATCH:(s + 1) * BATCH].reshape(BATCH, -1)
        loss, dlogits = nets.softmax_cross_entropy(x @ params[0] + params[1], train.labels[s * BATCH:(s + 1) * BATCH])
        opt.step(params, [x.T @ dlogits, dlogits.sum(axis=0)])
        losses.append(loss)
    return params, losses


def evaluate(rng: np.random.Generator, sess, models: dict, test: Images) -> Results:
    """Held-out images: the ViT through ONNX Runtime (checked against NumPy), the baselines in
    NumPy, and what shuffling the patches does with and without position embeddings."""
    logits, weights = (a.astype(np.float64) for a in sess.run(["logits", "weights"],
                                                               {"image": test.images.astype(np.float32)}))
    np_logits, cache = vit.vit_forward(models["vit"], test.patches)
    has = test.has_bar
    on_bar = weights[has, 1 + test.where[has]]
    argmax_on_bar = float(np.mean(weights[has, 1:].argmax(axis=1) == test.where[has]))

    right = logits.argmax(1) == test.labels
    by_place = np.array([right[has & (test.where == i)].mean() for i in range(test.patches.shape[1])])
    before = vit.vit_forward(models["untrained"], test.patches)[1]["P"][has, 1 + test.where[has]]
    acc_mean = float(np.mean(vit.vit_forward(models["mean"], test.patches)[0].argmax(1) == test.labels))
    w_lin, b_lin = models["linear"]
    acc_linear = float(np.mean((test.images.reshape(len(right), -1) @ w_lin + b_lin).argmax(1) == test.labels))

    # order-blindness: the trained ViT with its position embeddings switched off, patches shuffled
    some = test.patches[:N_SHUFFLED]
    perm = np.argsort(rng.random(some.shape[:2]), axis=1)
    shuffled = np.take_along_axis(some, perm[..., None], axis=1)

    def shuffle_gap(m: vit.ViT) -> float:
        return float(np.max(np.abs(vit.vit_forward(m, shuffled)[0] - vit.vit_forward(m, some)[0])))

    return Results(
        acc=float(right.mean()), acc_by_place=by_place, acc_mean=acc_mean, acc_linear=acc_linear,
        weights=weights, on_bar=on_bar, argmax_on_bar=argmax_on_bar, on_self=float(weights[has, 0].mean()),
        on_bar_before=float(before.mean()),
        diff_logits=float(np.max(np.abs(logits - np_logits))), diff_weights=float(np.max(np.abs(weights - cache["P"]))),
        shuffle_gap_no_pos=shuffle_gap(replace(models["vit"], use_pos=False)),
        shuffle_gap_pos=shuffle_gap(models["vit"]))


def average_patch_bound(n_patches: int) -> float:
    """Best possible accuracy of ANY model that sees only the average of the (noise-free) patches.

    The average patch is fixed by v_k = [light bar is k] - (dark bars of orientation k), k over
    the orientations (the bar shapes are linearly independent). Dark bars are multinomial over the
    orientations; a Bayes-optimal guess takes the most likely class for each v. Noise only hides
    v further, so this bounds every model of the real average patch too."""
    joint: dict[tuple[int, ...], list[float]] = {}
    for cls in range(len(CLASSES)):
        n_dark = n_patches - (cls < N_BARS)
        for head in product(range(n_dark + 1), repeat=N_BARS - 1):
            if sum(head) > n_dark:
                continue
            counts = (*head, n_dark - sum(head))
            p = math.factorial(n_dark) / math.prod(math.factorial(c) for c in counts) / N_BARS ** n_dark
            v = tuple((cls == k) - c for k, c in enumerate(counts))
            joint.setdefault(v, [0.0] * len(CLASSES))[cls] += p / len(CLASSES)
    return float(sum(max(ps) for ps in joint.values()))


def pick_examples(test: Images) -> list[int]:
    """The first held-out image of each class (the four orientations, then "none")."""
    return [int(np.flatnonzero(test.labels == k)[0]) for k in range(len(CLASSES))]


def frame(ax, where: int, k: int, size: float) -> None:
    """Frame patch ``where`` of a ``k``×``k`` grid whose cells are ``size`` units wide."""
    r, c = divmod(where, k)
    ax.add_patch(Rectangle((c * size - 0.5, r * size - 0.5), size, size, fill=False, ec="C3", lw=1.6))


def draw_examples(demo, test: Images, examples: list[int], side: int, patch: int) -> None:
    """Figure: example images with their patch grid; the light-bar patch framed."""
    k = side // patch

    @demo.figure(
        "patches",
        caption=f"Held-out images of {side}×{side} pixels, cut into a {k}×{k} grid of {patch}×{patch}-pixel "
        f"patches (blue lines), one image per class: every patch holds a dark bar, except that one patch "
        f"(framed) holds a light bar whose orientation is the label; the last image has none",
        alt=f"{len(examples)} small grey images, each divided by thin lines into {k * k} square patches. Every "
        f"patch shows a short dark line at one of {N_BARS} orientations; in the first {N_BARS} images one "
        "framed patch, at a different place in each, shows a white line instead: horizontal, vertical, "
        "diagonal, anti-diagonal. The last image has no white line.",
        size=(6.4, 1.9),
        notice="Only the framed patch decides the label, and it can sit anywhere in the image.",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, len(examples))
        for ax, i in zip(axes, examples, strict=True):
            ax.imshow(test.images[i], cmap="gray", vmin=-1.4, vmax=1.4, interpolation="nearest")
            for t in range(1, k):
                ax.axhline(t * patch - 0.5, color="C0", lw=1.0)
                ax.axvline(t * patch - 0.5, color="C0", lw=1.0)
            if test.has_bar[i]:
                frame(ax, int(test.where[i]), k, patch)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(CLASSES[test.labels[i]], fontsize="small")


def draw_attention(demo, test: Images, res: Results, examples: list[int], k: int) -> None:
    """Figure: the class token's attention over the patch grid for the same images."""
    uniform = 1 / (k * k + 1)
    on_bar = ", ".join(f"{res.weights[i, 1 + test.where[i]]:.2f}" for i in examples[:-1])

    @demo.figure(
        "cls-attention",
        caption=f"The class token's attention over the {k}×{k} patches for the same images (ONNX Runtime; "
        f"square area = weight, framed = the light-bar patch; title = the weight it keeps on itself). Over "
        f"all held-out images with a light bar it puts {res.on_bar.mean():.2f} of its weight on that patch "
        f"on average; uniform attention would give {uniform:.3f}",
        alt=f"{len(examples)} {k}-by-{k} grids of squares, one per image. In the first {N_BARS}, the framed "
        f"light-bar patch holds the one large square (weights {on_bar}), "
        "and the other squares are tiny or invisible. The last grid, for the image without "
        "a light bar, shows where the class token looks when there is nothing to find.",
        size=(6.4, 1.9),
        notice=f"The class token puts on average {res.on_bar.mean():.0%} of its attention on the one "
        f"patch that matters (uniform attention would give {uniform:.0%}).",
    )
    def _(fig) -> None:
        axes = fig.subplots(1, len(examples))
        for ax, i in zip(axes, examples, strict=True):
            att.hinton(ax, res.weights[i, 1:].reshape(k, k))
            if test.has_bar[i]:
                frame(ax, int(test.where[i]), k, 1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"self: {res.weights[i, 0]:.2f}", fontsize="small")


def draw_accuracy(demo, losses: dict, res: Results, bound: float) -> None:
    """Figure: training loss of the three models; held-out accuracy against the bound and chance."""
    names = {"vit": "ViT", "mean": "average of patches", "linear": "linear on pixels"}
    chance = 1 / len(CLASSES)

    @demo.figure(
        "accuracy",
        caption="Left: training loss of the ViT, of the same network with the attention replaced by an "
        "average of the patch tokens, and of a linear model on the pixels. Right: held-out accuracy, "
        "the best any model of the average patch could reach, and guessing",
        alt=f"Left, three loss curves over {len(losses['vit'])} steps; the ViT's falls to "
        f"{np.mean(losses['vit'][-20:]):.2g}, the other two stay near {np.mean(losses['mean'][-20:]):.2g} and "
        f"{np.mean(losses['linear'][-20:]):.2g}. Right, bars: ViT {res.acc:.0%}, average of patches "
        f"{res.acc_mean:.0%}, linear on pixels {res.acc_linear:.0%}, best possible from the average patch "
        f"{bound:.0%}, chance {chance:.0%}.",
        notice="Averaging the patches loses which patch held the light bar; attention keeps it.",
    )
    def _(fig) -> None:
        ax_loss, ax_acc = fig.subplots(1, 2, width_ratios=(1.2, 1))
        for (key, label), color in zip(names.items(), ("C0", "C1", "C2"), strict=True):
            ax_loss.plot(np.arange(1, len(losses[key]) + 1), losses[key], color=color, lw=1.1, label=label)
        plotting.plain_log_axis(ax_loss.yaxis, [0.01, 0.1, 1])
        ax_loss.set_xlabel("training step")
        ax_loss.set_ylabel("cross-entropy")
        ax_loss.legend(fontsize="small")
        labels = ["ViT", "avg.", "linear", "bound", "chance"]
        vals = [res.acc, res.acc_mean, res.acc_linear, bound, chance]
        bars = ax_acc.bar(labels, vals, color=["C0", "C1", "C2", "C1", "C7"])
        bars[3].set_alpha(0.5)
        ax_acc.bar_label(bars, [f"{v:.0%}" for v in vals], padding=2, fontsize="small")
        plotting.plain_ticks(ax_acc.yaxis, [0, 0.25, 0.5, 0.75, 1.0], fmt=lambda v: f"{v:.0%}")
        ax_acc.set_ylim(0, 1.12)
        ax_acc.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize="small")  # side by side
        ax_acc.set_ylabel("held-out accuracy")


def measure(demo, models: dict, losses: dict, res: Results, bound: float, side: int, patch: int, d: int,
            d_mlp: int, steps: int) -> None:
    """Record the set-up and the held-out numbers."""
    n_patches = (side // patch) ** 2
    demo.key_numbers("vit_accuracy", "mean_pool_accuracy", "average_patch_bound", "weight_on_bar", "uniform_weight")
    demo.setting("image_side", side, label="Image side (pixels)", fmt=".0f")
    demo.setting("patch_side", patch, label="Patch side (pixels)", fmt=".0f")
    demo.setting("n_patches", n_patches, label="Patches per image (tokens besides the class token)", fmt=".0f")
    demo.setting("n_tokens", n_patches + 1, label="Tokens the class token attends over", fmt=".0f")
    demo.setting("patch_pixels", patch * patch, label="Pixels per patch", fmt=".0f")
    demo.setting("n_classes", len(CLASSES), label="Classes (four orientations and none)", fmt=".0f")
    demo.setting("d_model", d, label="Model width d", fmt=".0f")
    demo.setting("d_mlp", d_mlp, label="MLP hidden width", fmt=".0f")
    demo.setting("n_params", models["vit"].n_used(), label="Trainable parameters of the ViT", fmt=",.0f")
    demo.setting("train_steps", steps, label=f"Training steps (Adam, {BATCH} images each)", fmt=".0f")
    demo.setting("n_train", steps * BATCH, label="Training images", fmt=",.0f")
    demo.setting("n_test", N_TEST, label="Held-out images", fmt=",.0f")
    tail = 20
    demo.metric("final_train_loss", float(np.mean(losses["vit"][-tail:])),
                label=f"ViT training loss, mean of last {tail} steps", fmt=".2g")
    demo.metric("vit_accuracy", res.acc, label="ViT held-out accuracy (ONNX Runtime)", fmt=".1%")
    demo.metric("worst_place_accuracy", float(res.acc_by_place.min()),
                label="ViT accuracy at the worst light-bar position", fmt=".1%")
    demo.metric("mean_pool_accuracy", res.acc_mean, label="Average of patch tokens instead of attention", fmt=".1%")
    demo.metric("linear_accuracy", res.acc_linear, label="Linear model on all pixels", fmt=".1%")
    demo.metric("average_patch_bound", bound, label="Best possible accuracy from the average patch", fmt=".1%")
    demo.metric("chance_accuracy", 1 / len(CLASSES), label="Guessing", fmt=".1%")
    demo.metric("weight_on_bar", float(res.on_bar.mean()), label="Mean attention weight on the light-bar patch",
                fmt=".2f")
    demo.metric("weight_on_bar_p10", float(np.quantile(res.on_bar, 0.1)),
                label="Same, 10th percentile over images", fmt=".2f")
    demo.metric("weight_on_bar_before", res.on_bar_before, label="Same, before training", fmt=".3f")
    demo.metric("weight_on_self", res.on_self, label="Mean weight the class token keeps on itself", fmt=".2f")
    demo.metric("uniform_weight", 1 / (n_patches + 1), label="Uniform attention weight", fmt=".3f")
    demo.metric("argmax_on_bar", res.argmax_on_bar, label="Images whose most-attended patch is the light bar",
                fmt=".1%")
    demo.metric("ort_max_abs_diff", res.diff_logits, label="Max |ONNX Runtime − NumPy| logit", fmt=".1e")
    demo.metric("shuffle_gap_no_pos", res.shuffle_gap_no_pos,
                label="Positions switched off: max logit change when the patches are shuffled", fmt=".1e")
    demo.metric("shuffle_gap_pos", res.shuffle_gap_pos, label="Same, with positions", fmt=".3g")


def claim_findings(demo, res: Results, bound: float, n_patches: int) -> None:
    """Findings: it classifies wherever the bar sits, by attending to it, far beyond the baselines.
    Checks: ONNX = NumPy, order-blindness without positions, the average-patch bound."""
    chance, uniform = 1 / len(CLASSES), 1 / (n_patches + 1)
    demo.claim(
        f"The one-block ViT classifies held-out images almost perfectly (run in ONNX Runtime), "
        f"wherever the light bar sits: at least 95% correct at each of the {n_patches} positions",
        holds=bool(res.acc >= 0.98 and res.acc_by_place.min() >= 0.95),
        accuracy=demo.number(res.acc, "held-out accuracy", fmt=".1%"),
        worst_position=demo.number(float(res.acc_by_place.min()), "accuracy at the worst position", fmt=".1%"),
        chance=demo.number(chance, "guessing", fmt=".1%"),
    )
    demo.claim(
        "Its class token finds the light-bar patch: that patch gets the largest weight in nearly every "
        "image and most of the attention on average, far above uniform (and above its weight before training)",
        holds=bool(res.argmax_on_bar >= 0.98 and res.on_bar.mean() > 0.7 and res.on_bar_before < 0.2),
        share_argmax_on_bar=demo.number(res.argmax_on_bar, "images whose largest patch weight is the light bar",
                                        fmt=".1%"),
        mean_weight_on_bar=demo.number(float(res.on_bar.mean()), "mean weight on the light-bar patch"),
        before_training=demo.number(res.on_bar_before, "the same before training", fmt=".3f"),
        uniform=demo.number(uniform, "uniform weight", fmt=".3f"),
    )
    demo.claim(
        "Replacing the attention by an average of the patch tokens (same training) loses most of the accuracy",
        holds=bool(res.acc - res.acc_mean > 0.35),
        vit=demo.number(res.acc, "ViT", fmt=".1%"),
        average_of_patches=demo.number(res.acc_mean, "average of patch tokens", fmt=".1%"),
        best_possible_from_average=demo.number(bound, "best possible from the average patch", fmt=".1%"),
    )
    demo.claim(
        "A linear model on all pixels, trained on the same images, does not come close either",
        holds=bool(res.acc - res.acc_linear > 0.35),
        vit=demo.number(res.acc, "ViT", fmt=".1%"),
        linear_on_pixels=demo.number(res.acc_linear, "linear model on pixels", fmt=".1%"),
    )
    demo.check(
        "With its position embeddings switched off the ViT is blind to patch order: shuffling the "
        "patches leaves its output unchanged (up to rounding); with them it does not",
        holds=bool(res.shuffle_gap_no_pos < 1e-9 and res.shuffle_gap_pos > 1e-3),
        max_change_without_positions=res.shuffle_gap_no_pos,
        max_change_with_positions=res.shuffle_gap_pos,
        images=N_SHUFFLED,
    )
    demo.check(
        "The average-of-patches model stays within the bound for any model of the average patch "
        "(up to sampling error of the held-out set)",
        holds=bool(res.acc_mean <= bound + 0.03),
        average_of_patches=demo.number(res.acc_mean, "average of patch tokens", fmt=".1%"),
        bound=demo.number(bound, "best possible from the average patch", fmt=".1%"),
    )
    demo.check(
        "ONNX Runtime (Reshape/Transpose into patches, LayerNormalization, MatMul, Softmax, Relu) "
        "matches the NumPy forward pass",
        holds=bool(res.diff_logits < 1e-4 and res.diff_weights < 1e-5),
        max_abs_diff_logits=res.diff_logits,
        max_abs_diff_weights=res.diff_weights,
    )
