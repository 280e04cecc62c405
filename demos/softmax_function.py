"""The softmax function: temperature, shift invariance, and how training on separable classes drives
a softmax classifier into saturation by growing its logits without bound.

Softmax regression (three classes in the plane) is trained by full-batch gradient descent and
checkpointed at every doubling of the step count. ONNX Runtime runs the final classifier with a
temperature input (``x -> Gemm -> Div(T) -> Softmax``) and a lone Softmax node fed shifted and huge
logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, nets, plotting
from demolib.graph import Graph, tensor

CENTERS = np.array([[0.0, 1.7], [-1.5, -0.9], [1.5, -0.9]])  # three well separated classes
K = len(CENTERS)
STD = 0.45
N_TRAIN, N_VAL = 60, 300
LR = 0.5
DOUBLINGS = 14  # checkpoints at steps 1, 2, 4, ..., 2**DOUBLINGS
LATE_STEP = 256  # from this step on, training counts as late
LATE = 9  # the checkpoint index of LATE_STEP (checkpoints: step 0, then 1, 2, 4, ...)
EARLY = 4  # the checkpoint index of step 8, the early map
TEMPS = np.geomspace(0.05, 20.0, 81)  # temperatures swept in ONNX Runtime
SHIFT = 1000.0  # added to every logit for the stability check
COLD, HOT = 1e-4, 1e4  # the temperatures of the limit checks
COLD_GAP = 0.01  # the cold limit is checked on points whose top two logits differ by more


@dataclass
class Run:
    """Softmax regression at every checkpoint (W stacks the weights and, last row, the biases)."""

    steps: np.ndarray  # (C,) 1, 2, 4, ...
    W: np.ndarray  # (C, 3, K)
    norm: np.ndarray  # (C,) Frobenius norm of the weight matrix (biases excluded)
    loss: np.ndarray  # (C,) training cross-entropy
    acc: np.ndarray  # (C,) training accuracy
    confidence: np.ndarray  # (C,) mean largest probability on the training points


@dataclass
class Sweep:
    """The final classifier in ONNX Runtime at every temperature (validation points)."""

    probs: np.ndarray  # (T, n, K)
    confidence: np.ndarray  # (T,) mean largest probability
    entropy: np.ndarray  # (T,) mean entropy (nats)
    accuracy: np.ndarray  # (T,)
    point: int  # the validation point whose probabilities the figure follows


def run(demo) -> None:
    data = make_data(demo.rng)
    trained = train(data)
    classifier, lone = export(demo, trained)
    sweep = temperature_sweep(classifier, data)
    checks = check_softmax(classifier, lone, trained, data, sweep)
    settle = direction_and_scale(trained, data)

    draw_temperature(demo, sweep)
    draw_saturation(demo, trained)
    draw_maps(demo, trained, data)
    measure(demo, trained, sweep, settle, checks)
    claim_findings(demo, trained, settle, checks)


def make_data(rng):
    """Three Gaussian blobs, N_TRAIN training and N_VAL validation points."""
    X, y = datasets.blobs(rng, N_TRAIN + N_VAL, centers=CENTERS, std=STD)
    return datasets.split(rng, X, y, val=N_VAL / len(y), test=0.0)


def train(data) -> Run:
    """Full-batch gradient descent on the cross-entropy, from zero weights; a checkpoint at every
    doubling of the step count."""
    Xa = np.hstack([data.X_train, np.ones((len(data.y_train), 1))])
    Y = np.eye(K)[data.y_train]
    W = np.zeros((3, K))
    saved, record = [W.copy()], [(0, *_fit_stats(nets.softmax(Xa @ W), data.y_train))]
    for step in range(1, 2**DOUBLINGS + 1):
        W -= LR * Xa.T @ (nets.softmax(Xa @ W) - Y) / len(Y)
        if step & (step - 1) == 0:  # a power of two
            saved.append(W.copy())
            record.append((step, *_fit_stats(nets.softmax(Xa @ W), data.y_train)))
    steps, loss, acc, conf = (np.array(c) for c in zip(*record, strict=True))
    Ws = np.array(saved)
    return Run(steps, Ws, np.linalg.norm(Ws[:, :2], axis=(1, 2)), loss, acc, conf)


def export(demo, trained: Run):
    """The final classifier with a temperature input, and a lone Softmax node."""
    W = trained.W[-1]
    g = Graph()
    logits = g.op("Gemm", ["x", g.const("W", W[:2]), g.const("b", W[2])], "logits")
    g.op("Softmax", [g.op("Div", [logits, "temperature"], "scaled")], "y", axis=-1)
    graph = g.build("softmax_classifier", [tensor("x", ["N", 2]), tensor("temperature", [])],
                    [tensor("y", ["N", K])], "softmax regression with a temperature")
    classifier = demo.onnx("softmax_classifier", demo.make_model(graph))
    g = Graph()
    g.op("Softmax", ["z"], "p", axis=-1)
    lone = demo.onnx("softmax", demo.make_model(g.build(
        "softmax", [tensor("z", ["N", K])], [tensor("p", ["N", K])], "a lone Softmax node")))
    return classifier, lone


def temperature_sweep(classifier, data) -> Sweep:
    """Probabilities of the final classifier at every temperature in TEMPS (from ORT)."""
    probs = np.array([_classify(classifier, data.X_val, t) for t in TEMPS]).astype(np.float64)
    conf = probs.max(axis=2).mean(axis=1)
    ent = -np.sum(probs * np.log(np.clip(probs, 1e-30, None)), axis=2).mean(axis=1)
    acc = (probs.argmax(axis=2) == data.y_val).mean(axis=1)
    # follow the validation point whose two largest probabilities at T = 1 are closest
    p1 = np.sort(_classify(classifier, data.X_val, 1.0), axis=1)
    point = int(np.argmin(p1[:, -1] - p1[:, -2]))
    return Sweep(probs, conf, ent, acc, point)


def check_softmax(classifier, lone, trained: Run, data, sweep: Sweep) -> dict[str, float]:
    """ORT against NumPy, sums, shift invariance, huge logits, and the two temperature limits."""
    W = trained.W[-1]
    z = data.X_val @ W[:2] + W[2]
    p_ort = _classify(classifier, data.X_val, 1.0).astype(np.float64)
    shifted = lone.run(None, {"z": (z + SHIFT).astype(np.float32)})[0].astype(np.float64)
    plain = lone.run(None, {"z": z.astype(np.float32)})[0].astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(z + SHIFT) / np.exp(z + SHIFT).sum(axis=1, keepdims=True)
    cold = _classify(classifier, data.X_val, COLD).astype(np.float64)
    top2 = np.sort(z, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > COLD_GAP  # points whose top two logits are not (nearly) tied
    hot = _classify(classifier, data.X_val, HOT).astype(np.float64)
    order = np.argsort(TEMPS)
    return {
        "ort_diff": float(np.max(np.abs(p_ort - nets.softmax(z)))),
        "sum_err": float(np.max(np.abs(sweep.probs.sum(axis=2) - 1.0))),
        "shift_diff": float(np.max(np.abs(shifted - plain))),
        "naive_nan": float(np.mean(~np.isfinite(naive))),
        "cold_err": float(np.max(np.abs(cold - np.eye(K)[z.argmax(axis=1)])[clear])),
        "cold_points": float(clear.sum()),
        "hot_err": float(np.max(np.abs(hot - 1.0 / K))),
        "acc_spread": float(np.ptp(sweep.accuracy)),
        "conf_monotone": float(np.all(np.diff(sweep.probs.max(axis=2)[order], axis=0) <= 1e-6)),
        "entropy_monotone": float(np.all(np.diff(sweep.entropy[order]) >= -1e-6)),
    }


def direction_and_scale(trained: Run, data) -> dict[str, float]:
    """Late in training the weights mostly grow: their direction settles, so the late model is an
    earlier one at a lower temperature (the ratio of their norms)."""
    W_late, W_end = trained.W[LATE], trained.W[-1]
    cos = float(np.sum(W_late * W_end) / (np.linalg.norm(W_late) * np.linalg.norm(W_end)))
    ratio = float(np.linalg.norm(W_end) / np.linalg.norm(W_late))
    Xa = np.hstack([data.X_val, np.ones((len(data.y_val), 1))])
    final = nets.softmax(Xa @ W_end)
    as_cooled = nets.softmax(Xa @ W_late * ratio)  # the late model at temperature 1/ratio
    late_gain = np.diff(trained.norm[LATE:])  # norm gained per doubling of the steps
    return {
        "cos": cos,
        "temperature": 1.0 / ratio,
        # mean total-variation distance from the final model's validation probabilities
        "cooled_tv": float(0.5 * np.abs(as_cooled - final).sum(axis=1).mean()),
        "late_tv": float(0.5 * np.abs(nets.softmax(Xa @ W_late) - final).sum(axis=1).mean()),
        "gain_min": float(late_gain.min()),
        "gain_max": float(late_gain.max()),
        "loss_ratio": float(np.max(trained.loss[LATE + 1:] / trained.loss[LATE:-1])),
        "first_perfect": float(trained.steps[np.argmax(trained.acc == 1.0)]) if trained.acc[-1] == 1 else -1.0,
    }


def draw_temperature(demo, sweep: Sweep) -> None:
    """Figure: one validation point's probabilities, and the mean confidence, against T."""
    p = sweep.probs[:, sweep.point]
    i1 = int(np.argmin(np.abs(TEMPS - 1.0)))

    @demo.figure(
        "temperature",
        caption="Softmax of the trained classifier's logit vector divided by a temperature T (ONNX Runtime)",
        alt=f"Left: the three class probabilities of one validation point against T on a log axis. "
        f"At T = 1 they are {', '.join(f'{v:.2f}' for v in p[i1])}; as T falls the largest goes to 1, "
        f"as T grows all three approach one third. Right: the mean largest probability over the "
        f"validation points falls from {sweep.confidence[0]:.3f} at T = {TEMPS[0]:g} to "
        f"{sweep.confidence[-1]:.2f} at T = {TEMPS[-1]:g}, while the accuracy stays at "
        f"{sweep.accuracy[0]:.1%}.",
        size=(6.4, 3.2),
        notice="Temperature changes how sure the softmax is, never which class it picks.",
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2)
        for k in range(K):
            left.plot(TEMPS, p[:, k], color=f"C{k}", label=f"class {k}")
        left.axhline(1.0 / K, ls=":", color="C7", label="1/3")
        left.set_title("one validation point", fontsize="medium")
        left.set_ylabel("probability")
        left.legend(fontsize="small")
        right.plot(TEMPS, sweep.confidence, color="C3", label="mean largest probability")
        right.plot(TEMPS, sweep.accuracy, "--", color="C7", label="accuracy")
        right.set_title("all validation points", fontsize="medium")
        right.legend(fontsize="small", loc="lower left")
        for ax in (left, right):
            plotting.plain_log_axis(ax.xaxis, [0.1, 1, 10])
            ax.axvline(1.0, color="C7", lw=0.8)
            ax.set_xlabel("temperature T")
            ax.set_ylim(0.0, 1.05)


