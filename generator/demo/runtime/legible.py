"""Text a reader can read: every figure's text at least MIN_TEXT_PX on a phone (sizes raised
before the figure is saved, then checked), no raw identifier or ``1e-15`` drawn as is, and an
SVG's text in fonts every browser has (a generic family after each named one, no symbol from
matplotlib's private STIXNonUnicode font)."""

from __future__ import annotations

import html
import re
from typing import Any

# A figure on a 390 px wide phone is shown this many CSS px wide (the content column of a term
# page, measured in Chromium); its text must be at least MIN_TEXT_PX there.
PHONE_FIGURE_PX = 358
MIN_TEXT_PX = 9.0


def min_points(width: float) -> float:
    """The smallest font size (pt) a figure ``width`` inches wide may use: MIN_TEXT_PX on a
    phone, where it is shown PHONE_FIGURE_PX wide or at its natural size if that is less
    (text px = pt × shown px / (width × 72))."""
    return MIN_TEXT_PX * width * 72 / min(PHONE_FIGURE_PX, width * 96)


def phone_sizes(width: float) -> dict[str, float]:
    """Font sizes for a figure ``width`` inches wide: every default size at least the phone
    minimum, titles a step above (a narrow figure keeps the desktop sizes)."""
    small = max(round(min_points(width) + 0.05, 1), 9.0)
    return {"font.size": small, "axes.labelsize": small, "xtick.labelsize": small,
            "ytick.labelsize": small, "legend.fontsize": small, "legend.title_fontsize": small,
            "axes.titlesize": small + 1, "figure.titlesize": small + 2}


def text_px(points: float, width: float) -> float:
    """CSS px of text ``points`` high in a figure ``width`` inches wide shown at phone width."""
    shown = min(PHONE_FIGURE_PX, width * 96)  # never shown wider than its natural size
    return points * shown / (width * 72)


class FigureTextError(ValueError):
    """Text a figure draws that a reader should not see (a raw identifier, 1e-15, a symbol no
    browser can draw)."""


_MATH = re.compile(r"(?<!\\)\$.*?(?<!\\)\$", re.S)
_RAW_EXPONENT = re.compile(r"\b\d(?:\.\d+)?e[+-]?\d+\b", re.I)


def raw_text_problem(text: str) -> str | None:
    """Why ``text`` may not be drawn as is, or None: an underscore outside ``$...$`` (``w_L2``
    is a variable's name, ``$w_{L2}$`` is math) or a number like ``1e-15``."""
    plain = _MATH.sub("", text)
    if "_" in plain:
        return (f"text {text!r} has a raw underscore outside $...$; write it in words "
                f"('training mode') or as math ($w_{{L2}}$)")
    if _RAW_EXPONENT.search(plain):
        return f"text {text!r} writes a number like 1e-15; use math ($10^{{-15}}$) or plain digits"
    return None


SCRIPT = 0.7  # mathtext draws super- and subscripts at 70 % of their text's size
_SCRIPTED = re.compile(r"(?<!\\)\$[^$]*[\^_][^$]*(?<!\\)\$")


def _scripted(text: str) -> bool:
    """Math with a super- or subscript (``$10^{-2}$``, ``$w_{L2}$``): its scripts draw smaller."""
    return bool(_SCRIPTED.search(text))


def _texts(fig: Any) -> list[Any]:
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def phone_ready(fig: Any) -> None:
    """Raise any text smaller than the phone minimum to it (a demo's ``fontsize="small"``
    included; tick labels made later copy their axis's first tick), and typeset an axis's
    offset or power of ten as math (×10⁻¹⁵, never 1e-15). Only such axes: math tick labels
    everywhere (``axes.formatter.use_mathtext``) would triple the time a figure takes. Text
    with super- or subscripts (a log axis's 10⁻², an offset, a demo's ``$w_{L2}$``) is raised
    further, so that its scripts reach the minimum too."""
    from matplotlib.ticker import ScalarFormatter

    least = min_points(fig.get_figwidth())
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            formatter = axis.get_major_formatter()
            if isinstance(formatter, ScalarFormatter) and not formatter.get_useMathText():
                formatter.set_locs(axis.get_majorticklocs())
                if formatter.get_offset():
                    formatter.set_useMathText(True)
            # Tick labels are made when drawn: ask the formatter what they will say.
            labels = formatter.format_ticks(list(axis.get_majorticklocs()))
            if any(_scripted(label) for label in labels):
                ticks = axis.get_ticklabels()
                size = ticks[0].get_fontsize() if ticks else least
                axis.set_tick_params(which="major", labelsize=max(size, least / SCRIPT))
            if isinstance(formatter, ScalarFormatter) and formatter.get_useMathText():
                axis.offsetText.set_fontsize(max(axis.offsetText.get_fontsize(), least / SCRIPT))
    for text in _texts(fig):
        floor = least / SCRIPT if _scripted(text.get_text()) else least
        if text.get_fontsize() < floor:
            text.set_fontsize(floor)


def check_text(fig: Any) -> float:
    """After drawing: fail on raw text (``raw_text_problem``); return the smallest text's size
    in CSS px at phone width (a super- or subscript's own size, where text has one)."""
    width = fig.get_figwidth()
    smallest = float("inf")
    for text in _texts(fig):
        problem = raw_text_problem(text.get_text())
        if problem:
            raise FigureTextError(problem)
        size = text.get_fontsize() * (SCRIPT if _scripted(text.get_text()) else 1)
        smallest = min(smallest, text_px(size, width))
    return round(float(smallest), 2) if smallest != float("inf") else 0.0


# An SVG keeps its text as text: a reader's browser draws it with its own fonts.
_LONE_FAMILY = re.compile(r"font-family: ('[^',;\"]*')(?=[;\"])")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_SOURCE = re.compile(r"<!-- (.*?) -->", re.S)


def _generic(family: str) -> str:
    name = family.lower()
    if "mono" in name:
        return "monospace"
    serif = "stix" in name or ("serif" in name and "sans" not in name)
    return "serif" if serif else "sans-serif"


def svg_text_for_readers(svg: str) -> str:
    """``svg`` with a generic family after each font family named alone (matplotlib names only
    the font of each math glyph: a machine without DejaVu Sans would draw math in its default
    serif font). A glyph matplotlib takes from its private STIXNonUnicode font (``\\mathbb{E}``,
    ``\\mathcal{L}``) is at a private-use code point no reader's font has: a FigureTextError."""
    hole = _PRIVATE_USE.search(svg)
    if hole:
        sources = _SOURCE.findall(svg, 0, hole.start())
        text = html.unescape(sources[-1]) if sources else hole.group()
        raise FigureTextError(
            f"text {text!r} draws a symbol that browsers cannot show (matplotlib takes it from its "
            "own STIXNonUnicode font); write the symbol itself inside the math, e.g. "
            "$\U0001d53c[x]$ for $\\mathbb{E}[x]$ or $\u2112$ for $\\mathcal{L}$")
    return _LONE_FAMILY.sub(lambda m: f"font-family: {m[1]}, {_generic(m[1])}", svg)
