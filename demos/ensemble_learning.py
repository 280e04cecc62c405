"""Ensemble learning by bagging: fully grown regression trees, averaged over bootstrap resamples.

A regression tree grown until every leaf holds a single training input overfits: in one
dimension it is a step function through every noisy training point (each leaf predicts its own
point, splits sit halfway between neighbours). Bagging trains many such trees, each on a
bootstrap resample of the training set, and averages them. The run's ensemble is one ONNX graph
with two outputs: every member's prediction and the average of the first m members for every m.
A repeat study (NumPy) bags fresh training sets to split the test error into squared bias and
variance as members are added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import datasets, plotting
from demolib.graph import Graph, tensor
from onnx import TensorProto

N_TEST = 300
N_GRID = 400
N_SHOWN = 6  # single trees drawn in the figure
EARLY = 10  # members that should deliver most of the gain
MOST_GAIN = 0.8  # "most": at least this share of the drop from one member to all of them
BEATS = 0.9  # the bagged ensemble beats the single full-data tree in at least this share of sets
VAR_DROP = 2 / 3  # variance with every member below this fraction of a single member's
BIAS_SMALL = 0.1  # squared bias moves by less than this fraction of the variance drop


@dataclass
class Tree:
    """A fully grown 1-D regression tree: split points and the value of every leaf, left to right."""
    splits: np.ndarray  # (k - 1,) midpoints between neighbouring distinct inputs
    leaves: np.ndarray  # (k,)


@dataclass
class Run:
    """The run's own ensemble, scored through ONNX Runtime."""
    x: np.ndarray
    y: np.ndarray
    members: list[Tree]
    test_mse: np.ndarray  # test MSE of the average of the first m members, m = 1..B
    member_mse: np.ndarray  # test MSE of every single member
    full_mse: float  # one tree grown on the whole training set
    ambiguity: float  # mean squared spread of the members around their average (all B)
    grid: np.ndarray
    grid_members: np.ndarray  # (N_GRID, B)
    grid_bagged: np.ndarray  # (N_GRID, B) column m - 1: the average of the first m members
    ort_diff: float
    unique_share: float  # mean share of distinct training points in a bootstrap resample


@dataclass
class Repeats:
    """Bagging on fresh training sets (NumPy): error, squared bias and variance against m."""
    test_mse: np.ndarray  # (B,) mean over training sets
    bias2: np.ndarray
    variance: np.ndarray
    full_mse: np.ndarray  # (R,) single full-data tree per training set
    bagged_mse: np.ndarray  # (R,) all B members per training set
    member_var: float  # average variance of one member across training sets
    member_cov: float  # average covariance between two members
    identity_gap: float  # variance(B) against cov + (var - cov) / B
    count: int


def run(demo) -> None:
    opts = demo.options
    n_train = int(opts.get("n_train", 30))
    noise = float(opts.get("noise", 0.3))
    n_members = int(opts.get("members", 50))
    repeats = int(opts.get("repeats", 40))

    x_test, y_test = datasets.regression_1d(demo.rng, N_TEST, noise=noise)
    X, y = datasets.regression_1d(demo.rng, n_train, noise=noise)
    x = X[:, 0]
    members, unique_share = bag(demo.rng, x, y, n_members)
    sess = export(demo, members)
    run_ = score(sess, x, y, members, x_test[:, 0], y_test, unique_share)
    reps = repeat_on_fresh_sets(demo.rng, n_train, noise, n_members, repeats, x_test[:, 0], y_test)

    draw_members(demo, run_, n_members)
    draw_error_vs_members(demo, run_, reps, noise)
    measure(demo, run_, reps, n_train, noise, n_members)
    claim_findings(demo, reps)
    check_identities(demo, run_, reps, n_train)


def grow_tree(x: np.ndarray, y: np.ndarray) -> Tree:
    """Grow until every leaf holds one distinct input: split halfway between neighbours."""
    xs, first = np.unique(x, return_index=True)
    return Tree((xs[1:] + xs[:-1]) / 2.0, y[first])