def draw_saturation(demo, trained: Run) -> None:
    """Figure: weight norm, training loss and confidence against the step count."""
    s, first = trained.steps[1:], int(trained.steps[-1])

    @demo.figure(
        "saturation",
        caption="Gradient descent on separable classes, from zero weights: the weights keep growing "
        "and the softmax saturates (log step axis)",
        alt=f"Left: the norm of the weight matrix against the step on a log axis, rising steadily and "
        f"never levelling off, to {trained.norm[-1]:.1f} at step {first}. Right, on log axes: the "
        f"training cross-entropy falls to {trained.loss[-1]:.1e} and the distance of the mean "
        f"largest probability from 1 falls to {1 - trained.confidence[-1]:.1e}.",
        size=(6.4, 3.2),
        notice="Late in training each doubling of the steps adds about the same to the norm: it never levels off.",
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2)
        left.plot(s, trained.norm[1:], "o-", ms=3, color="C0")
        left.set_ylabel("weight norm ‖W‖")
        left.set_title("logit scale", fontsize="medium")
        right.plot(s, trained.loss[1:], "o-", ms=3, color="C1", label="training cross-entropy")
        right.plot(s, 1.0 - trained.confidence[1:], "s--", ms=3, color="C2", label="1 − mean confidence")
        right.set_yscale("log")
        right.set_title("saturation", fontsize="medium")
        right.legend(fontsize="small")
        for ax in (left, right):
            ax.set_xscale("log", base=2)
            plotting.plain_ticks(ax.xaxis, [2, 32, 512, 8192])
            ax.set_xlabel("gradient-descent step")
        plotting.plain_ticks(right.yaxis, None, plotting.exponent_label)


