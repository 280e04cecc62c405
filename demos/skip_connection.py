"""Skip connections: a deep plain MLP against the same net (same initial weights) with identity
skips ``a + tanh(a W + b)``: gradient at the first layer, training loss, and the ONNX Add nodes.

With 30 tanh layers the plain net's gradient at the first layer is tiny and it does not leave the
loss of guessing within the run's steps; with skips the gradient is orders of magnitude larger and
training loss falls almost to zero. A ten times smaller learning rate is shown for the first pair
only, without a claim: whether it helps the plain net depends on the start. The exported residual
graph is the plain one plus one Add node per skip.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from demolib import datasets, deepnets, nets, plotting
from matplotlib.ticker import LogLocator

THRESHOLD = 0.05  # training loss counted as "learned"
KINDS = ("plain", "residual")
COLORS = {"plain": "C0", "residual": "C1"}
NAMES = {"plain": "plain", "residual": "with skips"}


@dataclass
class Runs:
    """Both kinds of net trained from the same initial weights, for every seed."""
    rec_steps: np.ndarray  # steps at which the loss was recorded
    curves: dict[str, list[np.ndarray]]  # training loss, one curve per seed
    init_norms: dict[str, list[np.ndarray]]  # gradient norm per layer at initialization
    trained: dict[str, deepnets.Net]  # first seed
    spread: dict[str, np.ndarray]  # first seed
    slow_curves: dict[str, np.ndarray]  # first seed, smaller learning rate


@dataclass
class Summary:
    g_first: dict[str, np.ndarray]  # first-layer gradient norm at initialization, per seed
    g_ratio: np.ndarray
    final: dict[str, np.ndarray]  # final training loss, per seed
    reach_residual: np.ndarray  # steps until the residual net's loss is below THRESHOLD


@dataclass
class Exported:
    """The trained nets (first seed) run in ONNX Runtime, and the Add nodes in their graphs."""
    ort_diff: float
    accuracy: dict[str, float]
    n_add: int
    n_add_plain: int
    n_skips: int


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    depth = int(opts.get("depth", 30))
    width = int(opts.get("width", 16))
    steps = int(opts.get("steps", 50))
    n_seeds = int(opts.get("seeds", 3))
    lr = float(opts.get("lr", 0.01))
    lr_small = lr / 10

    X, y = make_data(rng)
    sizes = [2] + [width] * depth + [2]
    runs = train_pairs(rng, X, y, sizes, n_seeds, lr, lr_small, steps)
    summary = summarise(runs, steps)
    exported = export(demo, runs, X, y)

    draw_training_loss(demo, runs, summary, depth, lr, lr_small, steps)
    draw_signal_and_gradient(demo, runs, depth)
    measure(demo, runs, summary, exported, depth, width, steps, n_seeds, lr, lr_small)
    claim_findings(demo, summary, exported, steps)


def make_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy concentric circles."""
    # Two noisy concentric circles; a net of `depth` tanh layers of `width` units. Float32 keeps
    # NumPy's tanh (the main cost here) fast and is what the ONNX graphs store anyway.
    X, y = datasets.circles(rng, 96, noise=0.08)
    X = X.astype(np.float32)
    return X, y


