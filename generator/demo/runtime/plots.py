"""Deterministic figures in a light and a dark variant, readable on a phone."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .legible import check_text, phone_ready, phone_sizes, svg_text_for_readers

# Bump when the look changes: it is part of every demo's cache key.
STYLE_VERSION = 8
FIGSIZE = (6.4, 4.0)

_COMMON = {
    "svg.hashsalt": "termlab",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 11.0,
    "axes.titlesize": 12.0,
    "axes.labelsize": 11.0,
    "legend.fontsize": 10.0,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.linewidth": 0.6,
    "lines.linewidth": 2.0,
    "lines.markersize": 5.0,
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.transparent": True,
    "figure.dpi": 100,
    "savefig.dpi": 144,
    "image.cmap": "viridis",
}

THEMES: dict[str, dict[str, Any]] = {
    "light": {
        **_COMMON,
        "text.color": "#1f2328", "axes.labelcolor": "#1f2328", "axes.edgecolor": "#57606a",
        "xtick.color": "#57606a", "ytick.color": "#57606a", "grid.color": "#d8dee4",
        "axes.prop_cycle": "cycler(color=['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd',"
                           "'#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'])",
    },
    "dark": {
        **_COMMON,
        "text.color": "#e6edf3", "axes.labelcolor": "#e6edf3", "axes.edgecolor": "#8b949e",
        "xtick.color": "#8b949e", "ytick.color": "#8b949e", "grid.color": "#30363d",
        "axes.prop_cycle": "cycler(color=['#58a6ff','#ff7b72','#56d364','#ffa657','#d2a8ff',"
                           "'#e0a070','#f778ba','#b1bac4','#e3d26f','#39c5cf'])",
    },
}


# SVG writes every marker as its own element (~150 bytes) and every path vertex as text
# (~25 bytes): past about 1,500 markers' worth (~250 KB) a figure would be huge as vector.
SVG_MAX_POINTS = 1500
VERTICES_PER_POINT = 6


@dataclass
class Format:
    """How to save a figure: ``kind`` (svg or png) and, for an SVG, the artists drawn as one
    embedded raster inside it (dense colour-mapped layers, images)."""

    kind: str
    rasterize: list[Any] = field(default_factory=list)


def choose_format(fig: Any) -> Format:
    """SVG for line charts and small scatters; SVG with its dense layers rasterized when those
    look the same in both themes; PNG for the rest.

    Colour-mapped collections (``c=`` scatters, contours, meshes) and images keep their
    colours in the dark theme, so drawn as an embedded raster they need no second drawing:
    the dark variant is still the light SVG with its palette swapped, and text stays sharp.
    A dense layer in theme colours (a plain scatter of many points) makes the figure a PNG,
    drawn once per theme. Looks only at what the axes hold (``fig.findobj()`` would build
    every tick of every axis just to count them)."""
    vector = 0.0
    raster: list[Any] = list(fig.images)
    raster_weight = 0.0
    for ax in fig.axes:
        raster += ax.images
        for collection in ax.collections:
            weight = _weight(collection)
            if collection.get_array() is not None:
                raster.append(collection)
                raster_weight += weight
            else:
                vector += weight
        for line in ax.lines:
            points = len(line.get_xdata())
            marked = line.get_marker() not in (None, "None", "", " ")
            vector += points / VERTICES_PER_POINT + (points if marked else 0)
    if vector > SVG_MAX_POINTS:
        return Format("png")
    if vector + raster_weight > SVG_MAX_POINTS or any(ax.images for ax in fig.axes) or fig.images:
        return Format("svg", raster)
    return Format("svg")


def _weight(collection: Any) -> float:
    """Markers' worth of a collection: one per marker stamped at an offset (a scatter), or
    its polygons' vertices (contours, fill_between)."""
    offsets = len(collection.get_offsets())
    if offsets > 1:
        return offsets
    return sum(len(path.vertices) for path in collection.get_paths()) / VERTICES_PER_POINT


def _style(theme: str, width: float = FIGSIZE[0]) -> dict[str, Any]:
    from matplotlib import rcsetup

    style = dict(THEMES[theme])
    style["axes.prop_cycle"] = rcsetup.validate_cycler(style["axes.prop_cycle"])
    style.update(phone_sizes(width))
    return style