def draw_maps(demo, trained: Run, data) -> None:
    """Figure with a slider over the checkpoints: the largest class probability over the plane
    after that many steps, with the weight norm, loss and confidence there."""
    lo, hi = data.X_train.min(axis=0) - 0.8, data.X_train.max(axis=0) + 0.8
    gx, gy = np.linspace(lo[0], hi[0], 60), np.linspace(lo[1], hi[1], 60)
    grid = np.column_stack([a.ravel() for a in np.meshgrid(gx, gy)])
    ga = np.hstack([grid, np.ones((len(grid), 1))])
    maps = [nets.softmax(ga @ W).max(axis=1).reshape(60, 60) for W in trained.W]

    @demo.sweep(
        "maps", trained.steps, label="gradient-descent steps", fmt=".0f", default=EARLY,
        caption="Largest class probability over the plane after each checkpoint of training, from zero "
        "weights (white markers: the training points)",
        alt="A map of the plane shaded by the largest class probability, with the training points of "
        "three classes. At step 0 every point is at one third; after a few steps the probability "
        "rises smoothly from about one third at the class borders to near 1 inside each class; late "
        "in training the borders are knife-sharp and almost the whole plane is at probability 1",
        size=(6.4, 3.0), file_fmt="svg",
        notice="Step on: the borders barely move, but the probability next to them climbs towards 1 "
        "while the weight norm keeps growing.",
        numbers=lambda i: [demo.number(trained.norm[i], "weight norm", ".3g"),
                           demo.number(trained.loss[i], "training cross-entropy", ".2g"),
                           demo.number(trained.confidence[i], "mean largest probability", ".4f")],
    )
    def _(fig, i: int) -> None:
        ax = fig.subplots()
        # 40 shades, drawn at the grid's own resolution: a small image in every frame
        im = ax.imshow(np.round(maps[i] * 40) / 40, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
                       vmin=1.0 / K, vmax=1.0, cmap="viridis", aspect="auto", interpolation="none")
        for k, marker in enumerate("o^s"):
            pts = data.X_train[data.y_train == k]
            ax.scatter(pts[:, 0], pts[:, 1], s=9, marker=marker, color="w", edgecolors="k", lw=0.4)
        ax.grid(False)
        ax.set_title(f"after {trained.steps[i]} steps", fontsize="medium")
        ax.set(xlabel="x₁", ylabel="x₂")
        fig.colorbar(im, ax=ax, label="largest probability")