def train_pairs(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, sizes: list[int], n_seeds: int,
                lr: float, lr_small: float, steps: int) -> Runs:
    """Train the plain and the residual net from the same initial weights, for every seed."""
    loss_fn = nets.softmax_cross_entropy
    # For each seed: one set of initial weights, trained twice with Adam: without skips (plain)
    # and with an identity skip around every width-preserving layer (residual). Nothing else
    # differs: same weights, same data, same learning rate, same number of steps.
    curves: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}
    init_norms: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}
    trained: dict[str, deepnets.Net] = {}
    spread: dict[str, np.ndarray] = {}
    slow_curves: dict[str, np.ndarray] = {}
    for s in range(n_seeds):
        init = deepnets.init_net(rng, sizes, "tanh").astype(np.float32)
        for kind in KINDS:
            net = replace(init.copy(), residual=kind == "residual")
            init_norms[kind].append(deepnets.loss_and_grads(net, X, y, loss_fn)[1].layer_norms())
            if s == 0:  # forward signal at initialization: how much each layer's output still
                # varies from one example to the next (std across examples, mean over units)
                spread[kind] = np.array([a.std(axis=0).mean() for a in deepnets.forward(net, X)[1].inputs])
            rec, losses = deepnets.train(net, X, y, loss_fn, nets.Adam(lr=lr), steps=steps)
            curves[kind].append(np.array(losses))
            if s == 0:
                trained[kind] = net
                # The same start at a ten times smaller learning rate: is the plain net merely
                # taking too large steps? (first seed only)
                slow = replace(init.copy(), residual=kind == "residual")
                slow_curves[kind] = np.array(
                    deepnets.train(slow, X, y, loss_fn, nets.Adam(lr=lr_small), steps=steps)[1])
    return Runs(np.array(rec), curves, init_norms, trained, spread, slow_curves)


def summarise(runs: Runs, steps: int) -> Summary:
    """First-layer gradients, final losses, and how fast the residual nets learn."""
    g_first = {k: np.array([v[0] for v in runs.init_norms[k]]) for k in KINDS}
    g_ratio = g_first["residual"] / g_first["plain"]
    final = {k: np.array([c[-1] for c in runs.curves[k]]) for k in KINDS}

    def steps_to(curve: np.ndarray) -> int:
        below = np.flatnonzero(curve < THRESHOLD)
        return int(runs.rec_steps[below[0]]) if below.size else steps + 1

    reach_residual = np.array([steps_to(c) for c in runs.curves["residual"]])
    return Summary(g_first, g_ratio, final, reach_residual)


def export(demo, runs: Runs, X: np.ndarray, y: np.ndarray) -> Exported:
    """Export both trained nets (first seed); the residual one has an Add node per skip."""
    trained = runs.trained
    sessions, graphs = {}, {}
    for kind, net in trained.items():
        graphs[kind] = deepnets.export_net(net, name=f"mlp_{kind}")
        sessions[kind] = demo.onnx(f"mlp_{kind}", demo.make_model(graphs[kind]))

    def logits(kind: str, inputs: np.ndarray) -> np.ndarray:
        return sessions[kind].run(None, {"x": inputs.astype(np.float32)})[0].astype(np.float64)

    ort_diff = max(float(np.max(np.abs(logits(k, X) - deepnets.predict(trained[k], X)))) for k in KINDS)
    accuracy = {k: float(np.mean(logits(k, X).argmax(axis=1) == y)) for k in KINDS}
    n_add = sum(node.op_type == "Add" for node in graphs["residual"].node)
    n_add_plain = sum(node.op_type == "Add" for node in graphs["plain"].node)
    n_skips = sum(trained["residual"].skips())
    return Exported(ort_diff, accuracy, n_add, n_add_plain, n_skips)


