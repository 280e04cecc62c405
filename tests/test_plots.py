"""Figure format choice and dark variants (no demo process: plain matplotlib figures)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from generator.demo.runtime import plots


def _figure(draw) -> Figure:
    fig = Figure()
    draw(fig.subplots())
    return fig


def _grid(n: int = 200):
    return np.meshgrid(np.linspace(-3, 3, n), np.linspace(-3, 3, n))


@pytest.mark.parametrize(("draw", "kind", "rasterized"), [
    (lambda ax: ax.plot(np.arange(5_000), np.arange(5_000)), "svg", 0),  # a long line is cheap text
    (lambda ax: ax.scatter(np.arange(300), np.arange(300)), "svg", 0),
    (lambda ax: ax.scatter(np.arange(300), np.arange(300), c=np.arange(300)), "svg", 0),
    # dense layers in theme colours: drawn once per theme, as PNG
    (lambda ax: ax.scatter(np.arange(2_000), np.arange(2_000)), "png", 0),
    (lambda ax: ax.plot(np.arange(2_000), np.arange(2_000), "o"), "png", 0),
    # dense colour-mapped layers look the same in both themes: one raster inside the SVG
    (lambda ax: ax.scatter(np.arange(2_000), np.arange(2_000), c=np.arange(2_000)), "svg", 1),
    (lambda ax: ax.contourf(*_grid(), np.random.default_rng(0).normal(size=(200, 200))), "svg", 1),
    (lambda ax: ax.imshow(np.eye(3)), "svg", 1),  # raster data stays raster
    (lambda ax: (ax.contourf(*_grid(), _grid()[0]), ax.scatter(np.arange(2_000), np.arange(2_000))),
     "png", 0),
])
def test_format_follows_what_the_figure_holds(draw, kind, rasterized):
    form = plots.choose_format(_figure(draw))
    assert (form.kind, len(form.rasterize)) == (kind, rasterized)


def _dense_draw(fig):
    """A decision map whose colour map follows the theme, with points and a legend on top."""
    from matplotlib import rcParams

    rng = np.random.default_rng(0)
    ax = fig.subplots()
    cmap = "RdBu_r" if rcParams["text.color"] == plots.THEMES["light"]["text.color"] else "PuOr"
    ax.contourf(*_grid(), _grid()[0] * _grid()[1], levels=20, cmap=cmap)
    ax.scatter(*rng.normal(size=(2, 3_000)), c=rng.integers(0, 3, 3_000), s=2, cmap="tab10")
    ax.plot([-3, 3], [3, -3], color="C0", label="boundary")
    ax.set_xlabel("feature 1")
    ax.legend()


def _rasters(svg: str) -> list[str]:
    return re.findall(r"data:image/png;base64,\s*([A-Za-z0-9+/=\s]+)", svg)


def test_dense_colour_mapped_layers_become_one_raster_inside_an_svg(tmp_path):
    files = plots.render(_dense_draw, tmp_path, "dense", (4, 4))
    assert files.pop("min_text_px") >= 9 and files == {"light": "dense-light.svg", "dark": "dense-dark.svg"}
    light = (tmp_path / files["light"]).read_text()
    dark = (tmp_path / files["dark"]).read_text()
    assert len(_rasters(light)) == 1 and len(_rasters(dark)) == 1  # both layers in one raster
    assert "feature 1" in light  # text stays text
    assert "#1f77b4" in light and "#58a6ff" in dark and "#1f77b4" not in dark
    assert len(light) < 400_000  # a vector scatter of 3,000 markers would be ~500 KB
    # draw() may pick its colour map from the theme, so the dark variant is drawn again
    assert _rasters(light) != _rasters(dark)


def test_captured_figure_reuses_its_raster_in_the_dark_variant(tmp_path):
    fig = Figure(figsize=(4, 4))
    with plots.matplotlib_rc("light"):
        _dense_draw(fig)
    files = plots.save_captured(fig, tmp_path, "captured")
    light = (tmp_path / files["light"]).read_text()
    dark = (tmp_path / files["dark"]).read_text()
    assert files.pop("min_text_px") >= 9 and files == {"light": "captured-light.svg", "dark": "captured-dark.svg"}
    assert _rasters(light) == _rasters(dark) and len(_rasters(light)) == 1
    assert "#1f77b4" in light and "#58a6ff" in dark and "#1f77b4" not in dark


def test_dark_svg_swaps_the_palette_and_nothing_else(tmp_path):
    files = plots.render(lambda fig: fig.subplots().plot([0, 1], [1, 0]), tmp_path, "line", (4, 3))
    light = (tmp_path / files["light"]).read_text()
    dark = (tmp_path / files["dark"]).read_text()
    assert files.pop("min_text_px") >= 9 and files == {"light": "line-light.svg", "dark": "line-dark.svg"}
    assert "#1f77b4" in light and "#58a6ff" in dark and "#1f77b4" not in dark
    assert len(light.splitlines()) == len(dark.splitlines())


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_image_size_reads_a_saved_figure_in_css_pixels(tmp_path, fmt):
    files = plots.render(lambda fig: fig.subplots().plot([0, 1]), tmp_path, "f", (6.0, 3.0), fmt)
    assert plots.image_size((tmp_path / files["light"]).read_bytes()) == (576, 288)  # 96 px per inch
    assert plots.image_size(b"not an image") is None


def _zlib_level(png: bytes) -> int:
    """FLEVEL of the first IDAT's zlib header: 0 fastest (level 1), 1 fast (2-5), 2 default (6), 3 best."""
    idat = png.index(b"IDAT") + 4
    return png[idat + 1] >> 6


