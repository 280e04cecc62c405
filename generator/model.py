"""The data model: plain dataclasses shared by every stage of the pipeline.

Data flows one way: ``read`` makes Terms and a Glossary, ``demo`` makes results, ``render``
makes a Site of Markdown pages, ``publish`` adds files to it. Nothing here imports a stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in an input file, reported as ``path:line: field: message``."""

    path: str
    line: int
    message: str
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def format_problems(problems: Iterable[Problem]) -> str:
    """All problems, one a line, followed by a count."""
    items = sorted(problems)
    lines = [str(p) for p in items]
    lines.append(f"{len(items)} problem{'s' if len(items) != 1 else ''} found")
    return "\n".join(lines)


def rel_path(path: Path, root: Path) -> str:
    """``path`` relative to the project root, as problems name it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


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


@dataclass(frozen=True)
class Stage:
    """A named stage of the learning path (``glossary/_path.yaml``, or one per category when a
    glossary declares none), with its terms in the order a learner reads them."""

    id: str
    name: str
    description: str = ""
    terms: tuple[str, ...] = ()


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
    stage: str = ""  # a stage id from glossary/_path.yaml ("" = placed automatically)
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

    def text_fields(self) -> Iterator[tuple[tuple, str]]:
        """Every Markdown field with its path: summary, body, example, questions..."""
        yield ("summary",), self.summary
        yield ("body",), self.body
        yield ("example",), self.example
        yield ("analogy",), self.analogy
        for level, text in self.levels.items():
            yield ("levels", level), text
        for i, text in enumerate(self.key_concepts):
            yield ("key_concepts", i), text
        for i, q in enumerate(self.questions):
            yield ("questions", i, "q"), q.q
            yield ("questions", i, "a"), q.a

    def locate(self, path: tuple, needle: str) -> int:
        """The line of ``needle`` inside the field at ``path`` (the field's line if not found)."""
        start = self.line(*path)
        for offset, line in enumerate(self.text.splitlines()[start - 1:]):
            if needle in line:
                return start + offset
        return start

    def line(self, *path: Any) -> int:
        """The 1-based line of a field (or list item), falling back to its parents."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1


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
    stages: list[Stage] = field(default_factory=list)  # the learning path, stage by stage

    def lookup(self, name: str) -> str | None:
        """The id a name (id, term, alias or a plural of one) resolves to, or None."""
        from .text.names import lookup

        return lookup(self.names, name)


@dataclass(frozen=True)
class TermRef:
    """What a link needs to know about a term: its id, the name to show, its page's URL."""

    id: str
    name: str
    url: str


@dataclass
class Site:
    """Everything a build publishes: Markdown pages and files, by site-relative path."""

    pages: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def field_label(path: tuple) -> str:
    """How messages name a text field: ``body``, ``levels.basic``, ``questions`` (not the index)."""
    return path[0] if len(path) == 1 or isinstance(path[1], int) else f"{path[0]}.{path[1]}"