def measure(demo, trained: Run, sweep: Sweep, settle: dict, checks: dict) -> None:
    """Record the setup and what was measured."""
    demo.key_numbers("norm_late", "norm_final", "loss_final", "cooling_temperature", "direction_cosine")
    demo.setting("n_train", N_TRAIN, label="Training points")
    demo.setting("n_val", N_VAL, label="Validation points")
    demo.setting("n_classes", K, label="Classes")
    demo.setting("learning_rate", LR, label="Gradient-descent learning rate")
    demo.setting("steps_late", LATE_STEP, label="Step from which training counts as late")
    demo.setting("steps_early", int(trained.steps[EARLY]), label="Step of the early map")
    demo.setting("steps_final", int(trained.steps[-1]), label="Gradient-descent steps")
    demo.setting("temp_low", TEMPS[0], label="Lowest temperature swept")
    demo.setting("temp_high", TEMPS[-1], label="Highest temperature swept")
    demo.metric("first_perfect_step", settle["first_perfect"], label="First checkpoint with 100% training accuracy",
                fmt=".0f")
    demo.metric("norm_late", trained.norm[LATE], label="Weight norm at the late step", fmt=".3g")
    demo.metric("norm_final", trained.norm[-1], label="Weight norm at the end", fmt=".3g")
    demo.metric("norm_gain_min", settle["gain_min"], label="Smallest norm gain per doubling (late)", fmt=".3g")
    demo.metric("norm_gain_max", settle["gain_max"], label="Largest norm gain per doubling (late)", fmt=".3g")
    demo.metric("loss_late", trained.loss[LATE], label="Training cross-entropy at the late step", fmt=".2g")
    demo.metric("loss_final", trained.loss[-1], label="Training cross-entropy at the end", fmt=".2g")
    demo.metric("loss_ratio_max", settle["loss_ratio"], label="Largest loss ratio per doubling (late)", fmt=".3g")
    demo.metric("confidence_final", trained.confidence[-1], label="Mean largest training probability at the end",
                fmt=".5f")
    demo.metric("direction_cosine", settle["cos"], label="Cosine between late and final weights", fmt=".5f")
    demo.metric("cooling_temperature", settle["temperature"],
                label="Temperature turning the late model into the final one (norm ratio)", fmt=".3g")
    demo.metric("late_tv", settle["late_tv"], label="Late model vs final: mean total-variation distance "
                "(validation)", fmt=".2g")
    demo.metric("cooled_tv", settle["cooled_tv"], label="Late model at the cooling temperature vs final: mean "
                "total-variation distance (validation)", fmt=".2g")
    demo.metric("confidence_cold", sweep.confidence[0], label="Mean largest probability at the lowest T", fmt=".4f")
    demo.metric("confidence_hot", sweep.confidence[-1], label="Mean largest probability at the highest T", fmt=".3f")
    demo.metric("val_accuracy", sweep.accuracy[0], label="Validation accuracy (every temperature)", fmt=".1%")
    demo.metric("ort_max_diff", checks["ort_diff"], label="Max |ORT − NumPy| probability", fmt=".1e")
    demo.metric("shift_max_diff", checks["shift_diff"], label=f"Max change of ORT's softmax when {SHIFT:g} is "
                "added to every logit", fmt=".1e")
    demo.setting("shift", SHIFT, label="Constant added to every logit in the stability check")


