"""Max-norm constraint: dropout nets trained by SGD with momentum over a range of initial learning
rates, with and without capping every unit's incoming weight vector at norm c.

Every start is trained at every rate twice, from the same weights and with the same dropout masks
and batches; the only difference is the projection after each step. The rate decays linearly to
zero, as in the dropout paper's recipe of a large initial rate with max-norm. At a high rate
dropout alone blows up; with the cap the same rate trains. The max-norm net at the high rate is
exported to ONNX (``Gemm``, ``Relu``, ``Dropout``: the constraint leaves no node, only weights
inside the ball) and run in ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, maxnorm, onnx_export, plotting
from onnx import numpy_helper

HIDDEN, P_DROP = 64, 0.5  # two hidden ReLU layers of HIDDEN units, dropout P_DROP on both
RATES = (0.05, 0.15, 0.5, 1.5)  # initial learning rates, decayed linearly to zero
HIGH = 0.5  # the high rate the findings are about
BATCH, BETA = 16, 0.9  # SGD batch size and momentum
LEARNED = 0.5  # validation loss counted as "learned" (guessing is ln 2 = 0.69)
BLOWN = 100.0  # a run "blows up" when some unit's weight norm exceeds BLOWN × c (or overflows)
ARMS = ("dropout", "maxnorm")
NAMES = {"dropout": "dropout alone", "maxnorm": "dropout + max-norm"}
COLORS = {"dropout": "C0", "maxnorm": "C1"}


@dataclass
class Sweep:
    """Validation loss and largest unit norm per (arm, rate, start); the norm's history per net."""

    val: dict[str, np.ndarray]  # (rates, starts), 99 where the loss is not finite
    wmax: dict[str, np.ndarray]  # (rates, starts), inf where the weights overflowed
    history: dict[str, np.ndarray]  # (steps, rates, starts) largest unit norm after each step
    record_steps: np.ndarray
    trained: maxnorm.DropoutNets
    block: int  # nets per arm

    def median(self, arm: str) -> np.ndarray:
        return np.median(self.val[arm], axis=1)

    def blown(self, arm: str, cap: float) -> np.ndarray:
        return ~(self.wmax[arm] <= BLOWN * cap)


def run(demo) -> None:
    opts = demo.options
    cap = float(opts.get("c", 1.5))
    steps = int(opts.get("steps", 300))
    starts = int(opts.get("starts", 4))

    data = make_data(demo.rng)
    init = maxnorm.init_dropout_nets(demo.rng, [2, HIDDEN, HIDDEN, 2], starts, P_DROP)
    sweep = train_sweep(demo.rng, init, data, cap, steps)
    ort = export_and_compare(demo, sweep, data, cap)

    draw_rate_sweep(demo, sweep, cap, steps)
    draw_norm_growth(demo, sweep, cap)
    measure(demo, sweep, ort, cap, steps, starts, len(data.y_train))
    claim_findings(demo, sweep, ort, cap)


def make_data(rng: np.random.Generator) -> datasets.Split:
    """Two noisy moons: 100 training, 200 validation and 100 test points."""
    X, y = datasets.moons(rng, 400, noise=0.3)
    return datasets.split(rng, X, y, val=0.5, test=0.25)


