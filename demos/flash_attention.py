"""FlashAttention: the tiled online-softmax algorithm gives exactly the attention output while
never holding the N x N score matrix; checked against standard attention run in ONNX Runtime."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from demolib import attention as att
from demolib import plotting

N_KEYS, N_VALUES = 24, 8


@dataclass
class Sweep:
    """Standard vs tiled attention over growing lengths: one ledger per run, and a summary."""

    ledgers: dict[str, list]  # "std", "tiled" (and "_c" with a causal mask): one ledger per length
    big_std: att.Ledger  # the longest sequence
    big_tiled: att.Ledger
    max_diff: float
    causal_tiles: int
    all_tiles: int
    exp_overhead: float


@dataclass
class LayerCheck:
    """Tiled NumPy attention on the trained lookup layer against standard attention in ORT."""

    weights: np.ndarray  # attention weights of the first example, from ORT
    ex_ledger: att.Ledger  # tiled run on the first example
    ort_diff: float
    np_diff: float
    same_pred: float
    accuracy: float
    row: int  # the query row traced block by block
    trace: object
    trace_err: list[float]


def run(demo) -> None:
    opts = demo.options
    sizes = [int(v) for v in opts.get("sizes", (64, 128, 256, 512, 1024))]
    d = int(opts.get("d", 16))
    block = int(opts.get("block", 64))
    length, tile = int(opts.get("pairs", 16)), int(opts.get("tile", 4))

    sweep = sweep_lengths(demo.rng, sizes, d, block)
    model = train_layer(demo.rng, length)
    sess = demo.onnx("lookup_attention", demo.make_model(att.export_lookup(model)))
    check = check_trained_layer(demo.rng, sess, model, length, tile)

    draw_memory(demo, sweep, sizes, block, d)
    draw_tiles(demo, check, length, tile)
    measure(demo, sweep, check, sizes, d, block, length, tile)
    claim_findings(demo, sweep, check, sizes, block)


def sweep_lengths(rng, sizes: list[int], d: int, block: int) -> Sweep:
    """Standard vs tiled on random unit-variance inputs of growing length N, causal or not."""
    sweep: dict[str, list] = {k: [] for k in ("std", "tiled", "diff", "std_c", "tiled_c", "diff_c")}
    for n in sizes:
        Q, K, V = (rng.normal(size=(n, d)) for _ in range(3))
        for causal, suffix in ((False, ""), (True, "_c")):
            a, b = att.Ledger(), att.Ledger()
            ref = att.standard_attention(Q, K, V, causal=causal, ledger=a)
            out, _, _ = att.tiled_attention(Q, K, V, block_q=block, block_k=block, causal=causal, ledger=b)
            sweep["std" + suffix].append(a)
            sweep["tiled" + suffix].append(b)
            sweep["diff" + suffix].append(float(np.max(np.abs(out - ref))))
    big_std, big_tiled = sweep["std"][-1], sweep["tiled"][-1]
    return Sweep(
        ledgers={k: sweep[k] for k in ("std", "tiled", "std_c", "tiled_c")},
        big_std=big_std,
        big_tiled=big_tiled,
        max_diff=float(max(sweep["diff"] + sweep["diff_c"])),
        causal_tiles=sweep["tiled_c"][-1].tiles,
        all_tiles=big_tiled.tiles,
        exp_overhead=big_tiled.exps / big_std.exps - 1.0,
    )


def train_layer(rng, length: int):
    """Train a small attention layer to look up the value stored under a queried key."""
    model = att.init_lookup(rng, N_KEYS, N_VALUES, 8)
    att.train_lookup(model, rng, steps=250, batch=32, length=length, lr=0.02)
    return model


def check_trained_layer(rng, sess, model, length: int, tile: int) -> LayerCheck:
    """Run the trained layer's attention tiled in NumPy and compare with standard attention in ORT."""
    test = att.lookup_batch(rng, 100, length, N_KEYS, N_VALUES)
    feeds = {"queries": test.queries.astype(np.float32), "pairs": test.pairs.astype(np.float32)}
    ort_logits, ort_w = (a.astype(np.float64) for a in sess.run(["logits", "weights"], feeds))
    _, cache = att.lookup_forward(model, test)
    ex_ledger = att.Ledger()
    tiled_logits = np.empty_like(ort_logits)
    for e in range(len(test.labels)):
        z, _, _ = att.tiled_attention(cache["Q"][e], cache["K"][e], cache["V"][e], model.scale,
                                      block_q=tile, block_k=tile, ledger=ex_ledger if e == 0 else None)
        tiled_logits[e] = z @ model.Wo + model.bo
    ort_diff = float(np.max(np.abs(tiled_logits - ort_logits)))
    np_diff = float(np.max(np.abs(tiled_logits - att.lookup_forward(model, test)[0])))
    same_pred = float(np.mean(tiled_logits.argmax(-1) == ort_logits.argmax(-1)))
    accuracy = float(np.mean(tiled_logits.argmax(-1) == test.labels))
    # the online-softmax state of one query row, block by block
    row = int(test.match[0].argmax())  # a query whose key sits in the last stored block
    _, _, trace = att.tiled_attention(cache["Q"][0], cache["K"][0], cache["V"][0], model.scale,
                                      block_q=tile, block_k=tile, trace_row=row)
    exact_row = cache["P"][0][row] @ cache["V"][0]  # standard attention, float64
    trace_err = [float(np.max(np.abs(o - exact_row))) for o in trace.output]
    return LayerCheck(ort_w[0], ex_ledger, ort_diff, np_diff, same_pred, accuracy, row, trace, trace_err)


