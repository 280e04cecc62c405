"""What a demo's run records, as plain data: figures, metrics, claims, numbers; and its seed.
``result.json`` holds an ``Outputs``; the build reads it back with these classes."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from .sweeps import Slider


class DemoError(Exception):
    """A mistake in how a demo uses the context (bad metric, bad claim...). ``where`` is the
    demo's (file, line) when the mistake is found after the call that made it."""

    def __init__(self, message: str, where: tuple[str, int] | None = None):
        super().__init__(message)
        self.where = where

# Most key numbers a demo may mark, and fewest a demo that marks any should (see key_numbers).
KEY_NUMBERS = (3, 6)


@dataclass
class FigureInfo:
    name: str
    caption: str
    alt: str
    light: str
    dark: str
    notice: str = ""  # one "what to notice" line, shown above the figure
    min_text_px: float = 0.0  # the smallest text in CSS px when shown at phone width
    slider: Slider | None = None  # a sweep's frames (light/dark are its default frame's files)
    kind: str = "finding"  # or "check": it illustrates a sanity check and is shown with them

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FigureInfo:
        slider = data.get("slider")
        return cls(**{**data, "slider": Slider.from_json(slider) if slider else None})

    def files(self) -> list[str]:
        """Every file the figure shows: its light and dark files, then its other frames'."""
        names = [self.light, self.dark] + [f for pair in (self.slider.frames if self.slider else []) for f in pair]
        return list(dict.fromkeys(names))


@dataclass
class Metric:
    """A number the run produced: ``measured`` (a result) or a ``setting`` of the run's setup
    (its size, its grid...), which entries quote as ``{{name}}`` instead of typing it."""

    name: str
    value: float
    label: str = ""
    fmt: str = ".4g"
    unit: str = ""
    kind: str = "measured"

    @property
    def display(self) -> str:
        text = format(self.value, self.fmt)
        return f"{text} {self.unit}".strip() if self.unit else text


@dataclass
class Claim:
    """A statement the run tested: a ``finding`` about learning behaviour (it must hold for
    every audited seed), or a ``check`` (an identity, ONNX Runtime = NumPy, a count)."""

    statement: str
    holds: bool
    numbers: dict[str, str]
    line: int = 0
    kind: str = "finding"
    labels: dict[str, str] = field(default_factory=dict)  # number name -> its words on the page


@dataclass(frozen=True)
class Number:
    """A number a claim shows, with the words and format the page gives it: what
    ``demo.number(value, label)`` returns, for numbers that are not recorded metrics."""

    value: float | str
    label: str
    fmt: str = ""
    unit: str = ""

    @property
    def display(self) -> str:
        if isinstance(self.value, str):
            return f"{self.value} {self.unit}".strip() if self.unit else self.value
        text = format(self.value, self.fmt) if self.fmt else \
            str(int(self.value)) if float(self.value).is_integer() else format(self.value, ".3g")
        return f"{text} {self.unit}".strip() if self.unit else text


@dataclass
class Outputs:
    """Everything a run records; saved as ``result.json`` beside the files."""

    figures: list[FigureInfo] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    key_numbers: list[str] = field(default_factory=list)  # metric names, shown first

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def seed_for(name: str, options: dict[str, Any]) -> int:
    """A stable seed per demo: ``options['seed']`` if given, else derived from the name."""
    if "seed" in options:
        return int(options["seed"])
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
