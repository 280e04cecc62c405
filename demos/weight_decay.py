"""Weight decay on a small tanh MLP (a λ sweep), and what decay does to weights the data leave free.

The same network is trained with AdamW for a range of decay strengths λ: more decay leaves a smaller
weight norm, and a middle λ validates best. A controlled experiment then follows weights whose
gradient is only zero-mean noise (the loss does not pin them down), with noise sizes spread over
four decades: under Adam an L2 penalty barely shrinks the weights with large gradients, AdamW
shrinks all of them alike; and with SGD's decay or PyTorch-style AdamW the shrink follows the
learning rate, while AdamW as Loshchilov and Hutter wrote it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, nets, onnx_export, plotting

LAMBDAS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
NOISE = 0.3
# The free weights: N_FREE of them start at 1; weight j gets gradient noise of RMS sigma_j.
N_FREE, FREE_STEPS, FREE_LR, FREE_LAM, LR_FACTOR = 400, 2000, 1e-3, 0.3, 2.0
SIGMA_RANGE = (1e-3, 10.0)  # gradient RMS, log-spaced: far below to far above λ·w = FREE_LAM


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


@dataclass
class FreeWeights:
    """Free weights after FREE_STEPS steps (all started at 1), per optimiser run."""
    sigma: np.ndarray  # gradient noise RMS of each weight, ascending
    final: dict[str, np.ndarray]

    def quarter(self, run: str, loud: bool) -> float:
        """Mean final weight over the quarter with the smallest (or largest) gradients."""
        q = len(self.sigma) // 4
        return float(np.mean(self.final[run][-q:] if loud else self.final[run][:q]))

    def decay_rate(self, run: str) -> float:
        """Shrink per step, -ln(mean final weight) / steps, over the half with the smaller gradients
        (where even SGD's noise steps are small against the decay)."""
        return float(-np.log(np.mean(self.final[run][: len(self.sigma) // 2])) / FREE_STEPS)


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

    free = train_free_weights(rng)

    draw_fits(demo, data, sweep, lambdas)
    draw_lambda_sweep(demo, sweep, lambdas)
    draw_free_weights(demo, free)
    measure(demo, sweep, lambdas, free)
    claim_findings(demo, sweep, lambdas, free)


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
    return Sweep(norms, train_loss, val_loss, test_loss, grid, grid_pred, ort_diff, i_best)


def free_weight_optimizers() -> dict[str, nets.Optimizer]:
    """One optimiser per run of the free-weight experiment, keyed by the name the page shows."""
    lr, lam, fast = FREE_LR, FREE_LAM, LR_FACTOR * FREE_LR
    return {
        "Adam + L2": nets.Adam(lr=lr, l2=lam),
        "AdamW": nets.AdamW(lr=lr, weight_decay=lam),
        "AdamW, faster": nets.AdamW(lr=fast, weight_decay=lam),
        "AdamW (paper), faster": paper_adamw(fast, lr * lam),
        "SGD + decay": nets.SGD(lr=lr, weight_decay=lam),
        "SGD + decay, faster": nets.SGD(lr=fast, weight_decay=lam),
        "SGD + L2": nets.SGD(lr=lr, l2=lam),
    }


def paper_adamw(alpha: float, lam: float) -> nets.Adam:
    """AdamW as Loshchilov and Hutter wrote it, schedule multiplier 1: w -= α·(Adam step) + λ·w.

    The decay per step is λ whatever the step size α; it is PyTorch's form with weight decay λ/α.
    At α = FREE_LR and λ = FREE_LR·FREE_LAM it is the same algorithm as the "AdamW" run.
    """
    return nets.Adam(lr=alpha, weight_decay=lam / alpha)


def train_free_weights(rng: np.random.Generator) -> FreeWeights:
    """Weights the loss does not pin down: each step's gradient is zero-mean noise, weight j's of
    RMS sigma_j. Every run starts at w = 1 and sees the same noise."""
    sigma = np.geomspace(*SIGMA_RANGE, N_FREE)
    noise = sigma * rng.standard_normal((FREE_STEPS, N_FREE))
    final = {}
    for name, opt in free_weight_optimizers().items():
        w = np.ones(N_FREE)
        for g in noise:
            opt.step([w], [g])
        final[name] = w
    return FreeWeights(sigma, final)


def draw_fits(demo, data: datasets.Split, sweep: Sweep, lambdas: np.ndarray) -> None:
    """Figure with a slider over λ: the net trained with that decay (from ONNX Runtime), with its
    weight norm and validation loss."""
    grid, y = sweep.grid, data.y_train
    ylim = (float(y.min()) - 0.5, float(y.max()) + 0.5)  # fixed: every frame on the same axes

    @demo.sweep(
        "fits", lambdas, label="weight decay λ", fmt=".3g", default=sweep.i_best,
        caption=f"The network trained with each of the {len(lambdas)} decay strengths, from the same "
        "initial weights (as run by ONNX Runtime)",
        alt=f"Scatter of {len(y)} noisy training points around a wavy curve, with the fitted network. "
        "Without decay it wiggles through the points, around the best λ it follows the true curve, "
        "and the largest λ gives a nearly straight line",
        notice="Raise λ: the wiggles through single points go first, then the net flattens towards a "
        "straight line while its weight norm keeps falling.",
        numbers=lambda k: [demo.number(sweep.norms[k], "weight norm", ".3g"),
                           demo.number(sweep.val_loss[k], "validation loss", ".3f")],
    )
    def _(fig, k: int) -> None:
        ax = fig.subplots()
        ax.plot(grid[:, 0], datasets.smooth_function(grid[:, 0]), "--", color="C7", label="truth")
        ax.plot(data.X_train[:, 0], y, "o", color="C7", ms=4, alpha=0.7, label="train")
        ax.plot(grid[:, 0], np.clip(sweep.grid_pred[:, k], ylim[0] - 1, ylim[1] + 1), color="C0", lw=2,
                label="network")
        ax.set(xlim=(-1.0, 1.0), ylim=ylim, xlabel="x", ylabel="y")
        tag = " (best)" if k == sweep.i_best else ""
        ax.set_title(("No decay" if lambdas[k] == 0 else f"λ = {lambdas[k]:g}") + tag)
        ax.legend(fontsize="small", ncols=3, loc="lower center")


def draw_lambda_sweep(demo, sweep: Sweep, lambdas: np.ndarray) -> None:
    """Figure: loss (top) and weight norm (bottom) against λ."""
    i_best, val_loss = sweep.i_best, sweep.val_loss

    @demo.figure(
        "lambda-sweep",
        caption="Loss and weight norm against the weight decay λ (λ = 0 at the left edge)",
        alt="Two panels sharing a λ axis. Top: training loss rises with λ while validation loss "
        "first falls then rises, lowest at a middle λ. Bottom: the weight norm falls as λ grows, by "
        "more than a factor of ten across the sweep.",
        notice="Validation loss is lowest at a middle λ while the weight norm keeps falling.",
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


FAST_RUNS = {  # form of decay -> (metric key, run at the base learning rate, run at LR_FACTOR times it)
    "SGD + decay": ("sgd", "SGD + decay", "SGD + decay, faster"),
    "AdamW (PyTorch)": ("adamw", "AdamW", "AdamW, faster"),
    "AdamW (paper)": ("adamw_paper", "AdamW", "AdamW (paper), faster"),
}


def draw_free_weights(demo, free: FreeWeights) -> None:
    """Figure: final free weight against its gradient size (left); shrink per step at two
    learning rates for three forms of decay (right)."""
    adamw_factor = (1 - FREE_LR * FREE_LAM) ** FREE_STEPS
    base = FREE_LR * FREE_LAM

    @demo.figure(
        "free-weights",
        caption=f"Weights the data leave free, after {FREE_STEPS} steps from w = 1: left, Adam + L2 "
        f"against AdamW at λ = {FREE_LAM:g}; right, the shrink per step when the learning rate is "
        f"multiplied by {LR_FACTOR:g}",
        alt=f"Left: scatter of {N_FREE} final weights against their gradient size on a log axis. "
        f"AdamW's points lie along one level, about {adamw_factor:.2f}, whatever the gradient; "
        f"Adam with an L2 penalty leaves weights with small gradients near "
        f"{free.quarter('Adam + L2', loud=False):.2f} and weights with large gradients near "
        f"{free.quarter('Adam + L2', loud=True):.2f}. Right: bars of the shrink per step at the base "
        f"and the {LR_FACTOR:g} times larger learning rate: SGD's decay and PyTorch-style AdamW go up "
        f"{free.decay_rate('SGD + decay, faster') / free.decay_rate('SGD + decay'):.2f} and "
        f"{free.decay_rate('AdamW, faster') / free.decay_rate('AdamW'):.2f} times, the paper's "
        f"AdamW {free.decay_rate('AdamW (paper), faster') / free.decay_rate('AdamW'):.2f} times.",
        notice="Adam with L2 spares the weights with large gradients; AdamW shrinks every weight alike.",
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        q = N_FREE // 4
        for lo, hi, tag in ((0, q - 1, "smallest\nquarter"), (N_FREE - q, N_FREE - 1, "largest\nquarter")):
            left.axvspan(free.sigma[lo], free.sigma[hi], color="C7", alpha=0.12, lw=0)
            left.text(np.sqrt(free.sigma[lo] * free.sigma[hi]), 0.3, tag, ha="center", fontsize="x-small")
        left.plot(free.sigma, free.final["Adam + L2"], ".", color="C1", ms=3, label="Adam + L2")
        left.plot(free.sigma, free.final["AdamW"], ".", color="C0", ms=3, label="AdamW")
        left.axhline(adamw_factor, ls=":", color="C7", label=f"$(1 - \\eta\\lambda)^{{{FREE_STEPS}}}$")
        plotting.plain_log_axis(left.xaxis, 10.0 ** np.arange(-3, 2), fmt="{:g}")
        left.set_xlabel("gradient size (RMS) of the weight")
        left.set_ylabel("weight after training (start 1)")
        left.set_title("Which weights decay shrinks")
        left.legend(fontsize="small")
        x = np.arange(len(FAST_RUNS))
        for i, (label, color) in enumerate((("η", "C7"), (f"{LR_FACTOR:g}η", "C2"))):
            rates = [free.decay_rate(runs[1 + i]) / base for runs in FAST_RUNS.values()]
            right.bar(x + (i - 0.5) * 0.38, rates, width=0.36, color=color, label=f"learning rate {label}")
        right.set_xticks(x, [form.replace(" ", "\n", 1) for form in FAST_RUNS], fontsize="small")
        right.set_ylim(0, 1.45 * LR_FACTOR)
        right.set_ylabel("shrink per step ÷ ηλ")
        right.set_title("Shrink vs learning rate")
        right.legend(fontsize="small", loc="upper left")


def measure(demo, sweep: Sweep, lambdas: np.ndarray, free: FreeWeights) -> None:
    """Record the sweep's losses and norms, the free-weight setup, and what decay did to them."""
    i_best, val_loss, test_loss, norms = sweep.i_best, sweep.val_loss, sweep.test_loss, sweep.norms
    demo.key_numbers("best_lambda", "val_loss_no_decay", "val_loss_best", "weight_norm_no_decay",
                     "adam_l2_kept_large_grad", "adamw_kept_large_grad")
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
    demo.setting("free_weights", N_FREE, label="Free weights (gradient = zero-mean noise)")
    demo.setting("free_steps", FREE_STEPS, label="Steps of the free-weight runs")
    demo.setting("free_lambda", FREE_LAM, label="λ of the free-weight runs")
    demo.setting("free_lr", FREE_LR, label="Base learning rate of the free-weight runs")
    demo.setting("lr_factor", LR_FACTOR, label="Factor on the learning rate")
    demo.setting("sigma_min", SIGMA_RANGE[0], label="Smallest gradient RMS")
    demo.setting("sigma_max", SIGMA_RANGE[1], label="Largest gradient RMS")
    for run_name, key in (("Adam + L2", "adam_l2"), ("AdamW", "adamw")):
        for loud, which in ((False, "small"), (True, "large")):
            demo.metric(f"{key}_kept_{which}_grad", free.quarter(run_name, loud), fmt=".2f",
                        label=f"{run_name}: weight kept, quarter with the {which} gradients")
    for form, (key, slow, fast) in FAST_RUNS.items():
        demo.metric(f"{key}_rate_ratio", free.decay_rate(fast) / free.decay_rate(slow), fmt=".2f",
                    label=f"{form}: shrink per step at {LR_FACTOR:g}× the learning rate, relative")
    sgd_diff = float(np.max(np.abs(free.final["SGD + L2"] - free.final["SGD + decay"])))
    demo.metric("sgd_l2_vs_decay", sgd_diff, label="SGD: max |L2 − decay| weight difference", fmt=".1e")
    demo.metric("ort_max_abs_diff", sweep.ort_diff, label="Max |ONNX Runtime − NumPy| prediction", fmt=".1e")


def claim_findings(demo, sweep: Sweep, lambdas: np.ndarray, free: FreeWeights) -> None:
    """Claim: more decay, smaller norm; a middle λ wins; Adam + L2 spares large-gradient weights
    where AdamW does not. Check: the shrink follows the learning rate except in the paper's
    AdamW (the update rules' own property), SGD's L2 = decay, ORT = NumPy."""
    i_best, val_loss, norms = sweep.i_best, sweep.val_loss, sweep.norms
    # every pair of swept λ > 0 at least thirty times apart (0.3 / 0.01 is a hair below 30 in floats)
    pairs = [(i, j) for i in np.flatnonzero(lambdas > 0) for j in np.flatnonzero(lambdas >= 29.99 * lambdas[i])]
    worst = max((norms[j] / norms[i] for i, j in pairs), default=float("nan"))
    demo.claim(
        "More decay leaves a smaller weight norm: within the sweep, every thirtyfold increase of λ "
        "at least halves it, and the largest λ leaves less than a tenth of the norm without decay",
        holds=bool(pairs and worst <= 0.5 and norms[-1] < 0.1 * norms[0]),
        largest_thirtyfold_ratio=demo.number(worst, "largest norm ratio across a thirtyfold λ step", fmt=".3g"),
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
    kept = {(run, loud): free.quarter(run, loud) for run in ("Adam + L2", "AdamW") for loud in (False, True)}
    demo.claim(
        "Under Adam, an L2 penalty barely shrinks the weights with the largest gradients (their "
        "quarter keeps more than 60 % of its size) while the quarter with the smallest gradients "
        "keeps less than 10 %; AdamW shrinks both quarters alike (within 0.05 of each other)",
        holds=bool(kept["Adam + L2", True] > 0.6 and kept["Adam + L2", False] < 0.1
                   and abs(kept["AdamW", True] - kept["AdamW", False]) < 0.05),
        adam_l2_large=demo.number(kept["Adam + L2", True], "weight kept, Adam + L2: large gradients", fmt=".2f"),
        adam_l2_small=demo.number(kept["Adam + L2", False], "small gradients", fmt=".2f"),
        adamw_large=demo.number(kept["AdamW", True], "AdamW: large gradients", fmt=".2f"),
        adamw_small=demo.number(kept["AdamW", False], "small gradients", fmt=".2f"),
    )
    ratio = {key: free.decay_rate(fast) / free.decay_rate(slow) for key, slow, fast in FAST_RUNS.values()}
    demo.check(  # what each update rule says, measured: a check, not a finding
        f"Multiplying the learning rate by {LR_FACTOR:g} multiplies the shrink per step by about as "
        f"much (within 10 %) for SGD's decay and for PyTorch-style AdamW, and leaves it unchanged "
        f"(within 10 %) for AdamW as Loshchilov and Hutter wrote it (as their update rules say)",
        holds=bool(all(abs(ratio[k] / LR_FACTOR - 1) < 0.1 for k in ("sgd", "adamw"))
                   and abs(ratio["adamw_paper"] - 1) < 0.1),
        sgd_ratio=ratio["sgd"], adamw_pytorch_ratio=ratio["adamw"], adamw_paper_ratio=ratio["adamw_paper"],
    )
    demo.check(
        "With plain SGD, L2 in the loss and decoupled weight decay give the same weights (an identity)",
        holds=bool(np.allclose(free.final["SGD + L2"], free.final["SGD + decay"], rtol=0, atol=1e-10)),
        max_difference=float(np.max(np.abs(free.final["SGD + L2"] - free.final["SGD + decay"]))),
    )
    demo.check("ONNX Runtime predicts what the NumPy nets predict", holds=bool(sweep.ort_diff < 1e-4),
               ort_max_abs_diff=sweep.ort_diff)
