"""Gradient clipping: tanh RNNs whose gradients explode in spikes, trained at one learning rate with
and without clipping by global norm, and at a ten times smaller rate without it.

The nets start with large recurrent weights (the regime in which backpropagation through time
multiplies the gradient by a factor above one at every step), and learn whether the sum of a
short random sequence is positive. Every start is trained three ways from the same weights with
full-batch gradient descent; all of them run side by side as one stack of nets. The first
clipped net is exported as an ONNX ``RNN`` node and run in ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import plotting, rnn

SEQ_LEN, N_SEQ, HIDDEN = 20, 64, 8  # sequences of SEQ_LEN numbers; 8 hidden tanh units
GAIN = 2.0  # recurrent weights ~ N(0, GAIN² / HIDDEN): the exploding side of the edge
ARMS = ("plain", "clipped", "slow")  # same rate without / with clipping; rate / 10 without
NAMES = {"plain": "no clipping", "clipped": "clipped", "slow": "no clipping, rate ÷ 10"}
LAST = 20  # the gradient-norm figure's alt text reports the median over the last LAST steps
COLORS = {"plain": "C0", "clipped": "C1", "slow": "C2"}


@dataclass
class Runs:
    """Every start trained three ways: losses ``(steps + 1, K)`` and gradient norms ``(steps, K)``
    before clipping, per arm; the trained stack (arms one after the other)."""

    loss: dict[str, np.ndarray]
    grad_norm: dict[str, np.ndarray]
    trained: rnn.RNNs

    def final(self, arm: str) -> np.ndarray:
        return self.loss[arm][-1]

    def spike(self, arm: str) -> np.ndarray:
        """Largest gradient norm over the median one, per start (a run stuck where the gradient is
        exactly zero gets a huge but finite ratio)."""
        return self.grad_norm[arm].max(axis=0) / np.maximum(np.median(self.grad_norm[arm], axis=0), 1e-12)


def run(demo) -> None:
    opts = demo.options
    lr = float(opts.get("lr", 0.5))
    max_norm = float(opts.get("max_norm", 1.0))
    steps = int(opts.get("steps", 150))
    starts = int(opts.get("starts", 10))

    X, y = make_data(demo.rng)
    init = rnn.init_rnns(demo.rng, starts, 1, HIDDEN, gain=GAIN)
    runs = train_three_ways(init, X, y, lr, max_norm, steps)
    sanity = check_gradients(init, X, y)
    ort = export_and_compare(demo, runs.trained, X, y)

    draw_training_loss(demo, runs, lr, max_norm)
    draw_gradient_norms(demo, runs, max_norm)
    measure(demo, runs, lr, max_norm, steps, starts, ort)
    claim_findings(demo, runs, sanity, ort)


def make_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """N_SEQ sequences of SEQ_LEN standard normal numbers (time first); label: is the sum positive?"""
    X = rng.standard_normal((SEQ_LEN, N_SEQ, 1))
    return X, (X.sum(axis=0)[:, 0] > 0).astype(np.int64)


def train_three_ways(init: rnn.RNNs, X: np.ndarray, y: np.ndarray, lr: float, max_norm: float,
                     steps: int) -> Runs:
    """Full-batch gradient descent from the same starts: rate lr unclipped, rate lr clipped at
    max_norm, rate lr/10 unclipped. One stack holds all three copies of every start."""
    K = init.members
    nets = init.tile(len(ARMS))
    caps = np.repeat([np.inf, max_norm, np.inf], K)
    rates = np.repeat([lr, lr, lr / 10], K)
    losses, norms = [], []
    for _ in range(steps):
        with np.errstate(over="ignore", invalid="ignore"):  # an unclipped run may overflow
            loss, grads, norm = loss_and_clipped_grads(nets, X, y, caps)
            for p, g in zip(nets.params(), grads, strict=True):
                p -= rates.reshape(-1, 1, 1) * g
        losses.append(loss)
        norms.append(norm)
    losses.append(rnn.logistic_loss(rnn.forward(nets, X)[0], y)[0])
    L, G = np.array(losses), np.array(norms)
    blocks = {arm: slice(i * K, (i + 1) * K) for i, arm in enumerate(ARMS)}
    return Runs({a: L[:, s] for a, s in blocks.items()}, {a: G[:, s] for a, s in blocks.items()}, nets)


def loss_and_clipped_grads(nets: rnn.RNNs, X: np.ndarray, y: np.ndarray, caps: np.ndarray):
    """Each net's loss, its gradient clipped to its cap, and the gradient's norm before clipping."""
    logits, states = rnn.forward(nets, X)
    loss, dout = rnn.logistic_loss(logits, y)
    grads, norm = rnn.clip_by_global_norm(rnn.backward(nets, X, states, dout), caps)
    return loss, grads, norm


@dataclass
class Sanity:
    fd_rel_err: float  # backpropagation through time against central differences
    norm_over_cap: float  # norm of a clipped gradient over the cap it was clipped to
    cosine: float  # between a gradient and its clipped version
    raw_norm: float


def check_gradients(init: rnn.RNNs, X: np.ndarray, y: np.ndarray) -> Sanity:
    """BPTT against finite differences on a few recurrent weights; what clipping does to one gradient."""
    net = rnn.RNNs(*(p[:1].copy() for p in init.params()))
    _, grads, raw = loss_and_clipped_grads(net, X, y, np.array([np.inf]))
    errs, eps = [], 1e-6
    for i, j in ((0, 0), (2, 5), (7, 3)):
        old = net.R[0, i, j]
        net.R[0, i, j] = old + eps
        up = rnn.logistic_loss(rnn.forward(net, X)[0], y)[0][0]
        net.R[0, i, j] = old - eps
        down = rnn.logistic_loss(rnn.forward(net, X)[0], y)[0][0]
        net.R[0, i, j] = old
        errs.append(abs((up - down) / (2 * eps) - grads[1][0, i, j]) / abs(grads[1][0, i, j]))
    cap = raw[0] / 4  # a cap the gradient exceeds
    clipped, _ = rnn.clip_by_global_norm(grads, np.array([cap]))
    flat, flat_c = (np.concatenate([g.ravel() for g in gs]) for gs in (grads, clipped))
    cosine = float(flat @ flat_c / (np.linalg.norm(flat) * np.linalg.norm(flat_c)))
    return Sanity(max(errs), float(np.linalg.norm(flat_c)) / cap, cosine, float(raw[0]))


@dataclass
class OrtResult:
    max_abs_diff: float
    accuracy: float


def export_and_compare(demo, trained: rnn.RNNs, X: np.ndarray, y: np.ndarray) -> OrtResult:
    """The first start's clipped net as an ONNX RNN node; ONNX Runtime against NumPy."""
    member = trained.members // len(ARMS)  # first net of the "clipped" block
    sess = demo.onnx("rnn_clipped", demo.make_model(rnn.export_rnn(trained, member, name="rnn_clipped")))
    z_ort = sess.run(None, {"x": X.astype(np.float32)})[0][:, 0].astype(np.float64)
    z_np = rnn.forward(trained, X)[0][member, :, 0]
    return OrtResult(float(np.max(np.abs(z_ort - z_np))), float(np.mean((z_ort > 0) == y)))


