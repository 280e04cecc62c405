"""Term indexes the Markdown extension links against: a resolved glossary or another site."""

from __future__ import annotations

from pathlib import Path

from .markdown_ext import TermRef
from .model import Glossary
from .names import lookup


class GlossaryIndex:
    """Resolves names against a loaded glossary."""

    def __init__(self, glossary: Glossary):
        self.glossary = glossary
        self._names = sorted({t.term for t in glossary.terms.values()} |
                             {a for t in glossary.terms.values() for a in t.aliases})

    @classmethod
    def from_dir(cls, glossary_dir: Path) -> GlossaryIndex:
        from .pipeline import load_and_resolve

        return cls(load_and_resolve(glossary_dir, glossary_dir.parent / "demos"))

    def find(self, name: str) -> TermRef | None:
        tid = lookup(self.glossary.names, name)
        term = self.glossary.terms.get(tid) if tid else None
        if term is None:
            return TermRef(tid, tid, f"terms/{tid}/") if tid else None
        return TermRef(term.id, term.term, term.url)

    def all_names(self) -> list[str]:
        return self._names


def load_index(glossary: str, index: str) -> GlossaryIndex:
    """The index named by the extension's configuration."""
    if glossary:
        return GlossaryIndex.from_dir(Path(glossary))
    if index:
        raise NotImplementedError("linking to another site's terms.json is not implemented yet")
    raise ValueError("termlab extension: set `glossary:` (a glossary folder) or `index:`")
