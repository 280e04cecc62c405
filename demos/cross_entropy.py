"""Cross-entropy against squared error on a classifier's probability: the gradient at confident
mistakes, and what it does to training.

Logistic regression on two overlapping classes is trained by gradient descent under both losses,
once from a start that is confidently wrong on most points and once from small random weights.
ONNX Runtime runs a graph of the two losses (their gradients by finite differences) and the four
trained classifiers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, nets, onnx_export, plotting
from demolib.graph import Graph, tensor

LOSSES = {"ce": "cross-entropy", "se": "squared error"}
STARTS = {"wrong": "confidently wrong start", "small": "small random start"}
N_TRAIN, N_VAL = 200, 400
STEPS = 3000
LR = 1.0
WRONG_SCALE = 8.0  # norm of the flipped start's weights (biases aside)
TARGET = 0.8  # "trained": training accuracy above this
MARGINS = np.linspace(-8.0, 8.0, 33)  # margins (2y - 1) z at which the loss graph is probed
H = 1e-2  # finite-difference step in ONNX Runtime (float32)


@dataclass
class Runs:
    """Every run's weights (w1, w2, bias) at the end and its training accuracy per step."""

    w: dict[tuple[str, str], np.ndarray]  # (start, loss) -> (3,)
    acc: dict[tuple[str, str], np.ndarray]  # (start, loss) -> (STEPS + 1,)
    w_start: dict[str, np.ndarray]


def run(demo) -> None:
    data = make_data(demo.rng)
    runs = train(demo.rng, data)
    loss_graph, classifiers = export(demo, runs)
    probe = probe_losses(loss_graph)
    start_grads = gradients_at_start(runs, data)
    scores = score(classifiers, runs, data)
    soft = soft_target_identity(demo.rng)

    draw_gradients(demo, probe)
    draw_training(demo, runs)
    measure(demo, runs, scores, start_grads, probe)
    claim_findings(demo, runs, scores, start_grads, probe, soft)


def make_data(rng):
    """Two overlapping Gaussian classes at (±1, 0), standard deviation 0.8."""
    X, y = datasets.blobs(rng, N_TRAIN + N_VAL, std=0.8)
    return datasets.split(rng, X, y, val=N_VAL / len(y), test=0.0)


def train(rng, data) -> Runs:
    """Gradient descent under both losses from two starts: the least-squares direction flipped and
    scaled to WRONG_SCALE (confidently wrong on most points), and small random weights."""
    Xa = _with_ones(data.X_train)
    w_ls = np.linalg.lstsq(Xa, 2.0 * data.y_train - 1.0, rcond=None)[0]
    starts = {"wrong": -WRONG_SCALE * w_ls / np.linalg.norm(w_ls[:2]), "small": 0.01 * rng.standard_normal(3)}
    w_end, acc = {}, {}
    for start, w0 in starts.items():
        for loss in LOSSES:
            w_end[start, loss], acc[start, loss] = _descend(Xa, data.y_train, w0, loss)
    return Runs(w_end, acc, starts)


def export(demo, runs: Runs):
    """The two losses as one ONNX graph of logits and labels, and the four trained classifiers
    side by side (x -> Gemm -> Sigmoid)."""
    g = Graph()
    sign = g.op("Sub", [g.op("Mul", ["y", g.const("two", np.float32(2.0))], "two_y"),
                        g.const("one", np.float32(1.0))], "sign")  # 2y - 1
    margin = g.op("Mul", [sign, "z"], "margin")
    g.op("Softplus", [g.op("Neg", [margin], "neg_margin")], "ce")  # -log sigmoid(margin)
    err = g.op("Sub", [g.op("Sigmoid", ["z"], "p"), "y"], "err")
    g.op("Mul", [err, err], "se")
    graph = g.build("losses", [tensor("z", ["N"]), tensor("y", ["N"])], [tensor("ce", ["N"]), tensor("se", ["N"])],
                    "per-example cross-entropy and squared error of the probability sigmoid(z)")
    loss_graph = demo.onnx("losses", demo.make_model(graph))
    keys = [(start, loss) for start in STARTS for loss in LOSSES]
    classifiers = demo.onnx("classifiers", demo.make_model(onnx_export.export_mlps(
        [_as_net(runs.w[k]) for k in keys], head="sigmoid", name="classifiers")))
    return loss_graph, classifiers


