"""One demo run as a page shows it: its figures, numbers, claims and files, read from a
cache entry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..model import DemoSpec
from .runtime.plots import image_size
from .runtime.records import Claim, FigureInfo, Metric


@dataclass
class DemoResult:
    """One demo run as the page shows it."""

    name: str
    source: str
    source_file: str
    figures: list[FigureInfo] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    download: str = ""  # the zip that runs the demo on its own (bundle.py)
    key_numbers: list[str] = field(default_factory=list)
    error: str | None = None
    error_file: str = ""
    error_line: int = 0
    output: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    cached: bool = False
    files: dict[str, bytes] = field(default_factory=dict, repr=False)

    def key_metrics(self) -> list[Metric]:
        """The run's key numbers (``demo.key_numbers``), in the order the demo gave them."""
        by_name = {m.name: m for m in self.metrics}
        return [by_name[n] for n in self.key_numbers if n in by_name]

    def formatted_metrics(self) -> dict[str, str]:
        return {m.name: m.display for m in self.metrics}

    def figure_size(self, filename: str) -> tuple[int, int] | None:
        """Width and height of a figure file in CSS pixels, if it can be read."""
        data = self.files.get(filename)
        return image_size(data) if data else None

    @classmethod
    def from_entry(cls, entry: Path, source: str, name: str, cached: bool) -> DemoResult:
        data = json.loads((entry / "result.json").read_text())
        outputs = data.get("outputs") or {}
        result = cls(
            name=name, source=source, source_file=f"{name}.py",
            figures=[FigureInfo.from_json(f) for f in outputs.get("figures", [])],
            metrics=[Metric(**m) for m in outputs.get("metrics", [])],
            claims=[Claim(**c) for c in outputs.get("claims", [])],
            models=list(outputs.get("models", [])),
            key_numbers=list(outputs.get("key_numbers", [])),
            output=data.get("output", ""), seconds=data.get("seconds", 0.0),
            cpu_seconds=data.get("cpu_seconds", 0.0), cached=cached,
        )
        error = data.get("error")
        if error:
            result.error = error["message"] + (f"\n\n{error['trace']}" if error.get("trace") else "")
            result.error_file = error.get("file", "")
            result.error_line = int(error.get("line") or 0)
            return result
        result.files[f"{name}.py"] = source.encode()
        for fig in result.figures:
            for fname in fig.files():
                result.files[fname] = (entry / fname).read_bytes()
        for model in result.models:
            result.files[model] = (entry / model).read_bytes()
        return result


def source_of(spec: DemoSpec) -> str:
    return spec.path.read_text("utf-8", errors="replace")
