"""What the fully connected nets of demolib share: the layer layout, the parameter order and the
random initialisation.

A layer is ``a @ W + b`` with ``W`` of shape ``(fan_in, fan_out)`` (an ONNX ``Gemm`` without
transposes); an ensemble of ``S`` nets stacks them as ``(S, fan_in, fan_out)`` and
``(S, 1, fan_out)``. ``nets.MLP`` (BatchNorm, dropout), ``deepnets.Net`` (identity skips, counted
multiply-adds) and ``generative.Stack`` (one activation per layer, input gradients, ensembles)
build on ``DenseLayers``; each keeps its own forward and backward pass, which is what differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Self

import numpy as np


class DenseLayers:
    """Mixin for a dataclass with fields ``weights`` and ``biases`` (one array per layer)."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @property
    def sizes(self) -> list[int]:
        """Input width, then every layer's output width."""
        return [self.weights[0].shape[-2]] + [w.shape[-1] for w in self.weights]

    @property
    def n_hidden(self) -> int:
        return len(self.weights) - 1

    def params(self) -> list[np.ndarray]:
        """Trainable arrays in a fixed order (W0, b0, W1, b1, ...); updating them in place
        updates the net."""
        return [p for wb in zip(self.weights, self.biases, strict=True) for p in wb]

    def copy(self) -> Self:
        """A copy with its own weight and bias arrays."""
        return replace(self, weights=[w.copy() for w in self.weights], biases=[b.copy() for b in self.biases])


def init_dense(
    rng: np.random.Generator, sizes: Sequence[int], gains: Sequence[float], *, members: int | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights ``N(0, gain / fan_in)`` (one gain per layer) and zero biases for ``sizes``; with
    ``members`` an ensemble of that many independent nets."""
    lead = () if members is None else (members,)
    weights, biases = [], []
    for m, n, gain in zip(sizes[:-1], sizes[1:], gains, strict=True):
        weights.append(rng.standard_normal((*lead, m, n)) * np.sqrt(gain / m))
        biases.append(np.zeros((*lead, 1, n) if lead else n))
    return weights, biases
