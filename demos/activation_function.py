"""Activation functions: the same small MLP with identity, ReLU, tanh and sigmoid units fitting a
curve; with the identity it collapses to least squares on the input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, deepnets, nets, plotting

NAMES = {"identity": "identity", "relu": "ReLU", "tanh": "tanh", "sigmoid": "sigmoid"}
ACTS = deepnets.ACTIVATIONS  # the order of the nets (and of the ONNX output columns)
NOISE = 0.1
TARGET_MSE = 2 * NOISE**2  # "close to the noise level"
N_POINTS = 60
SLOWER = 2  # "takes at least this many times as many steps"
BETTER = 3  # "fits at least this many times better"
RESTARTS = 8  # fresh initial weights (same data) for the nonlinear nets: steps and fits as medians


@dataclass
class LeastSquares:
    """The least-squares line on the input, and the identity net multiplied out."""

    coef: np.ndarray
    pred: np.ndarray
    mse: float
    W_id: np.ndarray  # the identity net as one affine map W x + b
    b_id: np.ndarray


@dataclass
class Fits:
    """The four trained nets run in ONNX Runtime."""

    mse: dict[str, float]
    ort_diff: float
    grid: np.ndarray
    grid_pred: np.ndarray
    collapse_diff: float  # identity net against its own affine map
    ls_diff: float  # identity net against the least-squares line
    relu_pieces: int
    relu_line_residual: float
    relu_range: float


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    width = int(opts.get("width", 16))
    steps = int(opts.get("steps", 1200))
    lr = float(opts.get("lr", 0.01))

    # Noisy samples of a wavy curve; a 1-width-width-1 net per activation, all from the same initial
    # weights (He scaling for ReLU differs only by a constant factor), trained with Adam on MSE.
    X, y = datasets.regression_1d(rng, N_POINTS, noise=NOISE)
    trained, curves, rec_steps = train_each_activation(rng, X, y, width, steps, lr)
    reach = {a: steps_to(curves[a], rec_steps, steps) for a in ACTS if a != "identity"}
    restarts = restart_study(rng, X, y, width, steps, lr, int(opts.get("restarts", RESTARTS)))
    line = least_squares_line(X, y, trained["identity"])
    fits = evaluate(demo, trained, X, y, line)
    z, phi, dphi = activation_curves(demo)

    draw_fits(demo, X, y, fits, width)
    draw_functions(demo, z, phi, dphi)
    draw_training(demo, rec_steps, curves, line.mse, lr, steps)
    measure(demo, steps, fits, line, reach, width, lr, restarts)
    claim_findings(demo, fits, line, restarts, steps)


def train_each_activation(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, width: int, steps: int,
                          lr: float, acts: list[str] = ACTS):
    """Train one net per activation from the same initial weights; return nets, loss curves, steps."""
    target = y[:, None]
    base = deepnets.init_net(rng, [1, width, width, 1], "tanh")
    trained: dict[str, deepnets.Net] = {}
    curves: dict[str, np.ndarray] = {}
    for act in acts:
        net = base.copy()
        net.activation = act
        if act == "relu":  # He initialisation: variance 2 / fan_in instead of 1 / fan_in
            net.weights = [w * np.sqrt(2.0) for w in net.weights]
        rec, losses = deepnets.train(net, X, target, nets.mse, nets.Adam(lr=lr), steps=steps,
                                     record_every=10)
        trained[act] = net
        curves[act] = np.array(losses)
    return trained, curves, np.array(rec)


def restart_study(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, width: int, steps: int, lr: float,
                  restarts: int) -> dict[str, np.ndarray]:
    """The nonlinear nets trained again from fresh initial weights: per activation, an array of
    (steps to the target MSE, final training MSE) per restart."""
    out: dict[str, list] = {a: [] for a in ACTS if a != "identity"}
    for _ in range(restarts):
        trained, curves, rec = train_each_activation(rng, X, y, width, steps, lr, acts=list(out))
        for a in out:
            out[a].append((steps_to(curves[a], rec, steps), float(curves[a][-1])))
    return {a: np.array(v) for a, v in out.items()}


def steps_to(curve: np.ndarray, rec_steps: np.ndarray, steps: int) -> int:
    """First recorded step with training MSE below the target (steps + 1 if never)."""
    below = np.flatnonzero(curve < TARGET_MSE)
    return int(rec_steps[below[0]]) if below.size else steps + 1


def least_squares_line(X: np.ndarray, y: np.ndarray, identity_net: deepnets.Net) -> LeastSquares:
    """Least squares on the input alone, and the identity net collapsed to one affine map."""
    # Least squares on the input alone (a straight line), for comparison with the identity net.
    A = np.column_stack([X[:, 0], np.ones(len(X))])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    ls_pred = A @ coef
    ls_mse = float(np.mean((ls_pred - y) ** 2))
    W_id, b_id = deepnets.collapse_linear(identity_net)
    return LeastSquares(coef, ls_pred, ls_mse, W_id, b_id)


def evaluate(demo, trained: dict[str, deepnets.Net], X: np.ndarray, y: np.ndarray, line: LeastSquares) -> Fits:
    """Export the four nets side by side to ONNX and measure them in ONNX Runtime."""
    # ONNX: the four trained nets side by side in one graph (output column k = ACTS[k])
    sess = demo.onnx("mlp_activations", demo.make_model(
        deepnets.export_nets([trained[a] for a in ACTS], name="mlp_activations")))
    train_pred = predict(sess, X)
    mse = {a: float(np.mean((train_pred[:, k] - y) ** 2)) for k, a in enumerate(ACTS)}
    numpy_pred = np.hstack([deepnets.predict(trained[a], X) for a in ACTS])
    ort_diff = float(np.max(np.abs(train_pred - numpy_pred)))
    grid = np.linspace(-1.0, 1.0, 2001)[:, None]
    grid_pred = predict(sess, grid)
    k_id = ACTS.index("identity")
    # The identity net in ONNX Runtime against the straight line W x + b read off its weights,
    # and against the least-squares line.
    collapse_diff = float(np.max(np.abs(grid_pred[:, k_id] - (grid @ line.W_id + line.b_id)[:, 0])))
    ls_diff = float(np.max(np.abs(train_pred[:, k_id] - line.pred)))
    piece_starts = _relu_pieces(trained["relu"], grid)
    relu_pieces = len(piece_starts)
    k_relu = ACTS.index("relu")
    relu_line_residual = _max_line_residual(grid[:, 0], grid_pred[:, k_relu], piece_starts)
    relu_range = float(np.ptp(grid_pred[:, k_relu]))
    return Fits(mse, ort_diff, grid, grid_pred, collapse_diff, ls_diff, relu_pieces, relu_line_residual,
                relu_range)


def predict(sess, inputs: np.ndarray) -> np.ndarray:
    """The four nets' predictions from ONNX Runtime, one column per activation."""
    return sess.run(None, {"x": inputs.astype(np.float32)})[0].astype(np.float64)


