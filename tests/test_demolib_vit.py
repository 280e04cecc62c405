"""Tests for demos/demolib/vit.py (the vision-transformer demo's model): patches cut in
row-major order, the hand-written backward pass against central finite differences, the ONNX
export (patches cut inside the graph) against the NumPy forward pass in ONNX Runtime, and a
model without positions that cannot tell patch order apart."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"
if str(DEMOS) not in sys.path:
    sys.path.insert(0, str(DEMOS))

from demolib import attention as att  # noqa: E402
from demolib import vit  # noqa: E402
from test_demolib_attention import ATOL, _fd_check, _session  # noqa: E402


def test_patches_are_cut_row_by_row() -> None:
    image = np.arange(16.0).reshape(1, 4, 4)
    patches = vit.patchify(image, 2)
    assert patches.shape == (1, 4, 4)
    np.testing.assert_array_equal(patches[0, 0], [0, 1, 4, 5])  # top left
    np.testing.assert_array_equal(patches[0, 1], [2, 3, 6, 7])  # top right
    np.testing.assert_array_equal(patches[0, 3], [10, 11, 14, 15])  # bottom right


@pytest.mark.parametrize("kw", [{}, {"use_pos": False}, {"pool": "mean"}], ids=["cls", "no-pos", "mean"])
def test_vit_backward_matches_finite_differences(kw: dict) -> None:
    rng = np.random.default_rng(11)
    m = vit.init_vit(rng, 4, 4, 6, 7, 3, **kw)
    for p in m.params():  # move LayerNorms and biases off their initial values
        p += rng.normal(0.0, 0.2, p.shape)
    x = rng.normal(size=(3, 4, 4))
    y = rng.integers(0, 3, 3)

    def loss() -> float:
        return att.cross_entropy(vit.vit_forward(m, x)[0], y)[0]

    logits, cache = vit.vit_forward(m, x)
    _fd_check(m.params(), vit.vit_backward(m, cache, att.cross_entropy(logits, y)[1]), loss)


@pytest.mark.parametrize("use_pos", [True, False])
def test_vit_export_cuts_patches_and_matches_numpy(use_pos: bool) -> None:
    rng = np.random.default_rng(12)
    m = vit.init_vit(rng, 4, 16, 8, 12, 5, use_pos=use_pos)
    for p in m.params():
        p += rng.normal(0.0, 0.2, p.shape)
    images = rng.normal(size=(6, 8, 8))
    logits, cache = vit.vit_forward(m, vit.patchify(images, 2))
    logits_ort, weights_ort = _session(vit.export_vit(m, 8, 2)).run(None, {"image": images.astype(np.float32)})
    np.testing.assert_allclose(logits_ort, logits, atol=ATOL)
    np.testing.assert_allclose(weights_ort, cache["P"], atol=ATOL)


def test_without_positions_patch_order_does_not_matter() -> None:
    rng = np.random.default_rng(13)
    m = vit.init_vit(rng, 4, 9, 8, 12, 3, use_pos=False)
    x = rng.normal(size=(4, 9, 4))
    shuffled = x[:, rng.permutation(9)]
    np.testing.assert_allclose(vit.vit_forward(m, shuffled)[0], vit.vit_forward(m, x)[0], atol=1e-12)
    with_pos = vit.init_vit(np.random.default_rng(13), 4, 9, 8, 12, 3)
    assert np.max(np.abs(vit.vit_forward(with_pos, shuffled)[0] - vit.vit_forward(with_pos, x)[0])) > 1e-3
