"""Mamba's selective state space layer (S6) against a linear time-invariant one on marked recall:
selection lets the layer write the marked value and ignore the filler; the LTI layer is a fixed
convolution and cannot.

Both layers start from the same weights and see the same batches. On held-out sequences (run in
ONNX Runtime) the selective layer recalls the marked value almost exactly, while the LTI layer
stays on the error floor no LTI layer can beat; its scan is shown to equal a convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import attention as att
from demolib import plotting

BATCH = 32  # fresh training sequences per step
N_HELD_OUT = 2000
N_SCATTER = 300  # held-out sequences drawn in the scatter
FOCUS = 0.75  # "depends mostly on the mark": more than this share of the sensitivity on the marked step


@dataclass
class HeldOut:
    """Both layers on held-out sequences, run in ONNX Runtime and checked against NumPy."""
    x: np.ndarray
    target: np.ndarray
    pos: np.ndarray  # the marked step of each sequence
    pred_sel: np.ndarray
    pred_lti: np.ndarray
    dt_sel: np.ndarray  # the selective layer's step size Δ at every step
    cache_sel: dict
    cache_lti: dict
    diff_sel: float
    diff_lti: float
    diff_conv_ort: float
    ort_diff: float


@dataclass
class Scores:
    var: float
    mse_sel: float
    mse_lti: float
    bound: float  # 1 - 1/T: the lowest expected MSE of any LTI layer
    exact_lti: float
    conv_diff: float


@dataclass
class Selection:
    """How the selective layer picks out the marked value, against the LTI layer."""
    dt_max: float
    dt_marked: float
    dt_filler: float
    influence: dict[str, np.ndarray]  # |d prediction / d u_s|
    share: dict[str, float]
    flag_corr: dict[str, float]
    running: dict[str, np.ndarray]
    ex: list[int]  # two example sequences


def run(demo) -> None:
    rng = demo.rng
    opts = demo.options
    length = int(opts.get("length", 16))
    n_state = int(opts.get("states", 4))
    steps = int(opts.get("steps", 600))

    selective, lti = make_layers(rng, n_state)
    curves = train(rng, selective, lti, length, steps)
    held = evaluate(demo, rng, selective, lti, length)
    scores = score(held, lti, length)
    sel = inspect_selection(held, selective, lti, length)

    draw_recall(demo, curves, held, scores, steps)
    draw_selection(demo, held, sel, length)
    measure(demo, held, scores, sel, selective, lti, length, n_state, steps)
    claim_findings(demo, held, scores, sel)


def make_layers(rng: np.random.Generator, n_state: int) -> tuple[att.SSM, att.SSM]:
    """Same start, one with input-dependent Δ, B, C (selective) and one without (LTI)."""
    selective = att.init_ssm(rng, 2, n_state, selective=True)
    lti = selective.copy()
    lti.selective = False
    for w in (lti.W_dt, lti.W_B, lti.W_C):
        w[...] = 0.0
    return selective, lti


def train(rng: np.random.Generator, selective: att.SSM, lti: att.SSM, length: int,
          steps: int) -> dict[str, list[float]]:
    """Train both layers on the same batches; return their loss curves."""
    batch_seed = int(rng.integers(2**31))
    curves = {}
    for name, model in (("selective", selective), ("lti", lti)):
        curves[name] = att.train_ssm(model, np.random.default_rng(batch_seed), steps=steps, batch=BATCH,
                                     length=length, lr=0.05, final_lr=0.002)
    return curves


def evaluate(demo, rng: np.random.Generator, selective: att.SSM, lti: att.SSM, length: int) -> HeldOut:
    """Held-out sequences through ONNX Runtime: the selective scan unrolled, the LTI layer as a Conv."""
    x, target, pos = att.marked_recall(rng, N_HELD_OUT, length)
    xf = x.astype(np.float32)
    sess_sel = demo.onnx("selective_ssm_scan", demo.make_model(att.export_ssm(selective, length)))
    sess_lti = demo.onnx("lti_ssm_conv", demo.make_model(att.export_lti_conv(lti, length)))
    pred_sel, dt_sel = (a.astype(np.float64) for a in sess_sel.run(["y", "step_size"], {"x": xf}))
    pred_lti, yseq_lti = (a.astype(np.float64) for a in sess_lti.run(["y", "y_seq"], {"x": xf}))
    np_sel, cache_sel = att.ssm_forward(selective, x)
    np_lti, cache_lti = att.ssm_forward(lti, x)
    diff_sel = float(np.max(np.abs(pred_sel - np_sel)))
    diff_lti = float(np.max(np.abs(pred_lti - np_lti)))
    diff_conv_ort = float(np.max(np.abs(yseq_lti - cache_lti["y"].transpose(0, 2, 1))))
    ort_diff = max(diff_sel, diff_lti)
    return HeldOut(x, target, pos, pred_sel, pred_lti, dt_sel, cache_sel, cache_lti,
                   diff_sel, diff_lti, diff_conv_ort, ort_diff)


def score(held: HeldOut, lti: att.SSM, length: int) -> Scores:
    """Held-out errors, the LTI floor, and the LTI scan checked against a convolution."""
    var = float(np.var(held.target))
    mse_sel = float(np.mean((held.pred_sel - held.target) ** 2))
    mse_lti = float(np.mean((held.pred_lti - held.target) ** 2))
    bound = 1.0 - 1.0 / length
    exact_lti = att.lti_expected_mse(lti, length)

    # The LTI layer's recurrent scan is a convolution (NumPy, float64).
    conv_diff = float(np.max(np.abs(att.lti_convolve(lti, held.x) - held.cache_lti["y"])))
    return Scores(var, mse_sel, mse_lti, bound, exact_lti, conv_diff)


def inspect_selection(held: HeldOut, selective: att.SSM, lti: att.SSM, length: int) -> Selection:
    """Selection at work: step size and influence of each value on the answer."""
    x, pos, dt_sel, cache_sel, cache_lti = held.x, held.pos, held.dt_sel, held.cache_sel, held.cache_lti
    marked = np.zeros(x.shape[:2], bool)
    marked[np.arange(len(x)), pos] = True
    dt_max = float(dt_sel.max())  # largest step size on any step, either channel
    dt_marked = float(np.median(dt_sel[marked].max(axis=-1)))
    dt_filler = float(np.median(dt_sel[~marked].max(axis=-1)))
    influence = {}
    for name, model, cache in (("selective", selective, cache_sel), ("lti", lti, cache_lti)):
        _, dx = att.ssm_backward(model, cache, np.ones(len(x)))
        influence[name] = np.abs(dx[..., 0])  # |d prediction / d u_s|
    share = {k: float(np.mean(v[marked] / v.sum(axis=1))) for k, v in influence.items()}
    # How the answer is carried: the flag channel (channel 1) only receives input at the mark; its
    # contribution to the answer can follow the marked value only if B depends on the input.
    flag_corr = {name: float(np.corrcoef(model.w_out[1] * cache["y"][:, -1, 1], held.target)[0, 1])
                 for name, model, cache in (("selective", selective, cache_sel), ("lti", lti, cache_lti))}
    # the answer each layer would give if the sequence ended at step t
    running = {name: cache["y"] @ model.w_out + model.b_out[0]
               for name, model, cache in (("selective", selective, cache_sel), ("lti", lti, cache_lti))}
    # two example sequences: marks far apart, marked values of opposite sign
    u = held.target
    ex = [int(np.flatnonzero((pos == length // 4) & (u > 0.8))[0]),
          int(np.flatnonzero((pos == (3 * length) // 4) & (u < -0.8))[0])]
    return Selection(dt_max, dt_marked, dt_filler, influence, share, flag_corr, running, ex)


def draw_recall(demo, curves: dict[str, list[float]], held: HeldOut, scores: Scores, steps: int) -> None:
    """Figure: training loss against the LTI floor, and held-out prediction against target."""
    bound, target = scores.bound, held.target

    @demo.figure(
        "recall",
        caption=f"Left: training loss of the two layers (same start, same batches) and the floor "
        f"1 − 1/T = {bound:.4g} that no LTI layer can beat. Right: prediction against the marked "
        f"value on {N_SCATTER} held-out sequences (ONNX Runtime)",
        alt="Left, two loss curves on a log scale: the selective layer's falls by a factor of "
        f"{curves['selective'][0] / curves['selective'][-1]:.0f}, the LTI layer's stays near "
        f"{curves['lti'][-1]:.2f}, on or above a dashed floor. Right, "
        "a scatter of prediction against target: the selective layer's points lie on the diagonal, "
        "the LTI layer's form a flat cloud near zero.",
        notice="The selective layer's loss falls far below the floor that holds every LTI layer.",
    )
    def _(fig) -> None:
        ax_l, ax_s = fig.subplots(1, 2)
        for name, color, label in (("selective", "C0", "selective (S6)"), ("lti", "C1", "LTI")):
            ax_l.plot(np.arange(1, steps + 1), curves[name], color=color, lw=1.0, label=label)
        ax_l.axhline(bound, color="C7", ls="--", lw=1.2, label="LTI floor")
        plotting.plain_log_axis(ax_l.yaxis, [0.001, 0.01, 0.1, 1])
        ax_l.set_xlabel("training step")
        ax_l.set_ylabel("mean squared error")
        ax_l.set_title("training", fontsize="medium")
        ax_l.legend(fontsize="small", loc="center right")
        k = N_SCATTER
        ax_s.plot([-3, 3], [-3, 3], color="C7", lw=1)
        ax_s.plot(target[:k], held.pred_lti[:k], "s", ms=3, color="C1", alpha=0.6, label="LTI")
        ax_s.plot(target[:k], held.pred_sel[:k], "o", ms=3, color="C0", alpha=0.7, label="selective")
        ax_s.set_xlim(-3, 3)
        ax_s.set_ylim(-3, 3)
        ax_s.set_aspect("equal")
        ax_s.set_xlabel("marked value (target)")
        ax_s.set_ylabel("prediction")
        ax_s.set_title("held-out recall", fontsize="medium")
        ax_s.legend(fontsize="small", loc="upper left")


def draw_selection(demo, held: HeldOut, sel: Selection, length: int) -> None:
    """Figure: for two sequences, the running answer and each step's influence on the final one."""
    u, pos, ex = held.target, held.pos, sel.ex
    t_axis = np.arange(1, length + 1)

    @demo.figure(
        "selection",
        caption="Two held-out sequences (marked values "
        f"{u[ex[0]]:+.2f} at step {pos[ex[0]] + 1} and {u[ex[1]]:+.2f} at step {pos[ex[1]] + 1}). Left: the "
        "answer each layer would give if the sequence ended at step t (only the last step was trained). "
        "Right: how strongly each step's value moves the final answer, |∂prediction/∂u_s|",
        alt="Left, the selective layer's running answer is flat until the marked step, then jumps to "
        "the marked value (a dotted line) and stays there; the LTI layer's wanders near zero. Right, "
        "the selective layer's sensitivity is a single spike at each sequence's marked step; the LTI "
        "layer's is the same smooth curve for both sequences, largest at the last step.",
        size=(6.4, 4.6),
        notice="The selective layer's sensitivity is a spike at the marked step; the LTI layer's is the same smooth "
        "curve.",
    )
    def _(fig) -> None:
        ax_r, ax_i = fig.subplots(1, 2)
        for e, ls in zip(ex, ("-", "--"), strict=True):
            tag = f"mark at {pos[e] + 1}"
            ax_r.axhline(u[e], color="C7", ls=":", lw=1.2)
            ax_r.plot(t_axis, sel.running["selective"][e], ls, color="C0", marker="o", ms=3,
                      label=f"selective, {tag}")
            ax_r.plot(t_axis, sel.running["lti"][e], ls, color="C1", lw=1.4, label=f"LTI, {tag}")
            ax_i.plot(t_axis, sel.influence["selective"][e], ls, color="C0", marker="o", ms=3)
            ax_i.plot(t_axis, sel.influence["lti"][e], ls, color="C1", lw=1.4)
        ax_r.set_xlabel("step t")
        ax_r.set_ylabel("answer if the sequence ended at t")
        ax_r.set_title("what the state holds", fontsize="medium")
        fig.legend(*ax_r.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize="small")
        ax_i.set_xlabel("step s")
        ax_i.set_ylabel(r"$|\partial\, \mathrm{prediction} / \partial u_s|$")
        ax_i.set_title("what the answer depends on", fontsize="medium")