def train_sweep(rng: np.random.Generator, init: maxnorm.DropoutNets, data: datasets.Split, cap: float,
                steps: int) -> Sweep:
    """Every start at every rate, without and with the cap, side by side in one stack: same
    weights, batches and dropout masks for both arms; SGD with momentum, rate decayed linearly."""
    S, R = init.members, len(RATES)
    G = R * S  # nets per arm: rate-major, then start
    nets = init.tile(2 * R)
    rates = np.tile(np.repeat(RATES, S), 2)
    caps = np.repeat([np.inf, cap], G)
    opt = maxnorm.Momentum(rates, BETA)
    n = len(data.y_train)
    order, pos, history = rng.permutation(n), 0, []
    with np.errstate(all="ignore"):  # an unconstrained run may overflow: it blew up
        for step in range(steps):
            if pos + BATCH > n:
                order, pos = rng.permutation(n), 0
            idx = order[pos : pos + BATCH]
            pos += BATCH
            masks = [np.concatenate([m, m]) for m in maxnorm.dropout_masks(rng, nets, (G, BATCH))]
            logits, cache = maxnorm.forward(nets, data.X_train[idx], masks)
            _, dout = maxnorm.cross_entropy(logits, data.y_train[idx])
            opt.lr = rates * (1.0 - step / steps)
            opt.step(nets.params(), maxnorm.backward(nets, cache, dout))
            maxnorm.max_norm_project(nets, caps)
            history.append(largest_unit_norm(nets))
        val = maxnorm.cross_entropy(maxnorm.forward(nets, data.X_val)[0], data.y_val)[0]
    wmax = largest_unit_norm(nets)
    split = {arm: slice(i * G, (i + 1) * G) for i, arm in enumerate(ARMS)}
    H = np.array(history)
    return Sweep({a: np.where(np.isfinite(val[s]), val[s], 99.0).reshape(R, S) for a, s in split.items()},
                 {a: wmax[s].reshape(R, S) for a, s in split.items()},
                 {a: H[:, s].reshape(len(H), R, S) for a, s in split.items()},
                 np.arange(1, len(H) + 1), nets, G)


def largest_unit_norm(nets: maxnorm.DropoutNets) -> np.ndarray:
    """Per net, the largest incoming-weight norm of any unit in any layer (inf if it overflowed)."""
    norms = np.max([maxnorm.unit_norms(W).max(axis=1) for W in nets.weights], axis=0)
    return np.where(np.isfinite(norms), norms, np.inf)


@dataclass
class OrtResult:
    max_abs_diff: float
    test_accuracy: float
    exported_max_norm: float  # largest unit norm read back from the ONNX initializers
    n_dropout_nodes: int


def export_and_compare(demo, sweep: Sweep, data: datasets.Split, cap: float) -> OrtResult:
    """The first start's max-norm net at the high rate, in ONNX Runtime against NumPy."""
    k = sweep.block + RATES.index(HIGH) * sweep.val["maxnorm"].shape[1]
    graph = onnx_export.export_mlp(maxnorm.to_mlp(sweep.trained, k), name="mlp_maxnorm")
    sess = demo.onnx("mlp_maxnorm", demo.make_model(graph))
    z_ort = sess.run(None, {"x": data.X_test.astype(np.float32)})[0].astype(np.float64)
    z_np = maxnorm.forward(sweep.trained, data.X_test)[0][k]
    weights = [numpy_helper.to_array(t) for t in graph.initializer if t.name.startswith("W")]
    exported = max(float(np.sqrt((W.astype(np.float64) ** 2).sum(axis=0)).max()) for W in weights)
    n_drop = sum(node.op_type == "Dropout" for node in graph.node)
    return OrtResult(float(np.max(np.abs(z_ort - z_np))), float(np.mean(z_ort.argmax(axis=1) == data.y_test)),
                     exported, n_drop)


