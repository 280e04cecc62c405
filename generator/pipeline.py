"""The core pipeline: load -> resolve -> run demos -> render. Imports no MkDocs."""

from __future__ import annotations

from pathlib import Path

from .load import load_glossary
from .model import Glossary
from .resolve import resolve


def load_and_resolve(glossary_dir: Path, demos_dir: Path, root: Path | None = None) -> Glossary:
    """Read every entry and resolve every reference, collecting all problems."""
    return resolve(load_glossary(glossary_dir, demos_dir, root))
