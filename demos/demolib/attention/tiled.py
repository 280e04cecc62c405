"""Tiled (flash) attention: the FlashAttention algorithm (online softmax over key/value blocks)
next to standard attention, with a ``Ledger`` that records the largest array each one holds and
the elements it moves to and from the big arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from demolib.attention.common import causal_mask
from demolib.nets import softmax

# --------------------------------------------------------------------------- tiled (flash) attention


@dataclass
class Ledger:
    """Bookkeeping of an attention algorithm, in array elements (counts, not timings).

    ``largest`` is the biggest intermediate array it creates (the inputs ``Q, K, V`` and the output
    ``O`` are not intermediates); ``reads`` / ``writes`` count elements moved from / to the big
    arrays that would live in slow memory (``Q, K, V, O``, and for the standard algorithm the
    ``N x M`` score and weight matrices); ``exps`` counts exponentials; ``tiles`` the score blocks
    computed.
    """

    largest: int = 0
    largest_name: str = ""
    reads: int = 0
    writes: int = 0
    exps: int = 0
    tiles: int = 0

    def hold(self, name: str, arr: np.ndarray) -> np.ndarray:
        if arr.size > self.largest:
            self.largest, self.largest_name = int(arr.size), name
        return arr

    def read(self, *arrs: np.ndarray) -> None:
        self.reads += sum(int(a.size) for a in arrs)

    def write(self, *arrs: np.ndarray) -> None:
        self.writes += sum(int(a.size) for a in arrs)

    @property
    def moved(self) -> int:
        return self.reads + self.writes


def standard_attention(Q: np.ndarray, K: np.ndarray, V: np.ndarray, scale: float | None = None, *,
                       causal: bool = False, ledger: Ledger | None = None) -> np.ndarray:
    """Attention as usually written for one head (``Q (N, d)``, ``K (M, d)``, ``V (M, dv)``): the
    whole score matrix ``S``, then the whole weight matrix ``P``, each stored and read back."""
    lg = Ledger() if ledger is None else ledger
    scale = 1.0 / np.sqrt(Q.shape[-1]) if scale is None else scale
    lg.read(Q, K)
    S = lg.hold("score matrix", (Q @ K.T) * scale)
    if causal:
        S = np.where(causal_mask(*S.shape), S, -np.inf)
    lg.write(S)
    lg.read(S)
    P = lg.hold("weight matrix", softmax(S))
    lg.exps += S.size
    lg.tiles += 1
    lg.write(P)
    lg.read(P, V)
    out = P @ V
    lg.write(out)
    return out


@dataclass
class RowTrace:
    """The online-softmax state of one query row after each key block it saw."""

    running_max: list[float] = field(default_factory=list)
    running_sum: list[float] = field(default_factory=list)
    output: list[np.ndarray] = field(default_factory=list)  # normalised partial output after the block


def tiled_attention(Q: np.ndarray, K: np.ndarray, V: np.ndarray, scale: float | None = None, *,
                    block_q: int = 64, block_k: int = 64, causal: bool = False, ledger: Ledger | None = None,
                    trace_row: int | None = None) -> tuple[np.ndarray, np.ndarray, RowTrace]:
    """Exact attention by the FlashAttention tiling (forward pass).

    For each block of ``block_q`` queries, loop over blocks of ``block_k`` keys and values keeping,
    per query row, the running maximum ``m`` of the scores seen so far, the running sum ``l`` of
    ``exp(score - m)`` and the unnormalised output ``acc``. A new block with a larger maximum
    rescales the old ``l`` and ``acc`` by ``exp(m_old - m_new)`` (the online softmax); at the end
    ``O = acc / l``. Only blocks are ever created, never the ``N x M`` matrices. With ``causal``,
    key blocks entirely to the right of the query block are skipped.

    Returns ``O``, the per-row log-sum-exp ``m + log l`` (what FlashAttention keeps for its
    backward pass, which recomputes the blocks instead of storing ``P``) and the ``RowTrace`` of
    query ``trace_row`` (empty if None).
    """
    lg = Ledger() if ledger is None else ledger
    n, d = Q.shape
    m_keys, dv = K.shape[0], V.shape[1]
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    out = np.empty((n, dv))
    lse = np.empty(n)
    trace = RowTrace()
    for i0 in range(0, n, block_q):
        i1 = min(i0 + block_q, n)
        Qi = Q[i0:i1]
        lg.read(Qi)
        m = np.full(i1 - i0, -np.inf)
        l_sum = np.zeros(i1 - i0)
        acc = lg.hold("output block", np.zeros((i1 - i0, dv)))
        for j0 in range(0, m_keys, block_k):
            if causal and j0 > i1 - 1:
                break  # every key in this and later blocks is in the future of every query here
            j1 = min(j0 + block_k, m_keys)
            Kj, Vj = K[j0:j1], V[j0:j1]
            lg.read(Kj, Vj)
            S = lg.hold("score block", (Qi @ Kj.T) * scale)
            if causal:
                S = np.where(np.arange(j0, j1)[None, :] <= np.arange(i0, i1)[:, None], S, -np.inf)
            m_new = np.maximum(m, S.max(axis=1))
            P = lg.hold("weight block", np.exp(S - m_new[:, None]))
            corr = np.exp(m - m_new)  # 0 on the first block (m = -inf)
            lg.exps += P.size + corr.size
            lg.tiles += 1
            l_sum = corr * l_sum + P.sum(axis=1)
            acc = corr[:, None] * acc + P @ Vj
            m = m_new
            if trace_row is not None and i0 <= trace_row < i1:
                r = trace_row - i0
                trace.running_max.append(float(m[r]))
                trace.running_sum.append(float(l_sum[r]))
                trace.output.append(acc[r] / l_sum[r])
        out[i0:i1] = acc / l_sum[:, None]
        lse[i0:i1] = m + np.log(l_sum)
        lg.write(out[i0:i1], lse[i0:i1])
    return out, lse, trace