def draw_rate_sweep(demo, sweep: Sweep, cap: float, steps: int) -> None:
    """Figure: validation loss against the initial learning rate, both arms."""
    med = {a: sweep.median(a) for a in ARMS}
    text = "; ".join(f"{NAMES[a]} {', '.join(loss_text(v) for v in med[a])}" for a in ARMS)
    top = 1.2  # where a blown-up run is drawn

    @demo.figure(
        "rate-sweep",
        caption=f"Validation loss after {steps} steps against the initial learning rate (decayed linearly "
        f"to zero), dropout alone and dropout with max-norm c = {cap:g}; small markers are starts, "
        f"lines join medians, runs that blew up are drawn at the top",
        alt=f"Chart of validation cross-entropy against {len(RATES)} initial learning rates on a log axis. "
        f"Median losses: {text}. Guessing gives {np.log(2):.2f}.",
        notice="Dropout alone blows up from the third rate on; with max-norm that rate still trains.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for dx, arm in zip((0.95, 1.05), ARMS, strict=True):
            vals = np.minimum(sweep.val[arm], top)
            for j, rate in enumerate(RATES):
                ax.plot(np.full(vals.shape[1], rate * dx), vals[j], "o", color=COLORS[arm], ms=4, alpha=0.5)
            ax.plot(np.array(RATES) * dx, np.minimum(med[arm], top), "-s", color=COLORS[arm], lw=2, ms=7,
                    label=NAMES[arm])
        ax.axhline(np.log(2), color="C7", ls=":", lw=1.0, label="guessing (ln 2)")
        ax.axhline(LEARNED, color="C7", ls="--", lw=1.0, label=f"learned (below {LEARNED:g})")
        plotting.plain_log_axis(ax.xaxis, RATES, fmt="{:g}")
        ax.set_ylim(0, top + 0.05)
        ax.set_xlabel("initial learning rate (SGD, momentum)")
        ax.set_ylabel("validation loss")
        ax.set_title("Which learning rates train")
        ax.legend(loc="upper left", fontsize="small")


def draw_norm_growth(demo, sweep: Sweep, cap: float) -> None:
    """Figure: the largest unit weight norm during training at the high rate."""
    j = RATES.index(HIGH)
    hist = {a: sweep.history[a][:, j] for a in ARMS}
    blown = int(sweep.blown("dropout", cap)[j].sum())
    shown = 1e6  # norms above this (or overflowed) are drawn at this height

    @demo.figure(
        "weight-norms",
        caption=f"Largest incoming-weight norm of any unit after each step at initial rate {HIGH:g}, one "
        f"line per start (norms beyond {shown:,.0f} or overflowed are drawn at {shown:,.0f}); the dashed "
        f"line is the cap c = {cap:g}",
        alt=f"Log-scale chart of the largest unit weight norm against step. Without the constraint the "
        f"norm climbs steeply and {blown} of {hist['dropout'].shape[1]} starts blow up (beyond "
        f"{BLOWN:g} times c); with max-norm every line stays at c = {cap:g}.",
        notice="Without the cap the weights run away at this rate; with it they stay on the ball.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for arm in ARMS:
            vals = np.where(np.isfinite(hist[arm]), np.minimum(hist[arm], shown), shown)
            ax.plot(sweep.record_steps, vals, color=COLORS[arm], lw=1.4, alpha=0.8)
            ax.plot([], [], color=COLORS[arm], lw=1.4, label=NAMES[arm])
        ax.axhline(cap, color="C7", ls="--", lw=1.2, label=f"cap c = {cap:g}")
        plotting.plain_log_axis(ax.yaxis, [1, 10, 100, 1e3, 1e4, 1e5, 1e6], fmt="{:,.0f}")
        plotting.plain_log_axis(ax.xaxis, [1, 3, 10, 30, 100, 300], fmt="{:g}")
        ax.set_xlabel("training step (log scale)")
        ax.set_ylabel("largest unit weight norm")
        ax.set_title(f"Initial rate {HIGH:g}: weights run away without the cap")
        ax.legend(loc="center right", fontsize="small")


def measure(demo, sweep: Sweep, ort: OrtResult, cap: float, steps: int, starts: int, n_train: int) -> None:
    """Record the setup and the outcomes at the high rate."""
    j = RATES.index(HIGH)
    demo.key_numbers("blown_dropout_high", "val_loss_maxnorm_high", "best_val_dropout", "best_val_maxnorm",
                     "at_cap_fraction")
    demo.setting("hidden_units", HIDDEN, label="Units in each of the two hidden layers")
    demo.setting("dropout_p", P_DROP, label="Dropout probability")
    demo.setting("n_train", n_train, label="Training points")
    demo.setting("max_norm_c", cap, label="Max-norm radius c")
    demo.setting("steps", steps, label="SGD steps")
    demo.setting("batch_size", BATCH, label="Examples per batch")
    demo.setting("momentum", BETA, label="Momentum")
    demo.setting("starts", starts, label="Starts per rate and arm")
    demo.setting("n_rates", len(RATES), label="Initial learning rates in the sweep")
    demo.setting("rate_min", RATES[0], label="Smallest initial rate")
    demo.setting("rate_max", RATES[-1], label="Largest initial rate")
    demo.setting("high_rate", HIGH, label="The high initial rate")
    demo.setting("learned", LEARNED, label="Validation loss counted as learned")
    demo.setting("blown_factor", BLOWN, label="Blown up: a unit's weight norm above this many times c")
    demo.metric("val_loss_maxnorm_high", float(sweep.median("maxnorm")[j]),
                label=f"Validation loss at rate {HIGH:g}, {NAMES['maxnorm']} (median)", fmt=".2f")
    for arm in ARMS:
        demo.metric(f"best_val_{arm}", float(sweep.median(arm).min()),
                    label=f"Best median validation loss over the rates, {NAMES[arm]}", fmt=".2f")
    demo.metric("blown_dropout_high", int(sweep.blown("dropout", cap)[j].sum()),
                label=f"Starts that blew up at rate {HIGH:g}, dropout alone", fmt=".0f")
    passed = sweep.history["dropout"][:, j] > BLOWN * cap  # (steps, starts); overflow compares False
    passed |= ~np.isfinite(sweep.history["dropout"][:, j])
    first = [int(sweep.record_steps[np.argmax(col)]) for col in passed.T if col.any()]
    demo.metric("blowup_step", float(np.median(first)) if first else steps + 1.0,
                label=f"Step at which a blown-up run passed {BLOWN:g} × c (median over those runs)", fmt=".0f")
    demo.metric("at_cap_fraction", float(np.mean(largest_at_cap(sweep, cap))),
                label=f"Max-norm nets at rate {HIGH:g} with some unit on the cap", fmt=".0%")
    demo.metric("ort_max_abs_diff", ort.max_abs_diff, label="Max |ONNX Runtime − NumPy| logit", fmt=".1e")
    demo.metric("test_accuracy", ort.test_accuracy, label="Test accuracy of the exported max-norm net", fmt=".0%")


def loss_text(value: float) -> str:
    """A median validation loss for text: the number, or "blew up" for a blown-up median run."""
    return "blew up" if value >= 99.0 else f"{value:.2f}"


def largest_at_cap(sweep: Sweep, cap: float) -> np.ndarray:
    """Per start at the high rate: is some unit's norm at the cap (within rounding)?"""
    return sweep.wmax["maxnorm"][RATES.index(HIGH)] > cap * (1 - 1e-9)


def claim_findings(demo, sweep: Sweep, ort: OrtResult, cap: float) -> None:
    """Findings at the high rate; checks: the constraint holds, the export matches."""
    j = RATES.index(HIGH)
    drop, mnorm = float(sweep.median("dropout")[j]), float(sweep.median("maxnorm")[j])
    demo.claim(
        f"At initial rate {HIGH:g}, dropout alone fails: the median validation loss over starts is "
        f"above {LEARNED:g}",
        holds=bool(drop > LEARNED),
        val_loss_dropout_high=demo.number(loss_text(drop), f"Validation loss at rate {HIGH:g}, dropout alone (median)"),
        blown_dropout_high=int(sweep.blown("dropout", cap)[j].sum()),
    )
    demo.claim(
        f"At the same rate, with the same weights, batches and dropout masks, dropout with max-norm "
        f"learns: its median validation loss is below {LEARNED:g}",
        holds=bool(mnorm < LEARNED),
        val_loss_maxnorm_high=mnorm,
    )
    top = float(sweep.median("maxnorm")[-1])
    demo.claim(
        f"The cap does not make every rate safe: at the largest initial rate, {RATES[-1]:g}, even "
        f"dropout with max-norm ends with a median validation loss above {LEARNED:g}",
        holds=bool(top > LEARNED),
        val_loss_maxnorm_top=demo.number(top, f"Validation loss at rate {RATES[-1]:g}, {NAMES['maxnorm']} (median)",
                                         fmt=".2f"),
    )
    worst = max(float(np.max(maxnorm.unit_norms(W)[sweep.block:])) for W in sweep.trained.weights)
    demo.check(
        f"After training, no unit of any max-norm net has an incoming weight norm above c = {cap:g}",
        holds=bool(worst <= cap * (1 + 1e-12)),
        largest_norm=worst,
    )
    demo.check(
        "The exported max-norm net (Gemm, Relu and Dropout nodes) matches NumPy in ONNX Runtime, its "
        "Dropout nodes are the identity at inference, and its stored weights obey the cap",
        holds=bool(ort.max_abs_diff < 1e-4 and ort.n_dropout_nodes == 2 and ort.exported_max_norm <= cap * (1 + 1e-6)),
        ort_max_abs_diff=ort.max_abs_diff,
        exported_largest_norm=ort.exported_max_norm,
        dropout_nodes=ort.n_dropout_nodes,
    )
