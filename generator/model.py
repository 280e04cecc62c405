"""The data model: plain dataclasses shared by every stage of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .problems import Problem


@dataclass(frozen=True)
class Reference:
    """A primary source cited by a term."""

    title: str
    authors: tuple[str, ...]
    year: int
    url: str | None = None
    venue: str | None = None


@dataclass(frozen=True)
class Question:
    """A self-test question with its answer (both Markdown)."""

    q: str
    a: str


@dataclass(frozen=True)
class DemoSpec:
    """The demo an entry names: ``demos/<name>.py`` and its options."""

    name: str
    path: Path
    options: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None


@dataclass(frozen=True)
class Category:
    """A category declared in ``glossary/_categories.yaml``."""

    id: str
    name: str
    description: str
    order: int


@dataclass
class Term:
    """One glossary entry, as loaded from ``glossary/<id>.yaml``."""

    id: str
    term: str
    summary: str
    body: str
    category: str
    source: Path
    where: str = ""
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    see_also: list[str] = field(default_factory=list)
    prerequisites: list[str] = field(default_factory=list)
    redirect_from: list[str] = field(default_factory=list)
    key_concepts: list[str] = field(default_factory=list)
    example: str = ""
    analogy: str = ""
    levels: dict[str, str] = field(default_factory=dict)  # "basic" and/or "formal" (Markdown)
    questions: list[Question] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    demo: DemoSpec | None = None
    lines: dict[tuple, int] = field(default_factory=dict, repr=False)
    text: str = field(default="", repr=False)

    def line(self, *path: Any) -> int:
        """The 1-based line of a field (or list item), falling back to its parents."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1

    @property
    def url(self) -> str:
        """The stable URL of the term's page, relative to the site root."""
        return f"terms/{self.id}/"


@dataclass
class Glossary:
    """All terms, resolved: every reference is a term id, backlinks and orders are built."""

    terms: dict[str, Term]
    categories: dict[str, Category]
    names: dict[str, str]
    backlinks: dict[str, list[str]]
    members: dict[str, list[str]]
    learning_order: list[str]
    next_up: dict[str, list[str]]
    problems: list[Problem]
    broken_files: dict[str, list[Problem]] = field(default_factory=dict)

    def lookup(self, name: str) -> str | None:
        """The id a name (id, term, alias or a plural of one) resolves to, or None."""
        from .names import lookup

        return lookup(self.names, name)