def claim_findings(demo, trained: Run, settle: dict, checks: dict) -> None:
    """Findings: on separable data the logits grow without bound, like log t, with a settled
    direction. Checks: ORT's Softmax and the identities of the function."""
    assert trained.steps[LATE] == LATE_STEP
    demo.claim(
        "On separable classes gradient descent never stops growing the logits: late in training every "
        "doubling of the step count adds a similar amount to the weight norm (largest and smallest "
        "gain within a factor 2), i.e. the norm grows like the logarithm of the step count",
        holds=bool(settle["gain_min"] > 0 and settle["gain_max"] < 2 * settle["gain_min"]),
        norm_gain_min=settle["gain_min"], norm_gain_max=settle["gain_max"],
        norm_late=trained.norm[LATE], norm_final=trained.norm[-1],
    )
    demo.claim(
        "Meanwhile the training loss keeps falling, by at least a third with every doubling of the "
        "steps, though training accuracy reached 100% long before",
        holds=bool(settle["loss_ratio"] < 2 / 3 and 0 < settle["first_perfect"] <= trained.steps[LATE]),
        loss_ratio_max=settle["loss_ratio"], first_perfect_step=settle["first_perfect"],
        loss_final=trained.loss[-1],
    )
    demo.claim(
        "Late training mostly lowers the softmax's temperature: the direction of the weights has settled "
        "(cosine above 0.98), and dividing the late model's logits by a temperature below 1 (the ratio of "
        "the norms) brings its validation probabilities at least three times closer to the final model's",
        holds=bool(settle["cos"] > 0.98 and settle["temperature"] < 1
                   and settle["cooled_tv"] < settle["late_tv"] / 3),
        direction_cosine=settle["cos"], cooling_temperature=settle["temperature"],
        late_tv=settle["late_tv"], cooled_tv=settle["cooled_tv"],
    )
    demo.check("ONNX Runtime's Softmax matches NumPy (max difference < 1e-5) and every row sums to 1",
               holds=bool(checks["ort_diff"] < 1e-5 and checks["sum_err"] < 1e-5),
               ort_max_diff=checks["ort_diff"], sum_error=checks["sum_err"])
    demo.check(f"Shift invariance: adding {SHIFT:g} to every logit leaves ORT's softmax unchanged up to "
               "float32 rounding of the shifted logits, where a naive exp overflows to NaN",
               holds=bool(checks["shift_diff"] < 1e-3 and checks["naive_nan"] == 1.0),
               shift_max_diff=checks["shift_diff"], naive_nan_fraction=checks["naive_nan"])
    demo.check(f"Temperature limits: at T = {COLD:g} the softmax is the one-hot argmax (points whose top two "
               f"logits differ by more than {COLD_GAP:g}), at T = {HOT:g} uniform (within 0.01)",
               holds=bool(checks["cold_err"] < 1e-6 and checks["hot_err"] < 0.01),
               cold_error=checks["cold_err"], points=int(checks["cold_points"]), hot_error=checks["hot_err"])
    demo.check("Temperature never changes the predicted class; as T rises, every point's largest "
               "probability falls and the mean entropy rises",
               holds=bool(checks["acc_spread"] == 0.0 and checks["conf_monotone"] and checks["entropy_monotone"]),
               accuracy_spread=checks["acc_spread"])


def _fit_stats(p: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Cross-entropy, accuracy and mean largest probability of probabilities p for labels y."""
    return (float(-np.mean(np.log(p[np.arange(len(y)), y]))), float(np.mean(p.argmax(axis=1) == y)),
            float(p.max(axis=1).mean()))


def _classify(classifier, X: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities of the exported classifier at one temperature."""
    return classifier.run(None, {"x": X.astype(np.float32), "temperature": np.array(temperature, np.float32)})[0]
