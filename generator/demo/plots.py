"""Deterministic figures in a light and a dark variant, readable on a phone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# Bump when the look changes: it is part of every demo's cache key.
STYLE_VERSION = 2
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


# SVG writes every marker as its own element: past this many points (or with raster images)
# a figure is saved as PNG, which is smaller and about ten times faster to write.
SVG_MAX_POINTS = 1500


def choose_format(fig: Any) -> str:
    """``svg`` for line charts and small scatters, ``png`` for dense or raster figures."""
    from matplotlib.collections import Collection
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D

    points = 0
    for artist in fig.findobj():
        if isinstance(artist, AxesImage):
            return "png"
        if isinstance(artist, Collection):
            points += max(len(artist.get_offsets()), len(artist.get_paths()))
        elif isinstance(artist, Line2D) and artist.get_marker() not in (None, "None", "", " "):
            points += len(artist.get_xdata())
    return "png" if points > SVG_MAX_POINTS else "svg"


def _style(theme: str) -> dict[str, Any]:
    from matplotlib import rcsetup

    style = dict(THEMES[theme])
    style["axes.prop_cycle"] = rcsetup.validate_cycler(style["axes.prop_cycle"])
    return style


def render(draw: Callable[[Any], Any], out: Path, name: str, size: tuple[float, float],
           fmt: str = "auto") -> dict[str, str]:
    """Call ``draw(fig)`` once per theme and save ``name-light.svg`` / ``name-dark.svg``
    (or ``.png`` for dense figures when ``fmt`` is ``auto``)."""
    import matplotlib
    from matplotlib.figure import Figure

    files = {}
    for theme in THEMES:
        with matplotlib.rc_context(_style(theme)):
            fig = Figure(figsize=size, layout="constrained")
            draw(fig)
            kind = choose_format(fig) if fmt == "auto" else fmt
            filename = f"{name}-{theme}.{kind}"
            metadata = {"Date": None} if kind == "svg" else {"Software": None}
            fig.savefig(out / filename, format=kind, metadata=metadata)
        files[theme] = filename
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


def save_captured(fig: Any, out: Path, name: str, fmt: str = "auto") -> dict[str, str]:
    """Save a finished (light) figure, then its dark restyling."""
    fmt = choose_format(fig) if fmt == "auto" else fmt
    files = {}
    for theme in THEMES:
        if theme != "light":
            restyle(fig, "light", theme)
        filename = f"{name}-{theme}.{fmt}"
        with matplotlib_rc(theme):
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(out / filename, format=fmt, metadata=metadata, transparent=True)
        files[theme] = filename
    return files


def matplotlib_rc(theme: str):
    import matplotlib

    return matplotlib.rc_context(_style(theme))