def bag(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n_members: int) -> tuple[list[Tree], float]:
    """One tree per bootstrap resample (n draws with replacement)."""
    n = len(x)
    picks = [rng.integers(0, n, n) for _ in range(n_members)]
    return [grow_tree(x[i], y[i]) for i in picks], float(np.mean([len(np.unique(i)) / n for i in picks]))


def predict(tree: Tree, xq: np.ndarray) -> np.ndarray:
    """The leaf each query falls in (a query exactly on a split goes left, as in the graph)."""
    return tree.leaves[np.searchsorted(tree.splits, xq, side="left")]


def export(demo, members: list[Tree]):
    """The ensemble as a sum of steps: member b = leaf_0 + Σ jump · [x > split], then prefix averages."""
    B = len(members)
    splits = np.concatenate([t.splits for t in members])
    jumps = np.zeros((len(splits), B))
    row = 0
    for b, t in enumerate(members):
        jumps[row:row + len(t.splits), b] = np.diff(t.leaves)
        row += len(t.splits)
    prefix = np.triu(np.ones((B, B))) / np.arange(1, B + 1)  # column m averages members 0..m
    g = Graph()
    step = g.op("Cast", [g.op("Greater", ["x", g.const("splits", splits[None, :])], "right_of_split")],
                "step", to=TensorProto.FLOAT)
    members_out = g.op("Add", [g.op("MatMul", [step, g.const("jumps", jumps)], "jump_sum"),
                               g.const("first_leaf", np.array([t.leaves[0] for t in members]))], "members")
    g.op("MatMul", [members_out, g.const("prefix_mean", prefix)], "bagged")
    graph = g.build("bagged_trees", [tensor("x", ["N", 1])],
                    [tensor("members", ["N", B]), tensor("bagged", ["N", B])],
                    f"{B} fully grown regression trees on bootstrap resamples; bagged[:, m] averages members 0..m")
    return demo.onnx("bagged_trees", demo.make_model(graph))