def draw_memory(demo, sweep: Sweep, sizes: list[int], block: int, d: int) -> None:
    """Figure: largest intermediate array and memory traffic of both algorithms against N."""
    n_arr = np.array(sizes)

    @demo.figure(
        "memory",
        caption=f"Standard attention against the tiled algorithm (blocks of {block}×{block}, d = {d}) "
        "as the sequence length N grows: the largest intermediate array each one creates, and the "
        "elements each one reads from and writes to the big arrays (counts from the NumPy runs)",
        alt=f"Two log-log charts against sequence length N from {sizes[0]} to {sizes[-1]}. Left: the "
        f"standard algorithm's largest array grows as N squared up to {sizes[-1] ** 2:,} elements, while "
        "the tiled one stays flat at one block. Right: both move more data as N grows, but the tiled "
        f"algorithm moves {sweep.big_std.moved / sweep.big_tiled.moved:.1f} times less at the longest.",
        notice="The standard algorithm's largest array grows as N squared; the tiled one stays at one block.",
    )
    def _(fig) -> None:
        ax_mem, ax_io = fig.subplots(1, 2)
        for ax, key, ylabel in ((ax_mem, "largest", "largest intermediate (elements)"),
                                (ax_io, "moved", "elements read + written")):
            for name, color, marker, label in (("std", "C1", "s", "standard"), ("tiled", "C0", "o", "tiled")):
                ax.plot(n_arr, [getattr(lg, key) for lg in sweep.ledgers[name]], marker=marker, color=color,
                        label=label)
            plotting.plain_log_axis(ax.xaxis, n_arr)
            ax.set_yscale("log")
            plotting.plain_ticks(ax.yaxis, fmt=plotting.exponent_label)
            ax.set_xlabel("sequence length N")
            ax.set_ylabel(ylabel)
        ax_mem.set_title("memory held", fontsize="medium")
        ax_io.set_title("memory traffic", fontsize="medium")
        ax_mem.legend(loc="upper left", fontsize="small")


