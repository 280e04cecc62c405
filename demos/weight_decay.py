"""Weight decay on a small tanh MLP: a λ sweep, and coupled L2 versus decoupled decay.

The same network is trained with AdamW for a range of decay strengths λ: the weight norm shrinks
as λ grows and a middle λ validates best. Then L2 in the loss is set against decoupled weight decay
at one λ: identical under plain SGD, different under Adam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, nets, onnx_export, plotting
from matplotlib.ticker import LogLocator

LAMBDAS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
NOISE = 0.3
LAM_CMP, CHUNK, N_CHUNKS = 0.1, 10, 30  # coupled vs decoupled: one λ, compared every CHUNK steps


@dataclass
class Sweep:
    """The λ sweep, as predicted by ONNX Runtime: column k is the net trained with lambdas[k]."""
    norms: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray
    test_loss: np.ndarray
    grid: np.ndarray
    grid_pred: np.ndarray
    ort_diff: float
    i_best: int
    shown: list[int]  # columns to draw: no decay, the best, the largest λ


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    lambdas = np.sort([float(v) for v in opts.get("lambdas", LAMBDAS)])
    steps = int(opts.get("steps", 1500))

    data = make_data(rng)
    init = init_net(rng)

    trained = train_sweep(init, data, lambdas, steps)
    norms = np.array([net.weight_norm() for net in trained])
    sess = export(demo, trained)
    sweep = evaluate(sess, trained, data, lambdas, norms)

    cmp_steps, rel_diff = compare_coupled_decoupled(init, data)
    sgd_diff, adam_diff = float(rel_diff["SGD"][-1]), float(rel_diff["Adam"][-1])

    draw_fits(demo, data, sweep, lambdas)
    draw_lambda_sweep(demo, sweep, lambdas)
    draw_coupled_vs_decoupled(demo, cmp_steps, rel_diff)
    measure(demo, sweep, lambdas, sgd_diff, adam_diff)
    claim_findings(demo, sweep, lambdas, sgd_diff, adam_diff)


def make_data(rng: np.random.Generator) -> datasets.Split:
    """Noisy points of a smooth curve, split into training, validation and test."""
    # 20 noisy training points from a smooth curve; 50 for validation, 30 held out for test.
    X, y = datasets.regression_1d(rng, 100, noise=NOISE)
    return datasets.split(rng, X, y, val=0.5, test=0.3)


def init_net(rng: np.random.Generator) -> nets.MLP:
    """The initial weights every run starts from."""
    init = nets.init_mlp(rng, [1, 64, 1], activation="tanh")
    init.weights[0] *= 3.0  # steeper tanh units, so the net can bend sharply enough to overfit
    return init


def train_sweep(init: nets.MLP, data: datasets.Split, lambdas: np.ndarray, steps: int) -> list[nets.MLP]:
    """λ sweep with AdamW (decoupled decay), every run from the same initial weights."""
    trained = []
    for lam in lambdas:
        net = init.copy()
        opt = nets.AdamW(lr=0.02, weight_decay=float(lam))
        nets.fit(net, data.X_train, data.y_train, nets.mse, opt, steps=steps)
        trained.append(net)
    return trained


def export(demo, trained: list[nets.MLP]):
    """Export the whole sweep as one ONNX graph and open it in ONNX Runtime."""
    # One ONNX graph holds the whole sweep: output column k is the net trained with lambdas[k].
    graph = onnx_export.export_mlps(trained, name="weight_decay_sweep")
    return demo.onnx("mlp_lambda_sweep", demo.make_model(graph))


def evaluate(sess, trained: list[nets.MLP], data: datasets.Split, lambdas: np.ndarray,
             norms: np.ndarray) -> Sweep:
    """Losses of every λ from ONNX Runtime, its agreement with NumPy, and the best λ."""
    def predict(inputs: np.ndarray) -> np.ndarray:
        return sess.run(None, {"x": inputs.astype(np.float32)})[0].astype(np.float64)

    def mse_cols(inputs: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.mean((predict(inputs) - target[:, None]) ** 2, axis=0)

    train_loss = mse_cols(data.X_train, data.y_train)
    val_loss = mse_cols(data.X_val, data.y_val)
    test_loss = mse_cols(data.X_test, data.y_test)
    grid = np.linspace(-1.0, 1.0, 200)[:, None]
    grid_pred = predict(grid)
    numpy_pred = np.hstack([nets.predict(net, grid) for net in trained])
    ort_diff = float(np.max(np.abs(grid_pred - numpy_pred)))
    i_best = int(np.argmin(val_loss))
    shown = sorted({0, i_best, len(lambdas) - 1})
    return Sweep(norms, train_loss, val_loss, test_loss, grid, grid_pred, ort_diff, i_best, shown)


def compare_coupled_decoupled(init: nets.MLP, data: datasets.Split) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Coupled L2 vs decoupled weight decay: same λ, same start, same data."""
    pairs = {
        "SGD": (nets.SGD(lr=0.02, l2=LAM_CMP), nets.SGD(lr=0.02, weight_decay=LAM_CMP)),
        "Adam": (nets.Adam(lr=0.02, l2=LAM_CMP), nets.AdamW(lr=0.02, weight_decay=LAM_CMP)),
    }
    cmp_steps = np.arange(1, N_CHUNKS + 1) * CHUNK
    rel_diff: dict[str, np.ndarray] = {}
    for name, (coupled_opt, decoupled_opt) in pairs.items():
        coupled, decoupled = init.copy(), init.copy()
        diffs = []
        for _ in range(N_CHUNKS):
            nets.fit(coupled, data.X_train, data.y_train, nets.mse, coupled_opt, steps=CHUNK)
            nets.fit(decoupled, data.X_train, data.y_train, nets.mse, decoupled_opt, steps=CHUNK)
            diffs.append(_rel_diff(coupled, decoupled))
        rel_diff[name] = np.array(diffs)
    return cmp_steps, rel_diff