def probe_losses(loss_graph) -> dict[str, np.ndarray]:
    """Both losses at class-1 examples with logit z = margin, and their gradients dL/dz by central
    differences in ONNX Runtime, next to the closed forms p - y and 2 (p - y) p (1 - p)."""
    y = np.ones_like(MARGINS, dtype=np.float32)

    def losses(z):
        return loss_graph.run(None, {"z": z.astype(np.float32), "y": y})

    ce, se = (a.astype(np.float64) for a in losses(MARGINS))
    up, down = losses(MARGINS + H), losses(MARGINS - H)
    p = nets.sigmoid(MARGINS)
    return {
        "ce": ce, "se": se,
        "grad_ce": (up[0] - down[0]).astype(np.float64) / (2 * H),
        "grad_se": (up[1] - down[1]).astype(np.float64) / (2 * H),
        "exact_ce": p - 1.0, "exact_se": 2.0 * (p - 1.0) * p * (1.0 - p),
    }


def gradients_at_start(runs: Runs, data) -> dict[str, float]:
    """At the confidently wrong start: the mean |dL/dz| over the misclassified training points."""
    z = _with_ones(data.X_train) @ runs.w_start["wrong"]
    p, y = nets.sigmoid(z), data.y_train
    wrong = (z > 0) != (y == 1)
    return {
        "frac_wrong": float(wrong.mean()),
        "ce": float(np.mean(np.abs(p - y)[wrong])),
        "se": float(np.mean(np.abs(2 * (p - y) * p * (1 - p))[wrong])),
    }


def score(classifiers, runs: Runs, data) -> dict:
    """Validation accuracy of the four classifiers (ONNX Runtime), steps to TARGET accuracy, and
    ORT against NumPy."""
    keys = [(start, loss) for start in STARTS for loss in LOSSES]
    probs = classifiers.run(None, {"x": data.X_val.astype(np.float32)})[0].astype(np.float64)
    numpy = np.column_stack([nets.sigmoid(_with_ones(data.X_val) @ runs.w[k]) for k in keys])
    reached = {k: np.flatnonzero(runs.acc[k] > TARGET) for k in keys}
    return {
        "val_acc": {k: float(np.mean((probs[:, i] > 0.5) == data.y_val)) for i, k in enumerate(keys)},
        "steps": {k: int(r[0]) if r.size else STEPS + 1 for k, r in reached.items()},
        "ort_diff": float(np.max(np.abs(probs - numpy))),
    }


def soft_target_identity(rng) -> float:
    """Cross-entropy with soft targets q equals the entropy of q plus KL(q || p): largest gap over
    random pairs of distributions."""
    q = rng.dirichlet(np.ones(4), size=50)
    p = rng.dirichlet(np.ones(4), size=50)
    ce = -np.sum(q * np.log(p), axis=1)
    return float(np.max(np.abs(ce - (-np.sum(q * np.log(q), axis=1) + np.sum(q * np.log(q / p), axis=1)))))


def draw_gradients(demo, probe: dict) -> None:
    """Figure: both losses and their gradients against the margin, from ONNX Runtime."""
    i = int(np.argmin(MARGINS))

    @demo.figure(
        "gradients",
        caption="Per-example loss and its gradient with respect to the logit, against the margin "
        "(logit signed by the true class); markers: finite differences in ONNX Runtime",
        alt=f"Left: cross-entropy grows without bound as the margin falls below zero, to "
        f"{probe['ce'][i]:.1f} at margin {MARGINS[i]:g}, while squared error levels off at "
        f"{probe['se'][i]:.2f}. Right: at margin {MARGINS[i]:g} the cross-entropy gradient has size "
        f"{abs(probe['grad_ce'][i]):.3f}, close to its maximum of 1, while the squared-error gradient "
        f"is {abs(probe['grad_se'][i]):.1e}: the more confident the mistake, the less squared error "
        "corrects it.",
        size=(6.4, 3.2),
        notice="At a confident mistake (far left) cross-entropy pulls hardest; squared error hardly pulls at all.",
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2, sharex=True)
        for c, key in enumerate(LOSSES):
            left.plot(MARGINS, probe[key], color=f"C{c}", label=LOSSES[key])
            right.plot(MARGINS, np.abs(probe[f"exact_{key}"]), color=f"C{c}", label=LOSSES[key])
            right.plot(MARGINS[::2], np.abs(probe[f"grad_{key}"][::2]), "o", ms=3.5, color=f"C{c}")
        left.set_ylabel("loss")
        left.set_title("loss", fontsize="medium")
        left.legend(fontsize="small")
        right.set_ylabel("|dL/dz|")
        right.set_title("gradient at the logit", fontsize="medium")
        for ax in (left, right):
            ax.axvline(0.0, color="C7", lw=0.8)
            ax.set_xlabel("margin (2y − 1) z")
        right.text(-7.5, 0.55, "confident\nmistakes", fontsize="small", color="C7")