def test_rasters_inside_an_svg_are_compressed_like_png_figures(tmp_path):
    import base64

    from PIL import Image

    files = plots.render(lambda fig: fig.subplots().imshow(np.eye(40)), tmp_path, "img", (4, 3))
    svg = (tmp_path / files["light"]).read_text()
    embedded = [base64.b64decode(d) for d in _rasters(svg)]
    assert embedded and all(_zlib_level(png) == 1 for png in embedded)  # PNG_COMPRESSION = 3
    files = plots.render(lambda fig: fig.subplots().imshow(np.eye(40)), tmp_path, "png", (4, 3), "png")
    assert _zlib_level((tmp_path / files["light"]).read_bytes()) == 1
    saved = tmp_path / "plain.png"  # outside a figure's save, PIL keeps its own default
    Image.fromarray(np.eye(40, dtype=np.uint8) * 255).save(saved)
    assert _zlib_level(saved.read_bytes()) == 2


GENERIC_FAMILIES = ("sans-serif", "serif", "monospace")


def _font_families(svg_file) -> list[str]:
    """Every font family list the SVG's elements declare (``font-family``, or the ``font`` shorthand)."""
    import xml.etree.ElementTree as ET

    found = []
    for element in ET.parse(svg_file).getroot().iter():
        for declaration in element.get("style", "").split(";"):
            prop, _, value = (part.strip() for part in declaration.partition(":"))
            if prop == "font-family":
                found.append(value)
            elif prop == "font":
                found.append(re.sub(r"^.*?[\d.]+px\s+", "", value))
    return found


def test_svg_text_always_names_a_generic_family(tmp_path):
    def draw(fig):
        ax = fig.subplots()
        ax.semilogx([1e-3, 1e2], [0, 1])  # tick labels 10⁻³ ... typeset as math, glyph by glyph
        ax.set_ylabel(r"$\|w\|_2^2$")
        ax.set_title("$\U0001d53c[x]$ and $\\mathbb{R}$")  # glyphs from STIXGeneral

    files = plots.render(draw, tmp_path, "math", (5, 3))
    for name in (files["light"], files["dark"]):
        families = _font_families(tmp_path / name)
        assert any(f.startswith("'STIXGeneral'") for f in families)
        lone = [f for f in families if f.rsplit(",", 1)[-1].strip() not in GENERIC_FAMILIES]
        assert families and not lone, lone  # a reader without DejaVu Sans gets sans-serif, not Times


def test_a_symbol_no_browser_can_draw_fails_the_figure(tmp_path):
    def draw(fig):
        fig.subplots().set_ylabel(r"$\mathbb{E}\,\|g\|^2$")  # matplotlib: a private-use code point

    from generator.demo.runtime.legible import FigureTextError

    with pytest.raises(FigureTextError, match=r"\\mathbb\{E\}.*browsers cannot show.*\U0001d53c"):
        plots.render(draw, tmp_path, "bb", (5, 3))