@cache
def _svg_palette() -> tuple[re.Pattern, dict[str, str]]:
    """Light colour -> dark colour, as matplotlib writes them into SVG (``#rrggbb``)."""
    from matplotlib import colors

    light, dark = THEMES["light"], THEMES["dark"]
    mapping = {colors.to_hex(a): colors.to_hex(b)
               for a, b in zip(_cycle("light"), _cycle("dark"), strict=True)}
    for key in ("text.color", "axes.labelcolor", "axes.edgecolor", "xtick.color", "ytick.color",
                "grid.color"):
        mapping.setdefault(colors.to_hex(light[key]), colors.to_hex(dark[key]))
    mapping.setdefault("#000000", colors.to_hex(dark["text.color"]))
    return re.compile("|".join(map(re.escape, mapping)), re.I), mapping


def dark_svg(light_svg: bytes) -> bytes:
    """The dark variant of a light SVG: the same drawing with the palette swapped. About a
    thousand times cheaper than drawing and saving the figure again."""
    pattern, mapping = _svg_palette()
    text = light_svg.decode("utf-8")
    return pattern.sub(lambda m: mapping[m.group(0).lower()], text).encode("utf-8")


_SVG_SIZE = re.compile(rb'<svg[^>]*?\swidth="([\d.]+)(pt|px)?"\s+height="([\d.]+)(pt|px)?"')


def image_size(data: bytes) -> tuple[int, int] | None:
    """A saved figure's size in CSS pixels (SVG from its header, PNG from its IHDR), so pages
    can reserve the space before a lazily loaded image arrives."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        scale = 96 / THEMES["light"]["savefig.dpi"]
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return round(width * scale), round(height * scale)
    match = _SVG_SIZE.search(data[:2000])
    if match is None:
        return None
    w, wu, h, hu = match.groups()
    return round(float(w) * (4 / 3 if wu == b"pt" else 1)), round(float(h) * (4 / 3 if hu == b"pt" else 1))


# zlib level 3 writes a figure's PNG (or a raster an SVG embeds) in half the time of the
# default 6, about 10% larger.
PNG_COMPRESSION = 3


def _format(fig: Any, fmt: str) -> Format:
    """The author's format, or the one that suits ``fig`` for ``auto``."""
    return choose_format(fig) if fmt == "auto" else Format(fmt)


@contextlib.contextmanager
def _png_level(level: int) -> Iterator[None]:
    """PNGs that PIL writes in this block use zlib ``level`` unless the caller names one (one
    setting for both: matplotlib's SVG writer has no way to pass it for the rasters it embeds)."""
    from PIL import Image

    Image.preinit()
    save = Image.SAVE["PNG"]

    def leveled(im: Any, fp: Any, filename: Any, *args: Any, **kwargs: Any) -> Any:
        im.encoderinfo.setdefault("compress_level", level)
        return save(im, fp, filename, *args, **kwargs)

    Image.SAVE["PNG"] = leveled
    try:
        yield
    finally:
        Image.SAVE["PNG"] = save


def _save(fig: Any, out: Path, filename: str, form: Format) -> bytes:
    """Write the figure to ``out / filename``; returns the bytes written."""
    for artist in form.rasterize:  # consecutive ones become a single embedded image
        artist.set_rasterized(True)
    with _png_level(PNG_COMPRESSION):  # a PNG figure, or the rasters an SVG embeds
        if form.kind == "svg":
            text = io.StringIO()  # text: a bytes buffer would have each of ~5,000 writes encoded
            fig.savefig(text, format="svg", metadata={"Date": None})
            data = svg_text_for_readers(text.getvalue()).encode("utf-8")
        else:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", metadata={"Software": None})
            data = buffer.getvalue()
    (out / filename).write_bytes(data)
    return data