def activation_curves(demo):
    """The functions themselves, as ONNX Runtime's Identity / Relu / Tanh / Sigmoid nodes compute them."""
    z = np.linspace(-4.0, 4.0, 401)
    phi = {a: demo.session(demo.make_model(deepnets.export_activation(a))).run(
        None, {"x": z.astype(np.float32)})[0].astype(np.float64) for a in ACTS}
    dphi = {a: deepnets.derivative(a, z) for a in ACTS}
    return z, phi, dphi


def draw_fits(demo, X: np.ndarray, y: np.ndarray, fits: Fits, width: int) -> None:
    """Figure: the data and the four nets' curves."""
    grid, grid_pred, mse = fits.grid, fits.grid_pred, fits.mse

    @demo.figure(
        "fits",
        caption=f"The same network (two hidden layers of {width} units) trained with {len(ACTS)} activation functions "
        "(predictions from ONNX Runtime)",
        alt=f"{len(y)} noisy points along a wavy curve. The network with the identity activation "
        "draws a straight line through them; the ReLU, tanh and sigmoid networks follow the "
        "waves.",
        notice="The identity network can only draw a straight line; every nonlinear activation follows the waves.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(X[:, 0], y, "o", color="C7", ms=4, alpha=0.7, label="data")
        for k, a in enumerate(ACTS):
            ax.plot(grid[:, 0], grid_pred[:, k], "--" if a == "identity" else "-", color=f"C{k}",
                    lw=1.8, label=f"{NAMES[a]} (MSE {mse[a]:.3f})")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title("Identity gives a line; the others bend")
        ax.legend(fontsize="small", loc="upper left")


def draw_functions(demo, z: np.ndarray, phi: dict[str, np.ndarray], dphi: dict[str, np.ndarray]) -> None:
    """Figure: the four activation functions and their derivatives."""

    @demo.figure(
        "functions",
        caption=f"The {len(ACTS)} activation functions (as computed by ONNX Runtime's nodes) and their "
        "derivatives",
        alt="Left: identity is the diagonal line, ReLU is zero then the diagonal, tanh is an S "
        "curve from minus one to one, sigmoid an S curve from zero to one. Right: the identity's "
        "slope is one everywhere, ReLU's jumps from zero to one at zero, tanh's is a bump of height "
        f"{float(np.max(dphi['tanh'])):.2g} and sigmoid's a bump of height "
        f"{float(np.max(dphi['sigmoid'])):.2g}.",
        size=(6.4, 3.8),
        notice="Where each slope is zero, large or capped: the sigmoid's slope never exceeds a quarter.",
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2, sharex=True)
        for k, a in enumerate(ACTS):
            style = "--" if a == "identity" else "-"
            left.plot(z, phi[a], style, color=f"C{k}", label=NAMES[a])
            if a == "relu":  # draw the jump of ReLU's derivative without a vertical line
                right.plot(z[z < 0], dphi[a][z < 0], color=f"C{k}")
                right.plot(z[z > 0], dphi[a][z > 0], color=f"C{k}")
            else:
                right.plot(z, dphi[a], style, color=f"C{k}")
        left.set_ylim(-1.5, 2.0)
        left.set_title("φ(z)", fontsize="medium")
        left.set_xlabel("z")
        left.legend(fontsize="small", loc="upper left")
        right.set_ylim(-0.05, 1.15)
        right.set_title("φ′(z)", fontsize="medium")
        right.set_xlabel("z")


def draw_training(demo, rec_steps: np.ndarray, curves: dict[str, np.ndarray], ls_mse: float, lr: float,
                  steps: int) -> None:
    """Figure: training loss of the four nets against the least-squares line's loss."""

    @demo.figure(
        "training",
        caption=f"Training loss of the {len(ACTS)} networks (Adam, learning rate {lr:g}) and the "
        "least-squares line's loss",
        alt="Log-scale chart of training MSE against step. The identity network drops onto the "
        "dotted least-squares level and stays there; the ReLU, tanh and sigmoid networks go "
        "well below it, close to the noise level.",
        notice="The identity network stops on the least-squares level; the nonlinear ones go on down to the noise.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for k, a in enumerate(ACTS):
            ax.plot(rec_steps, curves[a], "--" if a == "identity" else "-", color=f"C{k}", label=NAMES[a])
        ax.axhline(ls_mse, color="C7", ls=":", lw=1.4, label="least-squares line")
        ax.axhline(NOISE**2, color="C8", ls="-.", lw=1.2, label=f"noise variance {NOISE**2:g}")
        plotting.plain_log_axis(ax.yaxis, [0.01, 0.03, 0.1, 0.3, 1.0])
        ax.set_xlim(0, steps)
        ax.set_xlabel("training step")
        ax.set_ylabel("training MSE")
        ax.set_title("Only nonlinear units get below the line")
        ax.legend(fontsize="small", ncols=2)


def measure(demo, steps: int, fits: Fits, line: LeastSquares, reach: dict[str, int], width: int,
            lr: float, restarts: dict[str, np.ndarray]) -> None:
    """Record the setup, each net's fit, the identity net's collapse and the steps to the target."""
    demo.key_numbers("mse_identity", "mse_relu", "mse_sigmoid", "steps_to_target_relu", "steps_to_target_sigmoid")
    demo.setting("steps", steps, label="Training steps (Adam)", fmt=".0f")
    demo.setting("width", width, label="Units in each of the two hidden layers", fmt=".0f")
    demo.setting("n_points", N_POINTS, label="Training points", fmt=".0f")
    demo.setting("learning_rate", lr, label="Adam learning rate", fmt="g")
    for a in ACTS:
        demo.metric(f"mse_{a}", fits.mse[a], label=f"Training MSE, {NAMES[a]} (ONNX Runtime)", fmt=".4f")
    demo.metric("mse_least_squares", line.mse, label="Training MSE of the least-squares line", fmt=".4f")
    demo.setting("noise_variance", NOISE**2, label="Noise variance", fmt="g")
    demo.metric("identity_slope", float(line.W_id[0, 0]), label="Identity net collapsed: slope", fmt=".4f")
    demo.metric("ls_slope", float(line.coef[0]), label="Least-squares slope", fmt=".4f")
    demo.metric("identity_vs_ls_max_diff", fits.ls_diff, label="Max |identity net − least-squares line| (ORT)",
                fmt=".1e")
    demo.metric("identity_collapse_max_diff", fits.collapse_diff,
                label="Max |identity net in ORT − single affine map from its weights|", fmt=".1e")
    demo.metric("relu_line_residual", fits.relu_line_residual,
                label="Largest deviation of the ReLU net's curve from straight pieces (ORT)", fmt=".1e")
    demo.metric("relu_pieces", fits.relu_pieces, label="Straight pieces in the ReLU net's curve on [−1, 1]",
                fmt=".0f")
    demo.setting("target_mse", TARGET_MSE, label="Training MSE counted as reached", fmt="g")
    demo.setting("slower_factor", SLOWER, label="'Much slower': at least this many times the steps", fmt=".0f")
    demo.setting("restarts", len(restarts["relu"]), label="Restarts from fresh initial weights", fmt=".0f")
    for a, r in restarts.items():
        demo.metric(f"restart_steps_{a}", float(np.median(r[:, 0])),
                    label=f"Restarts: median steps until training MSE < {TARGET_MSE:g}, {NAMES[a]}", fmt=".0f")
        demo.metric(f"restart_mse_{a}", float(np.median(r[:, 1])),
                    label=f"Restarts: median final training MSE, {NAMES[a]}", fmt=".4f")
    for a, v in reach.items():
        demo.metric(f"steps_to_target_{a}", v, label=f"Steps until training MSE < {TARGET_MSE:g}, {NAMES[a]}",
                    fmt=".0f")
    demo.metric("ort_max_abs_diff", fits.ort_diff, label="Max |ONNX Runtime − NumPy| prediction", fmt=".1e")


def claim_findings(demo, fits: Fits, line: LeastSquares, restarts: dict[str, np.ndarray], steps: int) -> None:
    """Findings: the trained identity net is the least-squares line; over restarts, nonlinear units fit
    the curve to the noise level and sigmoid is slow. Checks: the identity net collapses, ReLU is
    piecewise linear."""
    mse, n_rest = fits.mse, len(restarts["relu"])
    med_mse = {a: float(np.median(r[:, 1])) for a, r in restarts.items()}
    med_steps = {a: float(np.median(r[:, 0])) for a, r in restarts.items()}
    demo.check(
        "With the identity activation, the network (two hidden layers) is one linear map: ONNX Runtime's "
        "output equals the single affine map multiplied out from its weights",
        holds=bool(fits.collapse_diff < 1e-5),
        max_abs_diff=fits.collapse_diff,
    )
    demo.claim(
        "… and after training it is the least-squares line through the data, up to float32 rounding",
        holds=bool(fits.ls_diff < 1e-5 and abs(mse["identity"] - line.mse) < 1e-5 * line.mse),
        max_abs_diff_to_least_squares=demo.number(
            fits.ls_diff, "largest difference from the least-squares line", fmt=".2g"),
        slope_net=demo.number(float(line.W_id[0, 0]), "slope of the trained identity network"),
        slope_least_squares=demo.number(float(line.coef[0]), "least-squares slope"),
        mse_net=demo.number(mse["identity"], "mean squared error of the identity network"),
        mse_least_squares=line.mse,
    )
    demo.claim(
        f"Every nonlinear activation ({', '.join(NAMES[a] for a in restarts)}) fits the curve at least "
        f"{BETTER} times better than the linear network and ends close to the noise variance (training "
        f"MSE below {TARGET_MSE:g}; median over {n_rest} restarts from fresh initial weights)",
        holds=bool(all(BETTER * v < mse["identity"] and v < TARGET_MSE for v in med_mse.values())),
        mse_identity=mse["identity"],
        **{f"median_mse_{a}": demo.number(v, f"median training MSE, {NAMES[a]}") for a, v in med_mse.items()},
    )
    demo.check(
        "The ReLU network's curve is made of straight pieces: split where a hidden unit switches "
        "on or off, every piece of ONNX Runtime's output is a straight line (up to float32 rounding)",
        holds=bool(1 < fits.relu_pieces < len(fits.grid) // 10
                   and fits.relu_line_residual < 1e-5 * max(1.0, fits.relu_range)),
        pieces=fits.relu_pieces,
        max_deviation_from_lines=fits.relu_line_residual,
        output_range=fits.relu_range,
    )
    demo.claim(
        f"The sigmoid network takes at least {SLOWER} times as many steps as the ReLU and tanh networks "
        f"to get its training MSE below {TARGET_MSE:g} (medians over {n_rest} restarts)",
        holds=bool(med_steps["sigmoid"] <= steps
                   and med_steps["sigmoid"] >= SLOWER * max(med_steps["relu"], med_steps["tanh"])),
        **{f"median_steps_{a}": demo.number(v, f"median steps to the target, {NAMES[a]}")
           for a, v in med_steps.items()},
    )


# ---- helpers


def _relu_pieces(net: deepnets.Net, grid: np.ndarray) -> np.ndarray:
    """Where a ReLU net's output can bend along a sorted 1-D grid: the output is affine wherever
    no hidden unit switches on or off, so a new piece starts at every grid point whose on/off
    pattern differs from its left neighbour's. Returns the index of each piece's first point."""
    trace = deepnets.forward(net, grid)[1]
    pattern = np.hstack([z > 0.0 for z in trace.pre])
    changes = np.flatnonzero(np.any(pattern[1:] != pattern[:-1], axis=1)) + 1
    return np.concatenate([[0], changes])


def _max_line_residual(x: np.ndarray, values: np.ndarray, starts: np.ndarray) -> float:
    """Largest deviation of ``values`` from a straight line fitted to each piece separately
    (pieces with fewer than three points are trivially straight)."""
    worst = 0.0
    for lo, hi in zip(starts, [*starts[1:], len(x)], strict=True):
        if hi - lo >= 3:
            fit = np.polyval(np.polyfit(x[lo:hi], values[lo:hi], 1), x[lo:hi])
            worst = max(worst, float(np.max(np.abs(values[lo:hi] - fit))))
    return worst