def draw_training_loss(demo, runs: Runs, summary: Summary, depth: int, lr: float, lr_small: float,
                       steps: int) -> None:
    """Figure: training loss of both kinds, every seed, and the first seed at the smaller rate."""
    rec_steps = runs.rec_steps
    final, slow = summary.final, runs.slow_curves

    @demo.figure(
        "training-loss",
        caption=f"Training loss of a {depth}-layer tanh network with and without identity skips: "
        f"same initial weights, Adam with learning rate {lr:g}, one solid line per seed (thin: "
        f"seeds 2 and 3); dashed: the first seed at learning rate {lr_small:g}",
        alt=f"Log-scale chart of training cross-entropy against step. After {steps} steps the plain "
        f"networks end at {final['plain'].min():.2f} to {final['plain'].max():.2f} (guessing scores "
        f"0.69), the networks with skips at {final['residual'].max():.2g} or less. At the smaller "
        f"learning rate the first plain network ends at {slow['plain'][-1]:.2f} and the first network "
        f"with skips at {slow['residual'][-1]:.2g}.",
        notice="The networks with skips train; the plain ones stay at the guessing loss.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for kind in KINDS:
            for k, curve in enumerate(runs.curves[kind]):
                ax.plot(rec_steps, curve, color=COLORS[kind], lw=1.8 if k == 0 else 1.0,
                        alpha=1.0 if k == 0 else 0.6, label=NAMES[kind] if k == 0 else None)
        for kind in KINDS:
            ax.plot(rec_steps, runs.slow_curves[kind], "--", color=COLORS[kind], lw=1.5,
                    label=f"{NAMES[kind]}, rate {lr_small:g}")
        ax.axhline(np.log(2.0), color="C7", ls=":", lw=1.2, label="guessing (ln 2)")
        plotting.plain_log_axis(ax.yaxis, [0.001, 0.01, 0.1, 1.0])
        ax.set_xlim(0, steps)
        ax.set_xlabel("training step")
        ax.set_ylabel("training loss (cross-entropy)")
        ax.set_title(f"{depth} tanh layers: only the net with skips learns")
        ax.legend(loc="lower left")


def draw_signal_and_gradient(demo, runs: Runs, depth: int) -> None:
    """Figure: forward spread and backward gradient size per layer, at initialization."""
    layers = np.arange(1, depth + 2)

    @demo.figure(
        "signal-and-gradient",
        caption="At initialization (first seed, same weights in both nets): how much each layer's "
        "input still differs between examples (left) and the size of the gradient for each "
        "layer's weights (right). Layer 1 is next to the input.",
        alt=f"Two charts against layer number 1 to {depth + 1}. Left: in the plain net the "
        "spread of the activations across examples shrinks layer by layer, while with skips it "
        "grows. Right, log scale: the gradient of every layer of the net with skips is two to "
        "three orders of magnitude larger than in the plain net.",
        size=(6.4, 4.4),
        notice="Without skips the signal fades layer by layer and the gradient is orders of magnitude smaller.",
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2)
        for kind in KINDS:
            left.plot(layers, runs.spread[kind], color=COLORS[kind], label=NAMES[kind])
            right.plot(layers, runs.init_norms[kind][0], color=COLORS[kind], label=NAMES[kind])
        left.set_ylim(bottom=0)
        left.set_xlabel("layer")
        left.set_ylabel("spread across examples")
        left.set_title("Forward: the input's trace", fontsize="medium")
        left.legend(fontsize="small")
        plotting.plain_log_axis(right.yaxis, LogLocator(numticks=6), fmt=plotting.exponent_label)
        right.set_xlabel("layer")
        right.set_ylabel("‖∂loss/∂W‖")
        right.set_title("Backward: gradient size", fontsize="medium")


def measure(demo, runs: Runs, summary: Summary, exported: Exported, depth: int, width: int, steps: int,
            n_seeds: int, lr: float, lr_small: float) -> None:
    """Record the setup, gradients, losses, accuracies and the ONNX check."""
    demo.key_numbers(
        "grad_first_layer_plain", "grad_first_layer_residual", "final_loss_plain",
        "final_loss_residual", "accuracy_plain", "accuracy_residual")
    g_first, final, slow_curves = summary.g_first, summary.final, runs.slow_curves
    demo.metric("depth", depth, label="Hidden layers", fmt=".0f")
    demo.metric("width", width, label="Units per hidden layer", fmt=".0f")
    demo.metric("steps", steps, label="Training steps (Adam)", fmt=".0f")
    demo.metric("seeds", n_seeds, label="Seeds (initial weights)", fmt=".0f")
    demo.metric("grad_first_layer_plain", float(np.median(g_first["plain"])),
                label="First-layer gradient norm at initialization, plain (median)", fmt=".2g")
    demo.metric("grad_first_layer_residual", float(np.median(g_first["residual"])),
                label="First-layer gradient norm at initialization, with skips (median)", fmt=".2g")
    demo.metric("grad_ratio_min", float(summary.g_ratio.min()),
                label="First-layer gradient, with skips ÷ plain (smallest over seeds)", fmt=".0f",
                unit="×")
    demo.metric("final_loss_plain", float(np.median(final["plain"])),
                label=f"Training loss after {steps} steps, plain (median)", fmt=".3f")
    demo.metric("final_loss_residual", float(np.median(final["residual"])),
                label=f"Training loss after {steps} steps, with skips (median)", fmt=".2g")
    demo.metric("steps_to_threshold_residual", float(np.median(summary.reach_residual)),
                label=f"Steps until the loss is below {THRESHOLD:g}, with skips (median)", fmt=".0f")
    demo.metric("lr", lr, label="Learning rate (Adam)", fmt="g")
    demo.metric("lr_small", lr_small, label="Smaller learning rate (first seed)", fmt="g")
    demo.metric("final_loss_plain_small_lr", float(slow_curves["plain"][-1]),
                label=f"Training loss after {steps} steps at the smaller rate, plain", fmt=".2f")
    demo.metric("final_loss_residual_small_lr", float(slow_curves["residual"][-1]),
                label=f"Training loss after {steps} steps at the smaller rate, with skips", fmt=".2g")
    demo.metric("accuracy_plain", exported.accuracy["plain"], label="Training accuracy in ONNX Runtime, plain",
                fmt=".0%")
    demo.metric("accuracy_residual", exported.accuracy["residual"],
                label="Training accuracy in ONNX Runtime, with skips", fmt=".0%")
    demo.metric("onnx_add_nodes", exported.n_add, label="Add nodes in the exported residual graph", fmt=".0f")
    demo.metric("ort_max_abs_diff", exported.ort_diff, label="Max |ONNX Runtime − NumPy| logit, both nets",
                fmt=".1e")


def claim_findings(demo, summary: Summary, exported: Exported, steps: int) -> None:
    """Findings: skips enlarge the gradient and only the nets with skips learn; check: one Add per skip."""
    g_first, final = summary.g_first, summary.final
    demo.claim(
        "At initialization, with the same weights, the skips make the gradient reaching the first "
        "layer at least 10 times larger, for every seed",
        holds=bool(np.all(summary.g_ratio >= 10.0)),
        grad_plain=demo.number(
            ", ".join(f"{v:.3g}" for v in g_first["plain"]), "first-layer gradient without skips, by seed"),
        grad_residual=demo.number(", ".join(f"{v:.3g}" for v in g_first["residual"]), "with skips, by seed"),
    )
    demo.claim(
        f"After {steps} steps every net with skips is below training loss {THRESHOLD:g}, while "
        "every plain net is still above 0.3 (guessing scores 0.69)",
        holds=bool(np.all(final["residual"] < THRESHOLD) and np.all(final["plain"] > 0.3)),
        final_loss_residual=demo.number(", ".join(f"{v:.3g}" for v in final["residual"]),
                                        "final training loss with skips, by seed"),
        final_loss_plain=demo.number(", ".join(f"{v:.3g}" for v in final["plain"]), "without skips, by seed"),
    )
    demo.check(
        f"The exported residual network is the plain graph plus one Add node per skip "
        f"({exported.n_skips} skips), and ONNX Runtime reproduces both nets' NumPy outputs",
        holds=bool(exported.n_add == exported.n_skips and exported.n_add_plain == 0 and exported.ort_diff < 1e-4),
        add_nodes_residual=exported.n_add,
        add_nodes_plain=exported.n_add_plain,
        max_abs_diff=exported.ort_diff,
    )
