"""Small matplotlib helpers shared by the demos: log axes with plain-number tick labels.

Matplotlib labels a log axis with mathtext (``10^{-2}``) and adds unlabelled minor ticks. Typesetting
those labels is a large share of a demo's drawing time, and "0.01" reads more easily on a phone.
``plain_log_axis`` swaps them for chosen major ticks, plain labels and no minor ticks::

    from demolib import plotting

    plotting.plain_log_axis(ax.yaxis, [0.01, 0.1, 1])          # labels 0.01, 0.1, 1
    plotting.plain_log_axis(ax.xaxis, 10.0 ** np.arange(-8, 1, 2), fmt=plotting.exponent_label)
    plotting.plain_ticks(ax.xaxis, lambdas)                     # any scale (e.g. symlog) as set

Import it as ``from demolib import plotting``; it is not imported by ``demolib`` itself, so the
other helpers stay usable without matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axis import Axis
from matplotlib.ticker import FixedLocator, FuncFormatter, Locator, NullLocator

#: A tick label: a ``str.format`` pattern with one field (``"{:g}"``, ``"{:g}×"``) or a function
#: of the tick value.
Label = str | Callable[[float], str]


def exponent_label(value: float) -> str:
    """``$10^{-3}$`` for 0.001: the power of ten in math form, for axes that span many decades."""
    return f"$10^{{{round(np.log10(value))}}}$"


def plain_label(value: float) -> str:
    """``0.001``, ``0.3``, ``1000`` as plain digits; a number ``{:g}`` would write as ``1e-05``
    in math form (``$10^{-5}$``, ``$2\\times10^{-5}$``), never as raw ``1e-05``."""
    text = f"{value:g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = f"10^{{{int(exponent)}}}"
    return f"${power}$" if mantissa == "1" else f"${mantissa}\\times{power}$"


def plain_ticks(axis: Axis, ticks: Sequence[float] | np.ndarray | Locator | None = None,
                fmt: Label = plain_label) -> None:
    """Major ticks of ``axis`` at ``ticks``, labelled with ``fmt``; no minor ticks.

    ``axis`` is ``ax.xaxis`` or ``ax.yaxis``; its scale is left as it is. ``ticks`` is a list of
    positions, a ``Locator`` (e.g. ``LogLocator(numticks=6)``), or ``None`` to keep the scale's own
    major locator. Call it after setting the scale: ``set_xscale`` resets ticks and labels.
    """
    if ticks is not None:
        axis.set_major_locator(ticks if isinstance(ticks, Locator) else FixedLocator(ticks))
    label = fmt.format if isinstance(fmt, str) else fmt
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: label(value)))
    axis.set_minor_locator(NullLocator())


def plain_log_axis(axis: Axis, ticks: Sequence[float] | np.ndarray | Locator | None = None,
                   fmt: Label = plain_label) -> None:
    """Put ``axis`` on a log scale with ``plain_ticks(axis, ticks, fmt)``.

    With the default ``fmt`` the labels are plain numbers (``0.001``, ``0.3``, ``1000``); pass
    ``fmt=exponent_label`` for ``10^{-3}`` style labels when the axis spans many decades.
    """
    getattr(axis.axes, f"set_{axis.axis_name}scale")("log")
    plain_ticks(axis, ticks, fmt)