def draw_tiles(demo, check: LayerCheck, length: int, tile: int) -> None:
    """Figure: the trained layer's weights in tiles, and one query row's state block by block."""
    w0, row, trace, trace_err = check.weights, check.row, check.trace, check.trace_err

    @demo.figure(
        "tiles",
        caption=f"Left: attention weights of the trained lookup layer for one example ({length} queries × "
        f"{length} keys, ONNX Runtime); the tiled algorithm visits them in {tile}×{tile} tiles (grid) and "
        f"never stores the whole matrix. Right: for query {row + 1} (shaded), the running maximum score "
        "and the largest difference between the partial output and the exact one after each key block",
        alt=f"Left, a {length}-by-{length} grid of squares divided by lines into {tile}-by-{tile} tiles; "
        f"each row has one large square at the queried key. Right, two small charts over the "
        f"{-(-length // tile)} key blocks: the running maximum jumps when the block holding the matching "
        "key arrives, and the partial output's error stays large until then and falls to rounding "
        f"level ({trace_err[-1]:.0e}) after the last block.",
        notice="The running maximum jumps when the matching key's block arrives, and the error falls to rounding "
        "after the last block.",
    )
    def _(fig) -> None:
        axd = fig.subplot_mosaic([["w", "m"], ["w", "e"]], width_ratios=(1.15, 1))
        ax_w = axd["w"]
        att.hinton(ax_w, w0)
        for k in range(tile, length, tile):
            ax_w.axhline(k - 0.5, color="C7", lw=0.9)
            ax_w.axvline(k - 0.5, color="C7", lw=0.9)
        ax_w.axhspan(row - 0.5, row + 0.5, color="C3", alpha=0.18, lw=0)
        ticks = list(range(0, length, tile))
        ax_w.set_xticks(ticks, [str(t + 1) for t in ticks])
        ax_w.set_yticks(ticks, [str(t + 1) for t in ticks])
        ax_w.set_xlabel("key position")
        ax_w.set_ylabel("query")
        ax_w.set_title("weights, tile by tile", fontsize="medium")
        blocks = np.arange(1, len(trace.running_max) + 1)
        axd["m"].plot(blocks, trace.running_max, "o-", color="C0")
        axd["m"].set_ylabel("running max m")
        axd["m"].set_title(f"query {row + 1}, block by block", fontsize="medium")
        axd["m"].set_xticks(blocks, [])
        axd["e"].plot(blocks, np.maximum(trace_err, 1e-17), "s-", color="C1")
        plotting.plain_log_axis(axd["e"].yaxis, [1e-16, 1e-8, 1], fmt=plotting.exponent_label)
        axd["e"].set_ylim(1e-17, 10)
        axd["e"].set_ylabel("output error")
        axd["e"].set_xticks(blocks)
        axd["e"].set_xlabel("key blocks processed")


def measure(demo, sweep: Sweep, check: LayerCheck, sizes: list[int], d: int, block: int, length: int,
            tile: int) -> None:
    """Record the sweep's sizes, memory and traffic, and the trained layer's agreement."""
    demo.key_numbers("memory_ratio", "traffic_ratio", "exp_overhead", "max_abs_diff_tiled")
    big_std, big_tiled = sweep.big_std, sweep.big_tiled
    demo.setting("d_head", d, label="Width of queries and keys in the sweep", fmt=".0f")
    demo.setting("block", block, label="Block size (queries and keys) in the sweep", fmt=".0f")
    demo.setting("n_min", sizes[0], label="Shortest sequence in the sweep", fmt=".0f")
    demo.setting("n_max", sizes[-1], label="Longest sequence in the sweep", fmt=".0f")
    demo.metric("max_abs_diff_tiled", sweep.max_diff, label="Max |tiled − standard| output, whole sweep (float64)",
                fmt=".1e")
    demo.metric("largest_standard", big_std.largest, label=f"Largest intermediate, standard, N = {sizes[-1]}",
                fmt=",.0f", unit="elements")
    demo.metric("largest_tiled", big_tiled.largest, label=f"Largest intermediate, tiled, N = {sizes[-1]}",
                fmt=",.0f", unit="elements")
    demo.metric("memory_ratio", big_std.largest / big_tiled.largest, label="Largest-array ratio", fmt=",.0f",
                unit="×")
    demo.metric("moved_standard", big_std.moved, label=f"Elements read + written, standard, N = {sizes[-1]}",
                fmt=",.0f")
    demo.metric("moved_tiled", big_tiled.moved, label=f"Elements read + written, tiled, N = {sizes[-1]}",
                fmt=",.0f")
    demo.metric("traffic_ratio", big_std.moved / big_tiled.moved, label="Traffic ratio", fmt=".1f", unit="×")
    demo.metric("exp_overhead", sweep.exp_overhead, label="Extra exponentials of the tiled algorithm (rescaling)",
                fmt=".1%")
    demo.metric("causal_tiles", sweep.causal_tiles,
                label=f"Score tiles computed with a causal mask, N = {sizes[-1]}", fmt=".0f")
    demo.metric("all_tiles", sweep.all_tiles, label=f"Score tiles without a mask, N = {sizes[-1]}", fmt=".0f")
    demo.setting("trained_pairs", length, label="Keys (and queries) per example in the trained layer", fmt=".0f")
    demo.setting("trained_tile", tile, label="Tile size used on the trained layer", fmt=".0f")
    demo.metric("trained_largest_tiled", check.ex_ledger.largest, label="Largest intermediate, tiled, trained layer",
                fmt=".0f", unit="elements")
    demo.metric("ort_max_abs_diff", check.ort_diff, label="Max |tiled NumPy − ONNX Runtime standard| logit",
                fmt=".1e")
    demo.metric("numpy_max_abs_diff", check.np_diff, label="Max |tiled − standard| logit, both NumPy", fmt=".1e")
    demo.metric("trace_final_error", check.trace_err[-1], label="Traced row: |output after the last block − exact|",
                fmt=".1e")
    demo.metric("trained_accuracy", check.accuracy, label="Lookup accuracy with tiled attention", fmt=".1%")