def draw_training(demo, runs: Runs) -> None:
    """Figure: training accuracy against the step for the four runs."""
    steps = np.unique(np.geomspace(1, STEPS, 300).round().astype(int))  # even on the log axis
    reach = {k: np.flatnonzero(a > TARGET) for k, a in runs.acc.items()}
    first = {k: int(r[0]) if r.size else STEPS + 1 for k, r in reach.items()}

    @demo.figure(
        "training",
        caption=f"Training accuracy during gradient descent (learning rate {LR:g}), from a confidently "
        "wrong start and from a small random start (log step axis)",
        alt=f"From the confidently wrong start, cross-entropy passes {TARGET:.0%} training accuracy "
        f"after {first['wrong', 'ce']} steps; squared error stays stuck far below for a long plateau "
        f"and passes it only after {first['wrong', 'se']} steps. From the small start both are above it "
        f"from the first steps on (after {max(first['small', 'ce'], first['small', 'se'])} at most).",
        notice="From a confidently wrong start, squared error sits on a long plateau; cross-entropy escapes at once.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for c, loss in enumerate(LOSSES):
            for start, style in (("wrong", "-"), ("small", ":")):
                ax.plot(steps, runs.acc[start, loss][steps], style, color=f"C{c}",
                        label=f"{LOSSES[loss]}, {STARTS[start]}")
        ax.axhline(TARGET, color="C7", lw=0.8)
        ax.set_xscale("log")
        plotting.plain_ticks(ax.xaxis, [1, 10, 100, 1000])
        ax.set_xlabel("gradient-descent step")
        ax.set_ylabel("training accuracy")
        ax.set_ylim(0.0, 1.0)
        ax.legend(fontsize="small", loc="center left")


def measure(demo, runs: Runs, scores: dict, start_grads: dict, probe: dict) -> None:
    """Record the setup and what was measured."""
    demo.key_numbers("steps_wrong_ce", "steps_wrong_se", "grad_start_ce", "grad_start_se")
    demo.setting("n_train", N_TRAIN, label="Training points")
    demo.setting("n_val", N_VAL, label="Validation points")
    demo.setting("steps", STEPS, label="Gradient-descent steps")
    demo.setting("learning_rate", LR, label="Learning rate")
    demo.setting("wrong_scale", WRONG_SCALE, label="Weight norm of the confidently wrong start")
    demo.setting("target_accuracy", TARGET, label="Training accuracy counted as trained", fmt=".0%")
    demo.metric("frac_wrong_start", start_grads["frac_wrong"], label="Training points misclassified at the "
                "wrong start", fmt=".0%")
    demo.metric("grad_start_ce", start_grads["ce"], label="Mean |dL/dz| on them, cross-entropy", fmt=".3f")
    demo.metric("grad_start_se", start_grads["se"], label="Mean |dL/dz| on them, squared error", fmt=".2g")
    for (start, loss), steps in scores["steps"].items():
        demo.metric(f"steps_{start}_{loss}", steps, label=f"Steps to {TARGET:.0%} training accuracy, "
                    f"{LOSSES[loss]}, {STARTS[start]}", fmt=".0f")
        demo.metric(f"val_acc_{start}_{loss}", scores["val_acc"][start, loss],
                    label=f"Validation accuracy, {LOSSES[loss]}, {STARTS[start]}", fmt=".1%")
    i = int(np.argmin(MARGINS))
    demo.metric("margin_min", MARGINS[i], label="Most negative margin probed", fmt="g")
    demo.metric("grad_ce_far", abs(probe["exact_ce"][i]), label="|dL/dz| there, cross-entropy", fmt=".4f")
    demo.metric("grad_se_far", abs(probe["exact_se"][i]), label="|dL/dz| there, squared error", fmt=".1e")
    demo.metric("ort_max_diff", scores["ort_diff"], label="Max |ORT − NumPy| probability", fmt=".1e")


def claim_findings(demo, runs: Runs, scores: dict, start_grads: dict, probe: dict, soft: float) -> None:
    """Findings: squared error stalls at confident mistakes, cross-entropy does not; from a small
    start both end alike. Checks: ORT gradients and probabilities, soft-target identity."""
    steps, val = scores["steps"], scores["val_acc"]
    demo.claim(
        f"From a confidently wrong start, squared error needs at least ten times as many steps as "
        f"cross-entropy to pass {TARGET:.0%} training accuracy",
        holds=bool(steps["wrong", "se"] >= 10 * steps["wrong", "ce"]),
        steps_wrong_ce=steps["wrong", "ce"], steps_wrong_se=steps["wrong", "se"],
    )
    demo.claim(
        "From a small random start the choice hardly matters: both pass it within a few steps (at most "
        "five) and end within two points of validation accuracy of each other",
        holds=bool(max(steps["small", "ce"], steps["small", "se"]) <= 5
                   and abs(val["small", "ce"] - val["small", "se"]) <= 0.02),
        steps_small_ce=steps["small", "ce"], steps_small_se=steps["small", "se"],
        val_acc_small_ce=val["small", "ce"], val_acc_small_se=val["small", "se"],
    )
    demo.claim(
        "Both losses end at a similar fit even from the wrong start (validation accuracies within two points): "
        "squared error is slow there, not wrong",
        holds=bool(abs(val["wrong", "ce"] - val["wrong", "se"]) <= 0.02),
        val_acc_wrong_ce=val["wrong", "ce"], val_acc_wrong_se=val["wrong", "se"],
    )
    demo.check(
        "At the wrong start, on the misclassified points, the cross-entropy gradient at the logit is near "
        "its maximum size 1 (mean above 0.9) and the squared-error gradient near 0 (mean below 0.1)",
        holds=bool(start_grads["ce"] > 0.9 and start_grads["se"] < 0.1),
        grad_start_ce=start_grads["ce"], grad_start_se=start_grads["se"],
        frac_wrong_start=start_grads["frac_wrong"],
    )
    err = max(float(np.max(np.abs(probe[f"grad_{k}"] - probe[f"exact_{k}"]))) for k in LOSSES)
    demo.check(
        "Finite differences of ONNX Runtime's loss graph match the closed-form gradients p − y and "
        "2 (p − y) p (1 − p) (within 1e-3)",
        holds=bool(err < 1e-3), max_error=err,
    )
    demo.check("ONNX Runtime's probabilities equal NumPy's for the four classifiers (within 1e-5)",
               holds=bool(scores["ort_diff"] < 1e-5), ort_max_diff=scores["ort_diff"])
    demo.check("With soft targets q, cross-entropy H(q, p) equals the entropy H(q) plus KL(q ‖ p)",
               holds=bool(soft < 1e-12), max_error=soft)


def _descend(Xa: np.ndarray, y: np.ndarray, w0: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """STEPS full-batch gradient-descent steps on the mean loss; training accuracy before each step
    and at the end."""
    w = w0.copy()
    acc = np.empty(STEPS + 1)
    for s in range(STEPS + 1):
        z = Xa @ w
        acc[s] = np.mean((z > 0) == (y == 1))
        if s == STEPS:
            break
        p = nets.sigmoid(z)
        g = p - y if loss == "ce" else 2.0 * (p - y) * p * (1.0 - p)
        w -= LR * Xa.T @ g / len(y)
    return w, acc


def _with_ones(X: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.ones((len(X), 1))])


def _as_net(w: np.ndarray) -> nets.MLP:
    """Logistic regression (w1, w2, bias) as a 2 -> 1 network without hidden layers."""
    return nets.MLP([w[:2].reshape(2, 1)], [w[2:3].copy()], "tanh")