def render(draw: Callable[[Any], Any], out: Path, name: str, size: tuple[float, float],
           fmt: str = "auto") -> dict[str, Any]:
    """Call ``draw(fig)`` and save ``name-light.svg`` / ``name-dark.svg``. A vector SVG's dark
    variant is the light one with the palette swapped; a figure with raster parts (a PNG, or
    an SVG with a dense colour-mapped layer) is drawn a second time in the dark style, since
    ``draw`` may pick its colours, colour maps included, from the theme."""
    import matplotlib
    from matplotlib.figure import Figure

    files: dict[str, Any] = {}
    kind = ""
    for theme in THEMES:
        with matplotlib.rc_context(_style(theme, size[0])):
            fig = Figure(figsize=size, layout="constrained")
            draw(fig)
            phone_ready(fig)
            form = _format(fig, fmt)
            form.kind = kind = kind or form.kind  # both variants in the light one's format
            filename = files[theme] = f"{name}-{theme}.{form.kind}"
            data = _save(fig, out, filename, form)
            if theme == "light":
                files["min_text_px"] = check_text(fig)  # offsets and ticks exist once drawn
        if form.kind == "svg" and not form.rasterize:
            files["dark"] = f"{name}-dark.svg"
            (out / files["dark"]).write_bytes(dark_svg(data))
            break
    return files


def _cycle(theme: str) -> list[str]:
    return list(_style(theme)["axes.prop_cycle"].by_key()["color"])


def restyle(fig: Any, source: str, target: str) -> None:
    """Recolour a drawn figure from one theme to the other: text, axes, and every colour of
    the source palette (black becomes the target's text colour). Used for pyplot figures
    captured from scripts, whose drawing code cannot be run twice."""
    from matplotlib import colors
    from matplotlib.collections import Collection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text

    src, dst = THEMES[source], THEMES[target]
    mapping = {colors.to_hex(a): b for a, b in zip(_cycle(source), _cycle(target), strict=True)}
    for key in ("text.color", "axes.edgecolor", "grid.color", "xtick.color"):
        mapping.setdefault(colors.to_hex(src[key]), dst[key])
    mapping.setdefault("#000000", dst["text.color"])

    def swap(color: Any) -> Any:
        try:
            rgba = colors.to_rgba(color)
        except (ValueError, TypeError):
            return color
        new = mapping.get(colors.to_hex(rgba))
        return colors.to_rgba(new, rgba[3]) if new else color

    for artist in fig.findobj():
        if isinstance(artist, Text):
            artist.set_color(swap(artist.get_color()))
        elif isinstance(artist, Line2D):
            artist.set_color(swap(artist.get_color()))
            artist.set_markerfacecolor(swap(artist.get_markerfacecolor()))
            artist.set_markeredgecolor(swap(artist.get_markeredgecolor()))
        elif isinstance(artist, Patch):
            artist.set_edgecolor(swap(artist.get_edgecolor()))
            if artist.get_fill():
                artist.set_facecolor(swap(artist.get_facecolor()))
        elif isinstance(artist, Collection) and artist.get_array() is None:
            artist.set_facecolor([swap(c) for c in artist.get_facecolor()])
            artist.set_edgecolor([swap(c) for c in artist.get_edgecolor()])
    for ax in fig.axes:
        ax.tick_params(colors=dst["xtick.color"], labelcolor=dst["text.color"])
        ax.patch.set_facecolor("none")


def save_captured(fig: Any, out: Path, name: str, fmt: str = "auto") -> dict[str, Any]:
    """Save a finished (light) figure, then its dark variant (palette-swapped SVG, or the
    figure restyled and saved again for PNG)."""
    phone_ready(fig)
    form = _format(fig, fmt)
    files: dict[str, Any] = {"light": f"{name}-light.{form.kind}", "dark": f"{name}-dark.{form.kind}"}
    fig.patch.set_alpha(0)
    for ax in fig.axes:
        ax.patch.set_alpha(0)
    with matplotlib_rc("light"):
        light = _save(fig, out, files["light"], form)
    files["min_text_px"] = check_text(fig)
    if form.kind == "svg":
        (out / files["dark"]).write_bytes(dark_svg(light))
    else:
        restyle(fig, "light", "dark")
        with matplotlib_rc("dark"):
            _save(fig, out, files["dark"], form)
    return files


def matplotlib_rc(theme: str):
    import matplotlib

    return matplotlib.rc_context(_style(theme))