def claim_findings(demo, sweep: Sweep, check: LayerCheck, sizes: list[int], block: int) -> None:
    """Checks (all hold by construction): exact output, one block of memory, less traffic, causal
    skipping, ORT agreement."""
    big_std, big_tiled = sweep.big_std, sweep.big_tiled
    demo.check(
        "The tiled algorithm computes exactly the attention output: it matches standard attention to "
        "rounding error for every length, with and without a causal mask",
        holds=bool(sweep.max_diff < 1e-12),
        max_abs_diff=sweep.max_diff,
        lengths=", ".join(map(str, sizes)),
    )
    demo.check(
        f"Its largest intermediate is one {block}×{block} block at every length, while standard attention "
        f"holds the full N×N matrix",
        holds=bool(all(lg.largest == min(block, n) ** 2 for lg, n in zip(sweep.ledgers["tiled"], sizes, strict=True))
                   and all(lg.largest == n * n for lg, n in zip(sweep.ledgers["std"], sizes, strict=True))),
        largest_tiled=", ".join(str(lg.largest) for lg in sweep.ledgers["tiled"]),
        largest_standard=", ".join(str(lg.largest) for lg in sweep.ledgers["std"]),
    )
    demo.check(
        f"It moves several times fewer elements to and from the big arrays (N = {sizes[-1]}), for a "
        "few percent more exponentials",
        holds=bool(big_std.moved > 3 * big_tiled.moved and sweep.exp_overhead < 0.05),
        moved_standard=big_std.moved,
        moved_tiled=big_tiled.moved,
        extra_exponentials=sweep.exp_overhead,
    )
    demo.check(
        "With a causal mask it skips the tiles above the diagonal altogether",
        holds=bool(sweep.causal_tiles == (sweep.all_tiles + round(np.sqrt(sweep.all_tiles))) // 2),
        tiles_computed=sweep.causal_tiles,
        tiles_without_mask=sweep.all_tiles,
    )
    demo.check(
        "On the trained layer, the tiled NumPy result matches standard attention run in ONNX Runtime "
        "and gives the same answers",
        holds=bool(check.ort_diff < 1e-4 and check.same_pred == 1.0 and check.np_diff < 1e-12),
        max_abs_diff_vs_ort=check.ort_diff,
        max_abs_diff_vs_numpy=check.np_diff,
        same_predictions=check.same_pred,
        accuracy=check.accuracy,
    )
