"""Figure format choice and dark variants (no demo process: plain matplotlib figures)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from generator.demo import plots


def _figure(draw) -> Figure:
    fig = Figure()
    draw(fig.subplots())
    return fig


@pytest.mark.parametrize(("draw", "expected"), [
    (lambda ax: ax.plot(np.arange(5_000), np.arange(5_000)), "svg"),  # a long line is cheap text
    (lambda ax: ax.scatter(np.arange(300), np.arange(300)), "svg"),
    (lambda ax: ax.scatter(np.arange(2_000), np.arange(2_000)), "png"),  # a marker per point
    (lambda ax: ax.plot(np.arange(2_000), np.arange(2_000), "o"), "png"),
    (lambda ax: ax.contourf(*np.meshgrid(np.linspace(-3, 3, 200), np.linspace(-3, 3, 200)),
                            np.random.default_rng(0).normal(size=(200, 200))), "png"),
    (lambda ax: ax.imshow(np.eye(3)), "png"),  # raster data is never SVG
])
def test_dense_or_raster_figures_become_png(draw, expected):
    assert plots.choose_format(_figure(draw)) == expected


def test_dark_svg_swaps_the_palette_and_nothing_else(tmp_path):
    files = plots.render(lambda fig: fig.subplots().plot([0, 1], [1, 0]), tmp_path, "line", (4, 3))
    light = (tmp_path / files["light"]).read_text()
    dark = (tmp_path / files["dark"]).read_text()
    assert files == {"light": "line-light.svg", "dark": "line-dark.svg"}
    assert "#1f77b4" in light and "#58a6ff" in dark and "#1f77b4" not in dark
    assert len(light.splitlines()) == len(dark.splitlines())