def measure(demo, held: HeldOut, scores: Scores, sel: Selection, selective: att.SSM, lti: att.SSM,
            length: int, n_state: int, steps: int) -> None:
    """Record the setup, both layers' errors, the step sizes, the readout and the ONNX checks."""
    demo.key_numbers("mse_selective", "mse_lti", "lti_floor", "influence_share_selective", "influence_share_lti")
    var, mse_sel, mse_lti = scores.var, scores.mse_sel, scores.mse_lti
    demo.setting("length", length, label="Sequence length T", fmt=".0f")
    demo.setting("states", n_state, label="States per channel N", fmt=".0f")
    demo.setting("train_steps", steps, label=f"Training steps (Adam, {BATCH} fresh sequences each)", fmt=".0f")
    demo.setting("held_out", N_HELD_OUT, label="Held-out sequences", fmt=".0f")
    demo.metric("mse_selective", mse_sel, label="Held-out MSE, selective layer (ONNX Runtime)", fmt=".2g")
    demo.metric("mse_lti", mse_lti, label="Held-out MSE, LTI layer (ONNX Runtime)", fmt=".3f")
    demo.metric("target_variance", var, label="Variance of the targets", fmt=".3f")
    demo.metric("r2_selective", 1.0 - mse_sel / var, label="Variance explained, selective", fmt=".1%")
    demo.metric("r2_lti", 1.0 - mse_lti / var, label="Variance explained, LTI", fmt=".1%")
    demo.metric("lti_floor", scores.bound, label="Lowest expected MSE of any LTI layer, 1 − 1/T", fmt=".4f")
    demo.metric("lti_exact_mse", scores.exact_lti, label="Exact expected MSE of the trained LTI layer", fmt=".4f")
    demo.metric("dt_max", sel.dt_max, label="Largest step size Δ on any held-out step (either channel)", fmt=".2g")
    demo.metric("dt_marked", sel.dt_marked, label="Median step size Δ at the marked step (larger channel)",
                fmt=".2g")
    demo.metric("dt_filler", sel.dt_filler, label="Median step size Δ at unmarked steps (larger channel)",
                fmt=".2g")
    demo.metric("dt_lti", float(att.softplus(lti.b_dt[0])), label="The LTI layer's constant step size", fmt=".3g")
    demo.metric("flag_corr_selective", sel.flag_corr["selective"],
                label="Correlation of the flag channel's contribution with the marked value, selective",
                fmt=".3f")
    demo.metric("flag_corr_lti", sel.flag_corr["lti"], label="Same, LTI", fmt=".2f")
    demo.metric("readout_value_channel", float(selective.w_out[0]),
                label="Selective layer's readout weight on the value channel", fmt=".3f")
    demo.metric("readout_flag_channel", float(selective.w_out[1]),
                label="Selective layer's readout weight on the flag channel", fmt=".3f")
    demo.metric("influence_share_selective", sel.share["selective"],
                label="Share of the answer's sensitivity on the marked step, selective", fmt=".1%")
    demo.metric("influence_share_lti", sel.share["lti"], label="Same, LTI", fmt=".1%")
    demo.metric("conv_max_abs_diff", scores.conv_diff, label="Max |scan − convolution|, LTI layer (NumPy)",
                fmt=".1e")
    demo.metric("ort_max_abs_diff", held.ort_diff, label="Max |ONNX Runtime − NumPy| prediction, both layers",
                fmt=".1e")
    demo.metric("ort_conv_max_abs_diff", held.diff_conv_ort,
                label="Max |ONNX Conv − NumPy scan|, every step's output", fmt=".1e")