def draw_training_loss(demo, runs: Runs, lr: float, max_norm: float) -> None:
    """Figure: training loss of every start, three ways; medians bold."""
    med = {a: float(np.median(runs.final(a))) for a in ARMS}

    @demo.figure(
        "training-loss",
        caption=f"Training loss of {runs.final('plain').size} starts of a tanh RNN, each trained three "
        f"ways from the same weights: learning rate {lr:g} without and with clipping at norm "
        f"{max_norm:g}, and rate {lr / 10:g} without; thin lines are starts, thick lines medians",
        alt=f"Line chart of training cross-entropy against step. Median final loss: {med['plain']:.2f} "
        f"without clipping, {med['clipped']:.2f} with clipping and {med['slow']:.2f} at the ten times "
        f"smaller rate. The unclipped curves jump up and down; the clipped ones fall more steadily.",
        notice="At the same learning rate the clipped runs settle lower; the unclipped ones jump after spikes.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        steps = np.arange(runs.loss["plain"].shape[0])
        for arm in ARMS:
            curves = np.minimum(runs.loss[arm], 3.0)
            if arm != "slow":
                ax.plot(steps, curves, color=COLORS[arm], lw=0.7, alpha=0.35)
            ax.plot(steps, np.median(curves, axis=1), color=COLORS[arm], lw=2.4,
                    ls="--" if arm == "slow" else "-", label=f"{NAMES[arm]}: median {med[arm]:.2f}")
        ax.axhline(np.log(2), color="C7", ls=":", lw=1.0, label="guessing (ln 2)")
        ax.set_ylim(0, 1.5)
        ax.set_xlabel("training step (full batch)")
        ax.set_ylabel("training loss (cross-entropy)")
        ax.set_title(f"Same rate {lr:g}: clipping keeps training on course")
        ax.legend(loc="upper right", fontsize="small")


def draw_gradient_norms(demo, runs: Runs, max_norm: float) -> None:
    """Figure: the gradient norm at every step of a typical start (the median spike ratio)."""
    order = np.argsort(runs.spike("plain"))
    k = int(order[len(order) // 2])
    g = runs.grad_norm
    ratio = float(runs.spike("plain")[k])

    @demo.figure(
        "gradient-norms",
        caption=f"Gradient norm before clipping at every step of one start (a typical one: its spike "
        f"ratio is the median of the {order.size} starts); the dashed line is the clipping threshold {max_norm:g}",
        alt=f"Log-scale line chart of the gradient norm against step. Without clipping the norm "
        f"mostly stays near {np.median(g['plain'][:, k]):.2g} but spikes to {g['plain'][:, k].max():.3g}, "
        f"{ratio:.0f} times its median; over the last {LAST} steps its median is "
        f"{np.median(g['plain'][-LAST:, k]):.2g}. The clipped run's gradient often crosses the line, "
        f"and every such step is scaled down to it.",
        notice="The gradient is usually small but now and then explodes by orders of magnitude.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for arm in ("plain", "clipped"):
            ax.plot(np.arange(1, g[arm].shape[0] + 1), g[arm][:, k], color=COLORS[arm], lw=1.3,
                    label=NAMES[arm])
        ax.axhline(max_norm, color="C7", ls="--", lw=1.2, label=f"threshold {max_norm:g}")
        plotting.plain_log_axis(ax.yaxis, [0.01, 0.1, 1, 10, 100, 1000])
        ax.set_ylim(max(min(g["plain"][:, k].min(), g["clipped"][:, k].min()) / 2, 1e-3), None)
        ax.set_xlabel("training step")
        ax.set_ylabel("gradient norm before clipping")
        ax.set_title(f"A typical start: spikes up to {ratio:.0f}× the median")
        ax.legend(loc="lower left", fontsize="small")


def measure(demo, runs: Runs, lr: float, max_norm: float, steps: int, starts: int, ort: OrtResult) -> None:
    """Record the setup, final losses, spikes and how often clipping acted."""
    demo.key_numbers("final_loss_plain", "final_loss_clipped", "final_loss_slow", "spike_ratio_median",
                     "clipped_fraction")
    demo.setting("seq_len", SEQ_LEN, label="Numbers per sequence")
    demo.setting("n_sequences", N_SEQ, label="Training sequences")
    demo.setting("hidden_units", HIDDEN, label="Hidden tanh units")
    demo.setting("gain", GAIN, label="Scale of the initial recurrent weights (gain)")
    demo.setting("starts", starts, label="Starts (initial weights), each trained three ways")
    demo.setting("ways", len(ARMS), label="Ways each start is trained")
    demo.setting("steps", steps, label="Full-batch gradient steps")
    demo.setting("learning_rate", lr, label="Learning rate")
    demo.setting("slow_learning_rate", lr / 10, label="Smaller learning rate (no clipping)")
    demo.setting("max_norm", max_norm, label="Clipping threshold (global norm)")
    demo.metric("initial_loss", float(np.median(runs.loss["plain"][0])), label="Training loss at the start (median)",
                fmt=".3f")
    for arm, label in (("plain", "no clipping"), ("clipped", "clipped"), ("slow", "no clipping, rate ÷ 10")):
        demo.metric(f"final_loss_{arm}", float(np.median(runs.final(arm))),
                    label=f"Final training loss, {label} (median over starts)", fmt=".3f")
    demo.metric("clip_wins", int(np.sum(runs.final("clipped") < runs.final("plain"))),
                label="Starts that end lower with clipping than without", fmt=".0f")
    demo.metric("spike_ratio_median", float(np.median(runs.spike("plain"))),
                label="Largest over median gradient norm without clipping (median start)", fmt=".0f", unit="×")
    demo.metric("clipped_fraction", float(np.mean(runs.grad_norm["clipped"] > max_norm)),
                label="Steps on which clipping acted", fmt=".0%")
    demo.metric("ort_max_abs_diff", ort.max_abs_diff, label="Max |ONNX Runtime − NumPy| logit", fmt=".1e")
    demo.metric("ort_accuracy", ort.accuracy, label="Training accuracy of the exported clipped net", fmt=".0%")


def claim_findings(demo, runs: Runs, sanity: Sanity, ort: OrtResult) -> None:
    """Findings: spikes, clipping wins at the same rate and beats a smaller rate; checks: BPTT, clipping, ORT."""
    spike = float(np.median(runs.spike("plain")))
    demo.claim(
        "Without clipping the gradient explodes in rare spikes: in the median start the largest "
        "gradient norm is more than five times the median one",
        holds=bool(spike > 5),
        spike_ratio_median=spike,
    )
    fin = {a: float(np.median(runs.final(a))) for a in ARMS}
    demo.claim(
        "At the same learning rate, clipping by global norm ends training lower: the median final "
        "training loss over starts is lower with clipping than without",
        holds=bool(fin["clipped"] < fin["plain"]),
        final_loss_clipped=fin["clipped"],
        final_loss_plain=fin["plain"],
    )
    demo.claim(
        "A ten times smaller learning rate without clipping is no substitute: after the same number "
        "of steps its median final loss is higher than the clipped runs'",
        holds=bool(fin["clipped"] < fin["slow"]),
        final_loss_clipped=fin["clipped"],
        final_loss_slow=fin["slow"],
    )
    demo.check(
        "Backpropagation through time matches central finite differences (three recurrent weights, "
        "relative error below 1e-5)",
        holds=bool(sanity.fd_rel_err < 1e-5),
        max_relative_error=sanity.fd_rel_err,
    )
    demo.check(
        "Clipping by global norm keeps the gradient's direction (cosine 1) and sets its norm to the threshold",
        holds=bool(abs(sanity.cosine - 1) < 1e-12 and abs(sanity.norm_over_cap - 1) < 1e-12),
        cosine=sanity.cosine,
        norm_after_over_threshold=sanity.norm_over_cap,
        norm_before=sanity.raw_norm,
    )
    demo.check(
        "The ONNX RNN node in ONNX Runtime matches the NumPy forward pass of the exported net",
        holds=bool(ort.max_abs_diff < 1e-4),
        ort_max_abs_diff=ort.max_abs_diff,
    )