def _rel_diff(a: nets.MLP, b: nets.MLP) -> float:
    """||params(a) - params(b)|| / ||params(b)|| over all parameters together."""
    num = sum(float(np.sum((p - q) ** 2)) for p, q in zip(a.params(), b.params(), strict=True))
    den = sum(float(np.sum(q * q)) for q in b.params())
    return float(np.sqrt(num / den))


def lam_label(lam: float) -> str:
    """Legend label for one λ."""
    return "λ = 0" if lam == 0 else f"λ = {lam:g}"


def draw_fits(demo, data: datasets.Split, sweep: Sweep, lambdas: np.ndarray) -> None:
    """Figure: the nets trained with no, the best and the largest decay."""
    grid = sweep.grid

    @demo.figure(
        "fits",
        caption="Networks trained with no, the best and the largest weight decay",
        alt=f"Scatter of {len(data.y_train)} noisy training points around a wavy curve, with "
        f"{len(sweep.shown)} fitted curves: "
        "λ = 0 wiggles through the points, the best λ follows the true curve, and the largest λ "
        "gives a nearly straight line.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(grid[:, 0], datasets.smooth_function(grid[:, 0]), "--", color="C7", label="truth")
        ax.plot(data.X_train[:, 0], data.y_train, "o", color="C7", ms=4, alpha=0.7, label="train")
        for c, k in enumerate(sweep.shown):
            tag = " (best)" if k == sweep.i_best else ""
            ax.plot(grid[:, 0], sweep.grid_pred[:, k], color=f"C{c}", lw=2, label=lam_label(lambdas[k]) + tag)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(f"Fits for {len(sweep.shown)} values of λ")
        ax.legend(fontsize="small", ncols=2)


def draw_lambda_sweep(demo, sweep: Sweep, lambdas: np.ndarray) -> None:
    """Figure: loss (top) and weight norm (bottom) against λ."""
    i_best, val_loss = sweep.i_best, sweep.val_loss

    @demo.figure(
        "lambda-sweep",
        caption="Loss and weight norm against the weight decay λ (λ = 0 at the left edge)",
        alt="Two panels sharing a λ axis. Top: training loss rises with λ while validation loss "
        "first falls then rises, lowest at a middle λ. Bottom: the weight norm falls steadily.",
    )
    def _(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.plot(lambdas, sweep.train_loss, "o-", color="C0", label="train")
        top.plot(lambdas, val_loss, "s-", color="C1", label="validation")
        top.plot(lambdas[i_best], val_loss[i_best], "*", color="C3", ms=14, label="best")
        top.axhline(NOISE**2, ls=":", color="C7", label=f"noise variance {NOISE**2:g}")
        top.set_ylabel("MSE")
        top.set_title("Weight decay sweep (AdamW)")
        top.legend(fontsize="small")
        bottom.plot(lambdas, sweep.norms, "o-", color="C2")
        bottom.set_ylabel("‖W‖")
        bottom.set_xscale("symlog", linthresh=lambdas[lambdas > 0].min())
        plotting.plain_ticks(bottom.xaxis, lambdas)  # one tick per λ, "0.01" rather than 10^-2
        bottom.set_xlabel("weight decay λ")


def draw_coupled_vs_decoupled(demo, cmp_steps: np.ndarray, rel_diff: dict[str, np.ndarray]) -> None:
    """Figure: how far apart coupled and decoupled training drift, for SGD and for Adam."""
    @demo.figure(
        "coupled-vs-decoupled",
        caption=f"Coupled L2 versus decoupled decay, λ = {LAM_CMP:g}: relative weight difference",
        alt="Log-scale line chart over training steps: for SGD the relative difference between "
        f"L2-regularised and weight-decayed weights stays at rounding level (at most "
        f"{max(float(rel_diff['SGD'].max()), 0.0):.0e}); for Adam versus AdamW it grows to "
        f"{float(rel_diff['Adam'][-1]):.2g}.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        floor = 1e-17  # a difference of exactly 0 cannot be drawn on a log axis
        ax.plot(cmp_steps, np.maximum(rel_diff["SGD"], floor), color="C0", label="SGD: L2 vs weight decay")
        ax.plot(cmp_steps, np.maximum(rel_diff["Adam"], floor), color="C1", label="Adam (L2) vs AdamW")
        plotting.plain_log_axis(ax.yaxis, LogLocator(numticks=6), fmt=plotting.exponent_label)
        ax.set_xlabel("training step")
        ax.set_ylabel("‖w_L2 − w_decay‖ / ‖w_decay‖")
        ax.set_title("Same λ, same start: coupled vs decoupled")
        ax.legend(fontsize="small")


def measure(demo, sweep: Sweep, lambdas: np.ndarray, sgd_diff: float, adam_diff: float) -> None:
    """Record losses and weight norms at no, the best and the largest decay, and both differences."""
    i_best, val_loss, test_loss, norms = sweep.i_best, sweep.val_loss, sweep.test_loss, sweep.norms
    demo.setting("n_lambdas", len(lambdas), label="Values of λ in the sweep")
    demo.metric("best_lambda", lambdas[i_best], label="Best λ (validation)", fmt=".3g")
    demo.metric("val_loss_best", val_loss[i_best], label="Validation MSE at best λ")
    demo.metric("val_loss_no_decay", val_loss[0], label="Validation MSE at λ = 0")
    demo.metric("val_loss_largest_lambda", val_loss[-1], label="Validation MSE at largest λ")
    demo.metric("test_loss_best", test_loss[i_best], label="Test MSE at best λ")
    demo.metric("test_loss_no_decay", test_loss[0], label="Test MSE at λ = 0")
    demo.metric("weight_norm_no_decay", norms[0], label="Weight norm at λ = 0", fmt=".3g")
    demo.metric("weight_norm_best", norms[i_best], label="Weight norm at best λ", fmt=".3g")
    demo.metric("weight_norm_largest_lambda", norms[-1], label="Weight norm at largest λ", fmt=".3g")
    demo.metric("sgd_relative_difference", sgd_diff, label="SGD: L2 vs decay, relative difference", fmt=".2g")
    demo.metric("adam_relative_difference", adam_diff, label="Adam vs AdamW, relative difference", fmt=".2g")
    demo.metric("ort_max_abs_diff", sweep.ort_diff, label="Max |ONNX Runtime − NumPy| prediction", fmt=".1e")


def claim_findings(demo, sweep: Sweep, lambdas: np.ndarray, sgd_diff: float, adam_diff: float) -> None:
    """Claim: the norm shrinks, a middle λ wins, SGD can't tell L2 from decay but Adam can."""
    i_best, val_loss, norms = sweep.i_best, sweep.val_loss, sweep.norms
    demo.claim(
        "The weight norm shrinks monotonically as λ grows",
        holds=bool(np.all(np.diff(norms) < 0)),
        weight_norm_no_decay=norms[0],
        weight_norm_largest_lambda=norms[-1],
    )
    demo.claim(
        "A middle λ gives the lowest validation loss (too little overfits, too much underfits)",
        holds=bool(0 < i_best < len(lambdas) - 1),
        best_lambda=lambdas[i_best],
        val_loss_best=val_loss[i_best],
        val_loss_no_decay=val_loss[0],
        val_loss_largest_lambda=val_loss[-1],
    )
    demo.check(
        "With plain SGD, L2 in the loss and decoupled weight decay give the same weights (an identity)",
        holds=bool(sgd_diff < 1e-10),
        relative_difference=sgd_diff,
    )
    demo.check(
        "With Adam they differ: Adam + L2 and AdamW end at different weights (two different algorithms)",
        holds=bool(adam_diff > 1e-2),
        relative_difference=adam_diff,
    )