def claim_findings(demo, held: HeldOut, scores: Scores, sel: Selection) -> None:
    """Findings: selective recalls, LTI cannot, selection focuses on the mark; checks: the scan is a
    convolution, ONNX Runtime matches NumPy."""
    bound, share = scores.bound, sel.share
    demo.claim(
        "The selective layer recalls the marked value on held-out sequences (ONNX Runtime)",
        holds=bool(scores.mse_sel < 0.05 * scores.var),
        mse=demo.number(scores.mse_sel, "held-out error of the selective layer"),
        target_variance=scores.var,
        sequences=demo.number(len(held.x), "held-out sequences"),
    )
    demo.claim(
        f"The LTI layer, trained the same way, cannot: its error stays near the floor 1 − 1/T = "
        f"{bound:.4g} that no LTI layer can beat on this task",
        holds=bool(scores.mse_lti > 0.9 * bound),
        mse=demo.number(scores.mse_lti, "held-out error of the LTI layer"),
        exact_expected_mse=demo.number(scores.exact_lti, "its expected error, computed exactly"),
        floor=demo.number(bound, "floor 1 − 1/T"),
    )
    demo.check(
        "The trained LTI layer's exact expected error, computed from its kernel, is not below the floor",
        holds=bool(scores.exact_lti >= bound - 1e-12),
        exact_expected_mse=scores.exact_lti,
        floor=bound,
    )
    demo.claim(
        f"The selective layer's answer depends mostly on the marked value (more than {FOCUS:.0%} of its "
        "sensitivity falls on the marked step); the LTI layer spreads its sensitivity over every step, "
        "putting no more on the mark than on an average step",
        holds=bool(share["selective"] > FOCUS and share["lti"] < 1.5 / len(held.x[0])),
        share_selective=demo.number(
            share["selective"], "share of sensitivity on the marked value, selective layer", fmt=".1%"),
        share_lti=demo.number(share["lti"], "the same, LTI layer", fmt=".1%"),
    )
    demo.check(
        "For the LTI layer the recurrent scan and the convolution with its kernel give the same "
        "outputs at every step (NumPy), and so does the ONNX Conv node",
        holds=bool(scores.conv_diff < 1e-12 and held.diff_conv_ort < 1e-5),
        max_abs_diff_numpy=scores.conv_diff,
        max_abs_diff_onnx_conv=held.diff_conv_ort,
    )
    demo.check(
        "ONNX Runtime matches NumPy for both exported layers (unrolled selective scan, LTI Conv)",
        holds=bool(held.ort_diff < 1e-4),
        max_abs_diff_selective=held.diff_sel,
        max_abs_diff_lti=held.diff_lti,
    )
