"""The context a demo's ``run(demo)`` receives: RNG, figures, metrics, claims, ONNX helpers."""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import legible, plots, sweeps
from . import onnx as onnx_tools
from .records import KEY_NUMBERS, Claim, DemoError, FigureInfo, Metric, Number, Outputs, seed_for  # noqa: F401
from .sweeps import Slider


def _fmt_number(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return format(float(value), ".4g")
    return str(value)


class DemoContext:
    """What ``run(demo)`` gets. Files go to ``out``; nothing is written anywhere else."""

    IR_VERSION = onnx_tools.IR_VERSION
    OPSET = onnx_tools.OPSET

    def __init__(self, name: str, out: Path, options: dict[str, Any] | None = None,
                 demo_file: str | None = None, audit: bool = False):
        import numpy as np

        self.name = name
        self.out = out
        self.options = dict(options or {})
        self.demo_file = demo_file
        self.audit = audit  # a seed audit's run: figures are not drawn, all else runs
        seed = seed_for(name, self.options)
        self.rng = np.random.default_rng(seed)
        # Code that draws from numpy's or Python's global generators (an unchanged gallery
        # script, say) gets the same numbers on every run too.
        np.random.seed(seed % 2**32)
        random.seed(seed)
        self.outputs = Outputs()
        self._raw: list[tuple[Claim, dict[str, Any], str]] = []  # claims with their raw numbers
        self._key_where = (demo_file or name, 0)

    # -- figures -------------------------------------------------------------------------
    def figure(self, name: str, caption: str, alt: str,
               size: tuple[float, float] = plots.FIGSIZE, fmt: str = "auto", notice: str = "",
               check: bool = False) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        """Decorator: ``draw(fig)`` runs in the light theme, and again in the dark one when the
        figure has raster parts (else the dark variant is the light SVG with its palette
        swapped); it must only draw. In a seed audit's run it is not called at all.
        ``notice`` is the one line the page puts above it: what to notice in it. Text drawn
        with a raw underscore outside ``$...$`` (``w_L2``) fails the figure. ``check=True``:
        the figure illustrates a sanity check (ONNX Runtime = NumPy, an identity), not a
        finding, and the page shows it folded with the checks."""
        self._check_name(name, [f.name for f in self.outputs.figures], "figure")
        if not caption.strip() or not alt.strip():
            raise DemoError(f"figure '{name}' needs a caption and alt text")
        if fmt not in ("auto", "svg", "png"):
            raise DemoError(f"figure '{name}': fmt must be 'auto', 'svg' or 'png'")

        def decorator(draw: Callable[[Any], Any]) -> Callable[[Any], Any]:
            if self.audit:
                return draw
            try:
                files = plots.render(draw, self.out, name, size, fmt)
            except legible.FigureTextError as exc:
                raise DemoError(f"demo '{self.name}', figure '{name}': {exc}") from None
            self.outputs.figures.append(FigureInfo(name, caption, alt, files["light"], files["dark"],
                                                   notice.strip(), files["min_text_px"],
                                                   kind="check" if check else "finding"))
            return draw

        return decorator

    def sweep(self, name: str, values: Any, label: str, caption: str, alt: str, *,
              default: int = 0, fmt: str = "", unit: str = "",
              numbers: Callable[[int], Any] | None = None, notice: str = "",
              size: tuple[float, float] = plots.FIGSIZE, file_fmt: str = "auto"
              ) -> Callable[[Callable[[Any, int], Any]], Callable[[Any, int], Any]]:
        """Decorator for a figure with a slider over a parameter the run swept: ``draw(fig, k)``
        draws the frame for ``values[k]`` (keep the axes fixed across frames so only the model
        moves). ``label`` names the parameter, ``fmt``/``unit`` show its values; ``numbers(k)``
        returns the ``demo.number`` list shown under frame k (same labels for every k). Without
        script the page shows frame ``default``. Like ``figure``, nothing is drawn in an audit."""
        self._check_name(name, [f.name for f in self.outputs.figures], "figure")
        values = list(values)
        shown = [self.number(v, label, fmt, unit).display for v in values]
        try:
            sweeps.check_values(name, values, default)
            rows = [list(numbers(k)) for k in range(len(values))] if numbers else []
            if any(not isinstance(n, Number) for row in rows for n in row):
                raise ValueError(f"sweep '{name}': numbers(k) must return demo.number(...) values")
            series = sweeps.frame_numbers(name, rows)
        except ValueError as exc:
            raise DemoError(str(exc)) from None
        if not caption.strip() or not alt.strip():
            raise DemoError(f"figure '{name}' needs a caption and alt text")

        def decorator(draw: Callable[[Any, int], Any]) -> Callable[[Any, int], Any]:
            if self.audit:
                return draw
            try:
                frames, smallest = sweeps.render_frames(draw, self.out, name, len(values), size, file_fmt)
            except legible.FigureTextError as exc:
                raise DemoError(f"demo '{self.name}', figure '{name}': {exc}") from None
            alts = [f"{alt.strip().rstrip('.')}; {label} {v}." for v in shown]
            slider = Slider(label, shown, default, frames, alts, series)
            light, dark = frames[default]
            self.outputs.figures.append(FigureInfo(name, caption, alts[default], light, dark,
                                                   notice.strip(), smallest, slider))
            return draw

        return decorator

    @contextlib.contextmanager
    def pyplot_figures(self, prefix: str = "figure", captions: list[str] | None = None,
                       alt: str = "", notices: list[str] | None = None) -> Iterator[None]:
        """Capture the pyplot figures a block of code makes (e.g. an unchanged gallery script)
        and publish each in a light and a dark variant (the dark one is a restyling, so the
        code runs once)."""
        import matplotlib.pyplot as plt

        plt.close("all")
        with plots.matplotlib_rc("light"):
            yield
        if self.audit:  # the code ran (its numbers count); its figures are not saved
            plt.close("all")
            return
        for i, number in enumerate(plt.get_fignums(), 1):
            fig = plt.figure(number)
            title = next((ax.get_title() for ax in fig.axes if ax.get_title()), "")
            caption = (captions[i - 1] if captions and i <= len(captions) else "") or title or \
                f"Figure {i} of {self.name}"
            try:
                files = plots.save_captured(fig, self.out, f"{prefix}-{i}")
            except legible.FigureTextError as exc:
                raise DemoError(f"demo '{self.name}', figure '{prefix}-{i}': {exc}") from None
            notice = notices[i - 1] if notices and i <= len(notices) else ""
            self.outputs.figures.append(FigureInfo(f"{prefix}-{i}", caption, alt or caption,
                                                   files["light"], files["dark"], notice.strip(),
                                                   files["min_text_px"]))
        plt.close("all")

    # -- numbers and claims --------------------------------------------------------------
    def metric(self, name: str, value: Any, label: str = "", fmt: str = ".4g",
               unit: str = "", *, kind: str = "measured") -> float:
        """Record a measured number; NaN or infinity is an error."""
        self._check_name(name, [m.name for m in self.outputs.metrics], "metric")
        if not name.isidentifier():
            raise DemoError(f"metric name '{name}' must be an identifier like val_loss")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise DemoError(f"metric '{name}' must be a real number, got {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value):
            raise DemoError(f"metric '{name}' is {value}; a metric must be a finite number")
        format(value, fmt)  # fail here, with the demo's line, on a bad format
        self.outputs.metrics.append(Metric(name, value, label, fmt, unit, kind))
        return value

    def setting(self, name: str, value: Any, label: str = "", fmt: str = "g", unit: str = "") -> float:
        """Record a number of the run's setup (points, steps, grid size) so that entries quote
        it as ``{{name}}`` instead of typing it by hand."""
        return self.metric(name, value, label, fmt, unit, kind="setting")

    def claim(self, statement: str, holds: Any, **numbers_: Any) -> bool:
        """Record a finding the page makes (about learning behaviour) and whether this run
        shows it; a finding must hold for every seed the audit tries."""
        return self._statement("finding", statement, holds, numbers_)

    def check(self, statement: str, holds: Any, **numbers_: Any) -> bool:
        """Record a verification (an identity, ONNX Runtime matching NumPy, a count): shown
        as a sanity check, never as evidence."""
        return self._statement("check", statement, holds, numbers_)

    def number(self, value: Any, label: str, fmt: str = "", unit: str = "") -> Number:
        """A number for a claim, with the words the page shows it with (``fmt`` default: a
        whole number as is, else three significant digits). A claim's number that is not a
        ``Number`` must be named like a recorded metric, whose label, format and unit it takes."""
        if not str(label).strip():
            raise DemoError("demo.number needs a label: the words the page shows the number with")
        if isinstance(value, str):  # numbers the demo formatted itself ("0.27, 0.28, 0.32")
            return Number(value, str(label).strip(), "", unit)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise DemoError(f"demo.number({label!r}) must be a real number, got {type(value).__name__}")
        if fmt:
            try:
                format(float(value), fmt)
            except ValueError:
                raise DemoError(f"demo.number({label!r}): {fmt!r} is not a format for a number (numbers "
                                "are shown as floats: use '.0f' for whole numbers, or no fmt)") from None
        return Number(float(value), str(label).strip(), fmt, unit)

    def key_numbers(self, *names: str) -> None:
        """Mark the run's key numbers (3 to 6 recorded metrics or settings, by name, in the
        order the page shows them first, with their labels and units)."""
        lo, hi = KEY_NUMBERS
        if not lo <= len(names) <= hi or len(set(names)) != len(names):
            raise DemoError(f"demo.key_numbers takes {lo} to {hi} different metric names, got {len(names)}")
        frame = sys._getframe(1)
        self.outputs.key_numbers = list(names)
        self._key_where = (frame.f_code.co_filename, frame.f_lineno)

    def _statement(self, kind: str, statement: str, holds: Any, numbers_: dict[str, Any]) -> bool:
        import numpy as np

        if not isinstance(holds, bool | np.bool_):
            raise DemoError(f"claim {statement!r}: holds must be a bool, got {type(holds).__name__}")
        for key, value in numbers_.items():
            raw = value.value if isinstance(value, Number) else value
            if isinstance(raw, numbers.Real) and not math.isfinite(float(raw)):
                raise DemoError(f"claim {statement!r}: number {key} is {raw}")
        frame = sys._getframe(2)
        claim = Claim(statement, bool(holds), {}, frame.f_lineno, kind)
        for key, value in numbers_.items():
            claim.numbers[key] = value.display if isinstance(value, Number) else _fmt_number(value)
            if isinstance(value, Number):
                claim.labels[key] = value.label
        self.outputs.claims.append(claim)
        self._raw.append((claim, numbers_, frame.f_code.co_filename))
        return bool(holds)

    def _label_numbers(self) -> None:
        """Give every claim number the words and format of the metric it is named after; a
        finding's number that is neither a ``demo.number`` nor a metric's name is an error."""
        metrics = {m.name: m for m in self.outputs.metrics}
        for claim, raw, filename in self._raw:
            for key, value in raw.items():
                metric = metrics.get(key)
                if key in claim.labels:
                    continue
                if metric is not None and metric.label and isinstance(value, numbers.Real):
                    claim.labels[key] = metric.label
                    claim.numbers[key] = Metric(key, float(value), metric.label, metric.fmt, metric.unit).display
                elif claim.kind == "finding":
                    raise DemoError(
                        f"the number {key}= of the finding "
                        f"{claim.statement!r} has no words for the page: pass "
                        f"{key}=demo.number(value, \"what it is\"), or name it like a metric "
                        f"recorded with a label (demo.metric({key!r}, value, label=...))",
                        where=(filename, claim.line))

    def _check_key_numbers(self) -> None:
        known = {m.name for m in self.outputs.metrics}
        unknown = [n for n in self.outputs.key_numbers if n not in known]
        if unknown:
            raise DemoError(f"demo.key_numbers names no recorded metric "
                            f"{', '.join(map(repr, unknown))} (metrics: {', '.join(sorted(known))})",
                            where=self._key_where)

    # -- ONNX ----------------------------------------------------------------------------
    def make_model(self, graph: Any, **kwargs: Any) -> Any:
        """A ModelProto with the IR version and opset the installed onnxruntime accepts."""
        return onnx_tools.make_model(graph, **kwargs)

    def onnx(self, name: str, model: Any) -> Any:
        """Check and save ``name.onnx`` (offered for download); return a 1-thread ORT session."""
        import onnx

        self._check_name(name, [m[:-5] for m in self.outputs.models], "model")
        onnx.checker.check_model(model)
        data = model.SerializeToString(deterministic=True)
        (self.out / f"{name}.onnx").write_bytes(data)
        self.outputs.models.append(f"{name}.onnx")
        return onnx_tools.session(data)

    def session(self, model: Any) -> Any:
        """An ORT session for a model without offering it for download."""
        return onnx_tools.session(model.SerializeToString(deterministic=True))

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _check_name(name: str, taken: list[str], what: str) -> None:
        if not name or any(c in name for c in "/\\ ") or name.startswith("."):
            raise DemoError(f"{what} name {name!r} must be a plain file-name word like 'val-loss'")
        if name in taken:
            raise DemoError(f"{what} '{name}' is recorded twice; give each {what} its own name")

    def save(self) -> None:
        """Write ``outputs.json`` (what the page shows)."""
        self._label_numbers()
        self._check_key_numbers()
        (self.out / "outputs.json").write_text(json.dumps(self.outputs.to_json(), indent=1))