def score(sess, x, y, members: list[Tree], x_test, y_test, unique_share: float) -> Run:
    """Test error of every prefix of the ensemble, from ONNX Runtime; a float32 NumPy twin checks it."""
    def ort(xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m, bagged = sess.run(None, {"x": xq.astype(np.float32)[:, None]})
        return m.astype(np.float64), bagged.astype(np.float64)

    members_test, bagged_test = ort(x_test)
    x32 = x_test.astype(np.float32)  # the graph compares in float32: so does the twin
    twin = np.column_stack([predict(Tree(t.splits.astype(np.float32), t.leaves), x32) for t in members])
    ort_diff = float(np.max(np.abs(members_test - twin)))
    grid = np.linspace(-1.0, 1.0, N_GRID)
    grid_members, grid_bagged = ort(grid)
    avg = bagged_test[:, -1]
    return Run(x, y, members, np.mean((bagged_test - y_test[:, None]) ** 2, axis=0),
               np.mean((members_test - y_test[:, None]) ** 2, axis=0),
               float(np.mean((predict(grow_tree(x, y), x_test) - y_test) ** 2)),
               float(np.mean((members_test - avg[:, None]) ** 2)),
               grid, grid_members, grid_bagged, ort_diff, unique_share)


def repeat_on_fresh_sets(rng, n_train: int, noise: float, n_members: int, repeats: int,
                         x_test: np.ndarray, y_test: np.ndarray) -> Repeats:
    """Bag fresh training sets; squared bias and variance of the m-member average across them."""
    P = np.empty((repeats, n_members, len(x_test)))  # member predictions
    full = np.empty((repeats, len(x_test)))
    for r in range(repeats):
        x, y = datasets.regression_1d(rng, n_train, noise=noise)
        members, _ = bag(rng, x[:, 0], y, n_members)
        P[r] = [predict(t, x_test) for t in members]
        full[r] = predict(grow_tree(x[:, 0], y), x_test)
    avg = np.cumsum(P, axis=1) / np.arange(1, n_members + 1)[None, :, None]  # (R, B, Q)
    truth = datasets.smooth_function(x_test)
    variance = np.mean(avg.var(axis=0), axis=-1)
    # Sample moments across training sets: one member's variance and two members' covariance.
    centred = P - P.mean(axis=0)
    C = np.einsum("rbq,rcq->bc", centred, centred) / (repeats * len(x_test))
    member_var = float(np.mean(np.diag(C)))
    member_cov = float((C.sum() - np.trace(C)) / (n_members * (n_members - 1)))
    predicted = member_cov + (member_var - member_cov) / n_members
    return Repeats(
        test_mse=np.mean((avg - y_test) ** 2, axis=(0, 2)),
        bias2=np.mean((avg.mean(axis=0) - truth) ** 2, axis=-1),
        variance=variance,
        full_mse=np.mean((full - y_test) ** 2, axis=-1),
        bagged_mse=np.mean((avg[:, -1] - y_test) ** 2, axis=-1),
        member_var=member_var, member_cov=member_cov,
        identity_gap=float(abs(variance[-1] - predicted) / predicted),
        count=repeats)


def draw_members(demo, run_: Run, n_members: int) -> None:
    """Figure with a slider over the ensemble's size: a few single trees, the average of the first
    m members (from ONNX Runtime's prefix averages) and the true curve."""
    sizes = [m for m in (1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 130) if m < n_members] + [n_members]
    g, y_all = run_.grid, np.concatenate([run_.y, run_.grid_members.ravel()])
    ylim = (y_all.min() - 0.15, y_all.max() + 0.15)  # fixed: every frame on the same axes

    @demo.sweep(
        "members", sizes, label="trees averaged", fmt=".0f", default=len(sizes) - 1,
        caption=f"{N_SHOWN} of the {n_members} trees (thin steps), each grown on a bootstrap sample, "
        "and the average of the first m of them (thick)",
        alt=f"{len(run_.x)} noisy training points around a wavy curve. Each single tree is a jagged step "
        "function that jumps to the value of whichever sampled point is nearest, noise included; the "
        "average of one tree is just as jagged, and as more trees join it becomes a finer staircase "
        "that stays closer to the true curve",
        size=(6.4, 4.0),
        notice="Add trees: the average smooths out and settles near the curve; the first ten or so "
        "trees do most of it.",
        numbers=lambda k: [demo.number(run_.test_mse[sizes[k] - 1], "test error of the average", ".3g")],
    )
    def _(fig, k: int) -> None:
        m = sizes[k]
        ax = fig.subplots()
        lines = ax.plot(g, run_.grid_members[:, :N_SHOWN], color="C0", lw=0.8, alpha=0.45)
        lines[0].set_label("single trees")
        ax.plot(g, datasets.smooth_function(g), "--", color="C7", lw=1.5, label="true curve")
        ax.plot(g, run_.grid_bagged[:, m - 1], color="C1", lw=2.5, label=f"average of {m}")
        ax.plot(run_.x, run_.y, "o", color="C4", ms=5, zorder=5, label="training points")
        ax.set(xlim=(g[0], g[-1]), ylim=ylim, xlabel="x", ylabel="y")
        ax.set_title(f"Bagging fully grown trees: the average of {m}")
        ax.legend(fontsize="small", ncols=2, loc="lower center")


def draw_error_vs_members(demo, run_: Run, reps: Repeats, noise: float) -> None:
    """Figure: test error, squared bias and variance against the number of members."""
    m = np.arange(1, len(reps.test_mse) + 1)

    @demo.figure(
        "error-vs-members",
        caption=f"Test error, squared bias and variance against the number of members, averaged over "
        f"{reps.count} fresh training sets (log scale for members)",
        alt=f"Line chart over 1 to {m[-1]} members. The average test error falls from {reps.test_mse[0]:.3g} "
        f"to {reps.test_mse[-1]:.3g}, steeply over the first few members and then levelling off, below the "
        f"single tree grown on all the data ({reps.full_mse.mean():.3g}). Variance falls from "
        f"{reps.variance[0]:.3g} to {reps.variance[-1]:.3g} and flattens near the covariance between two "
        f"members ({reps.member_cov:.3g}); squared bias stays flat near {reps.bias2[-1]:.3g}.",
        size=(6.4, 5.2),
        notice="Error and variance fall fast over the first members, then level off; bias hardly moves.",
    )
    def _(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.plot(m, reps.test_mse, "o-", color="C1", ms=3, label="average over training sets")
        top.plot(m, run_.test_mse, color="C1", lw=1, alpha=0.5, label="this run")
        top.axhline(reps.full_mse.mean(), ls="--", color="C3", label="one tree on all data")
        top.axhline(noise**2, ls=":", color="C7", label="noise variance")
        top.set_ylim(0.0, 1.15 * max(reps.test_mse[0], reps.full_mse.mean(), run_.test_mse.max()))
        top.set_ylabel("test error")
        top.set_title("More members: less variance, same bias")
        top.legend(fontsize="small", ncols=2, loc="lower left")
        bottom.plot(m, reps.variance, "^-", color="C0", ms=3, label="variance")
        bottom.axhline(reps.member_cov, ls=":", color="C0", label="covariance of two members")
        bottom.plot(m, reps.bias2, "s-", color="C2", ms=3, label="squared bias")
        bottom.set_ylim(0.0, 1.15 * reps.variance[0])
        plotting.plain_log_axis(bottom.xaxis, [1, 2, 5, 10, 20, 50, 100, 200])
        bottom.set_xlim(0.9, m[-1] * 1.1)
        bottom.set_xlabel("members in the ensemble")
        bottom.set_ylabel("squared error")
        bottom.legend(fontsize="small", loc="upper right")


def measure(demo, run_: Run, reps: Repeats, n_train: int, noise: float, n_members: int) -> None:
    """Record the setup, the run's errors and the repeat study's curves."""
    demo.key_numbers("single_tree_mse", "bagged_mse", "full_tree_mse", "variance_single", "variance_bagged")
    demo.setting("n_train", n_train, label="Training points", fmt=".0f")
    demo.setting("n_test", N_TEST, label="Test points", fmt=".0f")
    demo.setting("noise_variance", noise**2, label="Noise variance", fmt=".3g")
    demo.setting("n_members", n_members, label="Trees in the ensemble", fmt=".0f")
    demo.setting("repeats", reps.count, label="Fresh training sets in the repeat study", fmt=".0f")
    demo.setting("early_members", EARLY, label="'The first few members'", fmt=".0f")
    demo.setting("most_gain", MOST_GAIN, label="'Most of the gain': at least this share", fmt=".0%")
    demo.metric("single_tree_mse", reps.test_mse[0], label="Test MSE of one bootstrap tree (average)", fmt=".3g")
    demo.metric("bagged_mse", reps.test_mse[-1], label="Test MSE of the bagged ensemble (average)", fmt=".3g")
    demo.metric("full_tree_mse", float(reps.full_mse.mean()),
                label="Test MSE of one tree grown on all the data (average)", fmt=".3g")
    demo.metric("early_gain", _early_gain(reps), label=f"Share of the drop delivered by the first {EARLY} members",
                fmt=".0%")
    demo.metric("beats_full_share", float(np.mean(reps.bagged_mse < reps.full_mse)),
                label="Share of training sets where bagging beats the single full-data tree", fmt=".0%")
    demo.metric("variance_single", reps.variance[0], label="Variance, one member", fmt=".3g")
    demo.metric("variance_bagged", reps.variance[-1], label="Variance, all members", fmt=".3g")
    demo.metric("member_cov", reps.member_cov, label="Covariance between two members (the variance floor)",
                fmt=".3g")
    demo.metric("member_corr", reps.member_cov / reps.member_var, label="Correlation between two members",
                fmt=".2f")
    demo.metric("bias2_single", reps.bias2[0], label="Squared bias, one member", fmt=".2g")
    demo.metric("bias2_bagged", reps.bias2[-1], label="Squared bias, all members", fmt=".2g")
    demo.metric("run_single_mse", float(run_.member_mse.mean()),
                label="This run: test MSE of a single tree (mean over members)", fmt=".3g")
    demo.metric("run_bagged_mse", run_.test_mse[-1], label="This run: test MSE of the bagged ensemble", fmt=".3g")
    demo.metric("run_full_mse", run_.full_mse, label="This run: test MSE of one tree on all the data", fmt=".3g")
    demo.metric("unique_share", run_.unique_share, label="Distinct training points in a resample (mean share)",
                fmt=".0%")


def claim_findings(demo, reps: Repeats) -> None:
    """Findings: bagging beats the full-data tree, the gain comes early, and it is variance that falls."""
    beats = float(np.mean(reps.bagged_mse < reps.full_mse))
    demo.claim(
        f"The bagged ensemble has a lower test error than a single tree grown on the whole training set, "
        f"in at least {BEATS:.0%} of the {reps.count} training sets",
        holds=bool(beats >= BEATS),
        beats_full_share=beats,
        bagged_mse=float(reps.test_mse[-1]),
        full_tree_mse=float(reps.full_mse.mean()),
    )
    gain = _early_gain(reps)
    demo.claim(
        f"Most of the gain comes early: the first {EARLY} members deliver at least {MOST_GAIN:.0%} of the "
        "drop in average test error from one member to all of them",
        holds=bool(gain >= MOST_GAIN and reps.test_mse[-1] < reps.test_mse[0]),
        early_gain=gain,
        single_tree_mse=float(reps.test_mse[0]),
        bagged_mse=float(reps.test_mse[-1]),
    )
    var_drop = reps.variance[0] - reps.variance[-1]
    bias_move = abs(reps.bias2[-1] - reps.bias2[0])
    demo.claim(
        f"What averaging removes is variance: it falls below {VAR_DROP:.2g} of a single member's, while "
        f"squared bias moves by less than {BIAS_SMALL:.0%} of that drop",
        holds=bool(reps.variance[-1] < VAR_DROP * reps.variance[0] and bias_move < BIAS_SMALL * var_drop),
        variance_single=float(reps.variance[0]),
        variance_bagged=float(reps.variance[-1]),
        bias_change=demo.number(bias_move, "change in squared bias"),
    )


def check_identities(demo, run_: Run, reps: Repeats, n_train: int) -> None:
    """Checks: ONNX Runtime = NumPy, the ambiguity decomposition, the variance of an average, bootstrap share."""
    demo.check(
        "ONNX Runtime's members match a float32 NumPy twin of the trees (same comparisons, same leaves)",
        holds=bool(run_.ort_diff < 1e-5),
        max_abs_diff=run_.ort_diff,
    )
    mean_member = float(run_.member_mse.mean())
    demo.check(
        "Ambiguity decomposition: the ensemble's test MSE equals the members' mean test MSE minus their "
        "mean squared spread around the average",
        holds=bool(abs(run_.test_mse[-1] - (mean_member - run_.ambiguity)) < 1e-4 * mean_member),
        ensemble=run_.test_mse[-1], members=mean_member, spread=run_.ambiguity,
    )
    demo.check(
        "The variance of the average of B members equals the covariance of two members plus "
        "(variance − covariance) / B",
        holds=bool(reps.identity_gap < 1e-9),
        relative_gap=reps.identity_gap,
    )
    expected = 1.0 - (1.0 - 1.0 / n_train) ** n_train
    demo.check(
        "A bootstrap resample holds about 1 − (1 − 1/n)ⁿ of the distinct training points (within 0.03)",
        holds=bool(abs(run_.unique_share - expected) < 0.03),
        measured=run_.unique_share, expected=expected,
    )


def _early_gain(reps: Repeats) -> float:
    """Share of the drop from one member to all of them reached with EARLY members."""
    e = reps.test_mse
    return float((e[0] - e[EARLY - 1]) / (e[0] - e[-1]))
