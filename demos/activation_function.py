"""Activation functions: the same small MLP with identity, ReLU, tanh and sigmoid units fitting a
curve; with the identity it collapses to least squares on the input."""

from __future__ import annotations

import numpy as np
from demolib import datasets, deepnets, nets, plotting

NAMES = {"identity": "identity", "relu": "ReLU", "tanh": "tanh", "sigmoid": "sigmoid"}


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


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    width = int(opts.get("width", 16))
    steps = int(opts.get("steps", 800))
    lr = float(opts.get("lr", 0.01))
    noise = 0.1

    # 60 noisy samples of a wavy curve; a 1-16-16-1 net per activation, all from the same initial
    # weights (He scaling for ReLU differs only by a constant factor), trained with Adam on MSE.
    X, y = datasets.regression_1d(rng, 60, noise=noise)
    target = y[:, None]
    acts = deepnets.ACTIVATIONS
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
    rec_steps = np.array(rec)
    target_mse = 2 * noise**2  # "close to the noise level"

    def steps_to(curve: np.ndarray) -> int:
        below = np.flatnonzero(curve < target_mse)
        return int(rec_steps[below[0]]) if below.size else steps + 1

    reach = {a: steps_to(curves[a]) for a in acts if a != "identity"}

    # Least squares on the input alone (a straight line), for comparison with the identity net.
    A = np.column_stack([X[:, 0], np.ones(len(X))])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    ls_pred = A @ coef
    ls_mse = float(np.mean((ls_pred - y) ** 2))
    W_id, b_id = deepnets.collapse_linear(trained["identity"])

    # ---- ONNX: the four trained nets side by side in one graph (output column k = acts[k])
    sess = demo.onnx("mlp_activations", demo.make_model(
        deepnets.export_nets([trained[a] for a in acts], name="mlp_activations")))

    def predict(inputs: np.ndarray) -> np.ndarray:
        return sess.run(None, {"x": inputs.astype(np.float32)})[0].astype(np.float64)

    train_pred = predict(X)
    mse = {a: float(np.mean((train_pred[:, k] - y) ** 2)) for k, a in enumerate(acts)}
    numpy_pred = np.hstack([deepnets.predict(trained[a], X) for a in acts])
    ort_diff = float(np.max(np.abs(train_pred - numpy_pred)))
    grid = np.linspace(-1.0, 1.0, 2001)[:, None]
    grid_pred = predict(grid)
    k_id = acts.index("identity")
    # The identity net in ONNX Runtime against the straight line W x + b read off its weights,
    # and against the least-squares line.
    collapse_diff = float(np.max(np.abs(grid_pred[:, k_id] - (grid @ W_id + b_id)[:, 0])))
    ls_diff = float(np.max(np.abs(train_pred[:, k_id] - ls_pred)))
    piece_starts = _relu_pieces(trained["relu"], grid)
    relu_pieces = len(piece_starts)
    k_relu = acts.index("relu")
    relu_line_residual = _max_line_residual(grid[:, 0], grid_pred[:, k_relu], piece_starts)
    relu_range = float(np.ptp(grid_pred[:, k_relu]))

    # The functions themselves, as ONNX Runtime's Identity / Relu / Tanh / Sigmoid nodes compute them.
    z = np.linspace(-4.0, 4.0, 401)
    phi = {a: demo.session(demo.make_model(deepnets.export_activation(a))).run(
        None, {"x": z.astype(np.float32)})[0].astype(np.float64) for a in acts}
    dphi = {a: deepnets.derivative(a, z) for a in acts}

    # ---- figures (draw only)
    @demo.figure(
        "fits",
        caption=f"The same 1-{width}-{width}-1 network trained with four activation functions "
        "(predictions from ONNX Runtime)",
        alt="Sixty noisy points along a wavy curve. The network with the identity activation "
        "draws a straight line through them; the ReLU, tanh and sigmoid networks follow the "
        "waves.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        ax.plot(X[:, 0], y, "o", color="C7", ms=4, alpha=0.7, label="data")
        for k, a in enumerate(acts):
            ax.plot(grid[:, 0], grid_pred[:, k], "--" if a == "identity" else "-", color=f"C{k}",
                    lw=1.8, label=f"{NAMES[a]} (MSE {mse[a]:.3f})")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title("Identity gives a line; the others bend")
        ax.legend(fontsize="small", loc="upper left")

    @demo.figure(
        "functions",
        caption="The four activation functions (as computed by ONNX Runtime's nodes) and their "
        "derivatives",
        alt="Left: identity is the diagonal line, ReLU is zero then the diagonal, tanh is an S "
        "curve from −1 to 1, sigmoid an S curve from 0 to 1. Right: the identity's slope is 1 "
        "everywhere, ReLU's jumps from 0 to 1 at zero, tanh's is a bump of height 1 and "
        "sigmoid's a bump of height 0.25.",
        size=(6.4, 3.8),
    )
    def _(fig) -> None:
        left, right = fig.subplots(1, 2, sharex=True)
        for k, a in enumerate(acts):
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

    @demo.figure(
        "training",
        caption=f"Training loss of the four networks (Adam, learning rate {lr:g}) and the "
        "least-squares line's loss",
        alt="Log-scale chart of training MSE against step. The identity network drops onto the "
        "dotted least-squares level and stays there; the ReLU, tanh and sigmoid networks go "
        "well below it, close to the noise level.",
    )
    def _(fig) -> None:
        ax = fig.subplots()
        for k, a in enumerate(acts):
            ax.plot(rec_steps, curves[a], "--" if a == "identity" else "-", color=f"C{k}", label=NAMES[a])
        ax.axhline(ls_mse, color="C7", ls=":", lw=1.4, label="least-squares line")
        ax.axhline(noise**2, color="C8", ls="-.", lw=1.2, label=f"noise variance {noise**2:g}")
        plotting.plain_log_axis(ax.yaxis, [0.01, 0.03, 0.1, 0.3, 1.0])
        ax.set_xlim(0, steps)
        ax.set_xlabel("training step")
        ax.set_ylabel("training MSE")
        ax.set_title("Only nonlinear units get below the line")
        ax.legend(fontsize="small", ncols=2)

    # ---- metrics and claims
    demo.metric("steps", steps, label="Training steps (Adam)", fmt=".0f")
    for a in acts:
        demo.metric(f"mse_{a}", mse[a], label=f"Training MSE, {NAMES[a]} (ONNX Runtime)", fmt=".4f")
    demo.metric("mse_least_squares", ls_mse, label="Training MSE of the least-squares line", fmt=".4f")
    demo.metric("noise_variance", noise**2, label="Noise variance", fmt="g")
    demo.metric("identity_slope", float(W_id[0, 0]), label="Identity net collapsed: slope", fmt=".4f")
    demo.metric("ls_slope", float(coef[0]), label="Least-squares slope", fmt=".4f")
    demo.metric("identity_vs_ls_max_diff", ls_diff, label="Max |identity net − least-squares line| (ORT)",
                fmt=".1e")
    demo.metric("identity_collapse_max_diff", collapse_diff,
                label="Max |identity net in ORT − single affine map from its weights|", fmt=".1e")
    demo.metric("relu_line_residual", relu_line_residual,
                label="Largest deviation of the ReLU net's curve from straight pieces (ORT)", fmt=".1e")
    demo.metric("relu_pieces", relu_pieces, label="Straight pieces in the ReLU net's curve on [−1, 1]", fmt=".0f")
    demo.metric("target_mse", target_mse, label="Training MSE counted as reached", fmt="g")
    for a, v in reach.items():
        demo.metric(f"steps_to_target_{a}", v, label=f"Steps until training MSE < {target_mse:g}, {NAMES[a]}",
                    fmt=".0f")
    demo.metric("ort_max_abs_diff", ort_diff, label="Max |ONNX Runtime − NumPy| prediction", fmt=".1e")

    worst_nonlinear = max(mse[a] for a in acts if a != "identity")
    demo.claim(
        "With the identity activation, the network (two hidden layers) is one linear map: ONNX Runtime's "
        "output equals the single affine map multiplied out from its weights",
        holds=bool(collapse_diff < 1e-5),
        max_abs_diff=collapse_diff,
    )
    demo.claim(
        "… and after training it is the least-squares line through the data, up to float32 rounding",
        holds=bool(ls_diff < 1e-5 and abs(mse["identity"] - ls_mse) < 1e-5 * ls_mse),
        max_abs_diff_to_least_squares=ls_diff,
        slope_net=float(W_id[0, 0]),
        slope_least_squares=float(coef[0]),
        mse_net=mse["identity"],
        mse_least_squares=ls_mse,
    )
    demo.claim(
        "Every nonlinear activation (ReLU, tanh, sigmoid) fits the curve at least three times "
        "better than the linear network",
        holds=bool(worst_nonlinear * 3.0 < mse["identity"]),
        mse_identity=mse["identity"],
        mse_relu=mse["relu"],
        mse_tanh=mse["tanh"],
        mse_sigmoid=mse["sigmoid"],
    )
    demo.claim(
        "The ReLU network's curve is made of straight pieces: split where a hidden unit switches "
        "on or off, every piece of ONNX Runtime's output is a straight line (up to float32 rounding)",
        holds=bool(1 < relu_pieces < len(grid) // 10 and relu_line_residual < 1e-5 * max(1.0, relu_range)),
        pieces=relu_pieces,
        max_deviation_from_lines=relu_line_residual,
        output_range=relu_range,
    )
    demo.claim(
        f"The sigmoid network takes at least three times as many steps as the ReLU and tanh networks "
        f"to get its training MSE below {target_mse:g}",
        holds=bool(reach["sigmoid"] <= steps and reach["sigmoid"] >= 3 * max(reach["relu"], reach["tanh"])),
        steps_relu=reach["relu"],
        steps_tanh=reach["tanh"],
        steps_sigmoid=reach["sigmoid"],
    )
