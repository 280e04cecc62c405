"""Fine-tuning: a small MLP pretrained on a data-rich source task is adapted to a related
target task with few examples; compared with training from scratch and with freezing layers,
and the source task it forgets along the way."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import nets, onnx_export, transfer

# (label, number of top layers trained; 0 = a fresh network trained from scratch)
VARIANTS = (
    ("from scratch", 0),
    ("head only", 1),
    ("top layer + head", 2),
    ("all layers", 3),
)
LABELS = [label for label, _ in VARIANTS]
COLORS = {"from scratch": "C3", "head only": "C0", "top layer + head": "C2", "all layers": "C1"}
TAGS = {"from scratch": "scratch", "head only": "head_only", "top layer + head": "top_layer",
        "all layers": "all_layers"}
EVAL_EVERY = 20


@dataclass
class Results:
    """Target-task test scores of every variant and source-task loss of every fine-tuned body."""

    test_loss: dict[str, float]
    test_acc: dict[str, float]
    best_step: dict[str, int]  # the step early stopping kept
    src_loss: dict[str, float]  # "pretrained" and each fine-tuned variant, with the source head
    src_acc_pre: float
    ort_diff: float


def run(demo) -> None:
    opts = demo.options
    n_target = int(opts.get("n_target", 100))
    steps = int(opts.get("steps", 300))
    lr = float(opts.get("lr", 3e-4))

    setup = transfer.make_setup(demo.rng, n_target=n_target)
    models, curves = train_variants(demo.rng, setup, steps, lr)
    target_sess, source_sess, bodies = export(demo, setup.pretrained, models)
    results = evaluate(target_sess, source_sess, setup, models, bodies, curves)

    draw_validation_curves(demo, curves, n_target)
    draw_forgetting(demo, results)
    measure(demo, setup, n_target, lr, results)
    claim_findings(demo, results)


def train_variants(rng, setup, steps: int, lr: float) -> tuple[dict[str, nets.MLP], dict[str, np.ndarray]]:
    """Train every variant on the target task; keep each one's best-validation checkpoint."""
    pre = setup.pretrained
    n_classes = setup.target.n_classes

    def val_loss(model: nets.MLP) -> float:
        return transfer.cross_entropy(nets.predict(model, setup.X_val), setup.y_val)

    # Every variant starts from the same new head; all are early-stopped on the validation set
    # (the checkpoint with the lowest validation loss is kept) and reported on the test set.
    start = transfer.with_new_head(pre, n_classes, rng)
    scratch_init = nets.init_mlp(rng, pre.sizes[:-1] + [n_classes])
    models: dict[str, nets.MLP] = {}
    curves: dict[str, np.ndarray] = {}
    for label, k in VARIANTS:
        model = scratch_init.copy() if k == 0 else start.copy()
        flags = None if k in (0, len(model.weights)) else transfer.top_layers(model, k)
        # A fresh network gets the usual larger learning rate; fine-tuning a small one.
        opt = nets.Adam(lr=1e-3 if k == 0 else lr * (10.0 if k == 1 else 1.0))
        curve = transfer.fit(model, setup.X_train, setup.y_train, opt, steps=steps,
                             trainable=flags, evaluate=val_loss, eval_every=EVAL_EVERY,
                             restore_best=True)
        models[label] = model
        curves[label] = np.array(curve)
    return models, curves


def export(demo, pre: nets.MLP, models: dict[str, nets.MLP]):
    """ONNX: the target-task models side by side, and the source head on each fine-tuned body."""
    target_graph = onnx_export.export_mlps(list(models.values()), name="target_models")
    target_sess = demo.onnx("target_models", demo.make_model(target_graph))
    bodies = [pre] + [transfer.with_head_of(models[label], pre) for label, k in VARIANTS if k > 0]
    source_graph = onnx_export.export_mlps(bodies, name="source_head_on_each_body")
    source_sess = demo.onnx("source_head_on_each_body", demo.make_model(source_graph))
    return target_sess, source_sess, bodies


def evaluate(target_sess, source_sess, setup, models, bodies, curves) -> Results:
    """Score every model in ONNX Runtime on the target test set and on the source task."""
    n_classes = setup.target.n_classes
    test_out = _run_sess(target_sess, setup.X_test)
    src_out = _run_sess(source_sess, setup.X_source_val)
    np_test = np.hstack([nets.predict(m, setup.X_test) for m in models.values()])
    np_src = np.hstack([nets.predict(m, setup.X_source_val) for m in bodies])
    ort_diff = float(max(np.max(np.abs(test_out - np_test)), np.max(np.abs(src_out - np_src))))

    test_loss, test_acc, best_step = {}, {}, {}
    for j, label in enumerate(LABELS):
        logits = test_out[:, j * n_classes : (j + 1) * n_classes]
        test_loss[label] = transfer.cross_entropy(logits, setup.y_test)
        test_acc[label] = transfer.accuracy(logits, setup.y_test)
        c = curves[label]
        best_step[label] = int(c[np.argmin(c[:, 1]), 0])
    n_src = setup.source.n_classes
    src_loss = {}
    for j, name in enumerate(["pretrained"] + LABELS[1:]):
        logits = src_out[:, j * n_src : (j + 1) * n_src]
        src_loss[name] = transfer.cross_entropy(logits, setup.y_source_val)
    src_acc_pre = transfer.accuracy(src_out[:, :n_src], setup.y_source_val)
    return Results(test_loss, test_acc, best_step, src_loss, src_acc_pre, ort_diff)


