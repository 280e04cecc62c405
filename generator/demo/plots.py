"""Deterministic figures in a light and a dark variant, readable on a phone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# Bump when the look changes: it is part of every demo's cache key.
STYLE_VERSION = 1
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


def _style(theme: str) -> dict[str, Any]:
    from matplotlib import rcsetup

    style = dict(THEMES[theme])
    style["axes.prop_cycle"] = rcsetup.validate_cycler(style["axes.prop_cycle"])
    return style


def render(draw: Callable[[Any], Any], out: Path, name: str, size: tuple[float, float],
           fmt: str = "svg") -> dict[str, str]:
    """Call ``draw(fig)`` once per theme and save ``name-light.svg`` / ``name-dark.svg``."""
    import matplotlib
    from matplotlib.figure import Figure

    files = {}
    for theme in THEMES:
        with matplotlib.rc_context(_style(theme)):
            fig = Figure(figsize=size, layout="constrained")
            draw(fig)
            filename = f"{name}-{theme}.{fmt}"
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(out / filename, format=fmt, metadata=metadata)
        files[theme] = filename
    return files
