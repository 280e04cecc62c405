"""Figures with a slider: one frame per value of a parameter the run swept (``demo.sweep``).

Each frame is drawn like a figure (light and dark); a frame whose files repeat an earlier one's
bytes is stored once. The page shows the default frame without script and swaps frames and the
frame's numbers when the reader moves the slider.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import plots

MAX_FRAMES = 41  # a slider a reader can still step through by arrow keys


@dataclass
class SliderNumber:
    """A number shown under a slider, one display per frame (``demo.number``'s format)."""

    label: str
    values: list[str]


@dataclass
class Slider:
    """What a figure with frames carries beside its default frame's files."""

    label: str  # the parameter's words: "decay strength λ"
    values: list[str]  # each frame's parameter value, as the page shows it
    default: int  # the frame shown without script
    frames: list[list[str]]  # [light, dark] files of each frame; repeats share files
    alts: list[str]  # each frame's alt text
    numbers: list[SliderNumber] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Slider:
        return cls(**{**data, "numbers": [SliderNumber(**n) for n in data.get("numbers", [])]})


def check_values(name: str, values: Sequence[Any], default: int) -> None:
    """A sweep needs 2 to MAX_FRAMES values and a default frame among them."""
    if not 2 <= len(values) <= MAX_FRAMES:
        raise ValueError(f"sweep '{name}' needs 2 to {MAX_FRAMES} values, got {len(values)}")
    if not 0 <= default < len(values):
        raise ValueError(f"sweep '{name}': default={default} is not the index of one of its "
                         f"{len(values)} values (0 to {len(values) - 1})")


def frame_numbers(name: str, rows: list[Sequence[Any]]) -> list[SliderNumber]:
    """Per-frame ``demo.number`` lists, turned into one row per label; every frame must give the
    same labels in the same order."""
    labels = [n.label for n in rows[0]] if rows else []
    for k, row in enumerate(rows):
        if [n.label for n in row] != labels:
            raise ValueError(f"sweep '{name}': frame {k} gives the numbers "
                             f"{[n.label for n in row]}, frame 0 gives {labels}; every frame "
                             "must give the same numbers in the same order")
    return [SliderNumber(label, [row[i].display for row in rows]) for i, label in enumerate(labels)]


def render_frames(draw: Callable[[Any, int], Any], out: Path, name: str, count: int,
                  size: tuple[float, float], fmt: str) -> tuple[list[list[str]], float]:
    """Draw frame k with ``draw(fig, k)`` for every k; return each frame's [light, dark] files
    (a frame whose light and dark bytes repeat an earlier frame's points to its files) and the
    smallest text over all frames in CSS px at phone width."""
    frames: list[list[str]] = []
    seen: dict[tuple[bytes, bytes], list[str]] = {}
    smallest = float("inf")
    for k in range(count):
        files = plots.render(lambda fig, k=k: draw(fig, k), out, f"{name}-{k}", size, fmt)
        smallest = min(smallest, files["min_text_px"])
        pair = (out / files["light"]).read_bytes(), (out / files["dark"]).read_bytes()
        if pair in seen:
            for theme in ("light", "dark"):
                (out / files[theme]).unlink()
            frames.append(seen[pair])
        else:
            frames.append(seen.setdefault(pair, [files["light"], files["dark"]]))
    return frames, smallest