def draw_validation_curves(demo, curves: dict[str, np.ndarray], n_target: int) -> None:
    """Figure: target-task validation loss of every variant during training."""

    @demo.figure(
        "validation-curves",
        caption=f"Target-task validation loss while training on {n_target} target examples. "
        "Dots mark the checkpoint early stopping keeps.",
        alt="Line chart of validation cross-entropy against training step for four runs. The "
        "network trained from scratch stays highest; the three runs that start from the "
        "pretrained weights go lower, and those that also train hidden layers go lowest.",
        notice="Every run that starts from the pretrained weights ends below training from scratch.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for label in LABELS:
            c = curves[label]
            ax.plot(c[:, 0], c[:, 1], color=COLORS[label], label=label, lw=1.8)
            i = int(np.argmin(c[:, 1]))
            ax.plot(c[i, 0], c[i, 1], "o", color=COLORS[label], ms=7)
        ax.set_xlabel("training step on the target task")
        ax.set_ylabel("validation cross-entropy")
        ax.set_ylim(bottom=min(float(c[:, 1].min()) for c in curves.values()) - 0.05,
                    top=float(curves["from scratch"][0, 1]) + 0.05)
        ax.set_title("Pretrained start vs. training from scratch")
        ax.legend(title="trained", fontsize="small")


def draw_forgetting(demo, results: Results) -> None:
    """Figure: target-task test loss beside source-task loss, per variant."""
    test_loss, src_loss = results.test_loss, results.src_loss

    @demo.figure(
        "forgetting",
        caption="Left: loss on the target task's test set after early stopping. Right: loss on "
        "the source task when the original source head is put back on each body; the dashed "
        "line is the pretrained network.",
        alt="Two horizontal bar charts. Target-task loss is highest from scratch and lower for "
        "every variant that starts from the pretrained weights. Source-task loss is unchanged "
        "when only the head is trained and grows as more layers are unfrozen.",
        size=(6.4, 3.8),
        notice="The more layers are unfrozen, the better the target task and the worse the source task.",
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2, sharey=True)
        ypos = np.arange(len(LABELS))[::-1]
        left.barh(ypos, [test_loss[label] for label in LABELS],
                  color=[COLORS[label] for label in LABELS])
        left.set_yticks(ypos, LABELS)
        left.set_xlabel("target test loss")
        left.set_title("New task")
        for y, label in zip(ypos, LABELS, strict=True):
            left.text(test_loss[label], y, f" {test_loss[label]:.2f}", va="center", fontsize="small")
        left.set_xlim(0, max(test_loss.values()) * 1.3)
        src_labels = LABELS[1:]
        right.barh(ypos[1:], [src_loss[label] for label in src_labels],
                   color=[COLORS[label] for label in src_labels])
        right.axvline(src_loss["pretrained"], color="C7", ls="--", lw=1.2, label="pretrained")
        for y, label in zip(ypos[1:], src_labels, strict=True):
            right.text(src_loss[label], y, f" {src_loss[label]:.2f}", va="center", fontsize="small")
        right.text(0.02, ypos[0], "(no source head)", va="center", fontsize="small", color="C7")
        right.set_xlim(0, max(src_loss.values()) * 1.3)
        right.set_xlabel("source-task loss")
        right.set_title("Old task")
        right.legend(loc="upper right", fontsize="small")


def measure(demo, setup, n_target: int, lr: float, results: Results) -> None:
    """Record the data sizes, each variant's scores and the source-task losses."""
    demo.key_numbers(
        "test_accuracy_scratch", "test_accuracy_head_only",
        "test_accuracy_all_layers", "source_loss_pretrained", "source_loss_all_layers")
    test_loss, test_acc, src_loss = results.test_loss, results.test_acc, results.src_loss
    sizes = setup.pretrained.sizes
    demo.setting("n_target", n_target, label="Target-task training examples", fmt=".0f")
    demo.setting("n_source", len(setup.y_source), label="Source-task training examples", fmt=",.0f")
    demo.setting("n_inputs", sizes[0], label="Inputs of the network", fmt=".0f")
    demo.setting("hidden_width", sizes[1], label="Units in each of the two hidden layers", fmt=".0f")
    demo.setting("source_classes", setup.source.n_classes, label="Classes of the source task", fmt=".0f")
    demo.setting("target_classes", setup.target.n_classes, label="Classes of the target task", fmt=".0f")
    demo.setting("lr", lr, label="Fine-tuning learning rate (all layers, top layer + head)", fmt="g")
    for label in LABELS:
        tag = TAGS[label]
        demo.metric(f"test_loss_{tag}", test_loss[label], label=f"Target test loss, {label}",
                    fmt=".3f")
        demo.metric(f"test_accuracy_{tag}", test_acc[label],
                    label=f"Target test accuracy, {label}", fmt=".1%")
        demo.metric(f"best_step_{tag}", results.best_step[label],
                    label=f"Step kept by early stopping, {label}", fmt=".0f")
    demo.metric("source_loss_pretrained", src_loss["pretrained"],
                label="Source-task loss of the pretrained network", fmt=".3f")
    demo.metric("source_accuracy_pretrained", results.src_acc_pre,
                label="Source-task accuracy of the pretrained network", fmt=".1%")
    for label in LABELS[1:]:
        demo.metric(f"source_loss_{TAGS[label]}", src_loss[label],
                    label=f"Source-task loss after fine-tuning, {label}", fmt=".3f")
    demo.metric("ort_max_abs_diff", results.ort_diff, label="Max |ONNX Runtime − NumPy| logit", fmt=".1e")


def claim_findings(demo, results: Results) -> None:
    """Claims: pretrained starts beat scratch; unfreezing more helps the target, hurts the source."""
    test_loss, test_acc, src_loss = results.test_loss, results.test_acc, results.src_loss
    demo.claim(
        "Fine-tuning from the pretrained weights beats training the same network from scratch "
        "on the target task",
        holds=bool(test_loss["all layers"] < test_loss["from scratch"]
                   and test_acc["all layers"] > test_acc["from scratch"]),
        loss_fine_tuned=demo.number(test_loss["all layers"], "test loss, fine-tuned"),
        loss_scratch=demo.number(test_loss["from scratch"], "test loss, from scratch"),
        accuracy_fine_tuned=demo.number(test_acc["all layers"], "test accuracy, fine-tuned", fmt=".1%"),
        accuracy_scratch=demo.number(test_acc["from scratch"], "test accuracy, from scratch", fmt=".1%"),
    )
    demo.claim(
        "Even training only a new head on the frozen pretrained body beats training from scratch",
        holds=bool(test_loss["head only"] < test_loss["from scratch"]),
        loss_head_only=demo.number(test_loss["head only"], "test loss, new head only"),
        loss_scratch=demo.number(test_loss["from scratch"], "test loss, from scratch"),
    )
    demo.claim(
        "Training the top hidden layer and the head does about as well as training all layers: "
        "their test losses differ by less than a quarter of what the pretrained start gains over "
        "training from scratch",
        holds=bool(abs(test_loss["top layer + head"] - test_loss["all layers"])
                   < 0.25 * (test_loss["from scratch"] - test_loss["all layers"])),
        top_layer=demo.number(test_loss["top layer + head"], "test loss, top layer and head"),
        all_layers=demo.number(test_loss["all layers"], "test loss, all layers"),
        scratch=demo.number(test_loss["from scratch"], "test loss, from scratch"),
    )
    demo.claim(
        "Fine-tuning all layers forgets part of the source task: its loss with the original head "
        "rises",
        holds=bool(src_loss["all layers"] > src_loss["pretrained"]),
        source_loss_before=demo.number(src_loss["pretrained"], "source-task loss before fine-tuning"),
        source_loss_after=demo.number(src_loss["all layers"], "source-task loss after fine-tuning all layers"),
    )
    demo.claim(
        "Each layer unfrozen moves the source task further: its loss is higher after training the "
        "top layer and head than after the head alone, and higher still after training all layers",
        holds=bool(src_loss["head only"] < src_loss["top layer + head"] < src_loss["all layers"]),
        head_only=demo.number(src_loss["head only"], "source-task loss, head only"),
        top_layer=demo.number(src_loss["top layer + head"], "source-task loss, top layer and head"),
        all_layers=demo.number(src_loss["all layers"], "source-task loss, all layers"),
    )
    demo.check(
        "Training only the head leaves the source task exactly as it was (the body is frozen)",
        holds=bool(src_loss["head only"] == src_loss["pretrained"]),
        head_only=src_loss["head only"],
        pretrained=src_loss["pretrained"],
    )
    demo.check(
        "ONNX Runtime reproduces the NumPy networks",
        holds=bool(results.ort_diff < 1e-4),
        max_abs_diff=results.ort_diff,
    )


def _run_sess(sess, X: np.ndarray) -> np.ndarray:
    """Run an ORT session on float32 inputs; float64 outputs."""
    return sess.run(None, {"x": X.astype(np.float32)})[0].astype(np.float64)
