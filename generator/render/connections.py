"""What a term page lists besides itself: its connected terms, each once with every relation it
has, and its place on the learning path."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Glossary

# Relation labels, in the order entries are listed (a term takes the place of its first).
BUILDS_ON, RELATED, SEE_ALSO, USED_BY, SAME_CATEGORY = (
    "builds on", "related", "see also", "used by", "same category")
SHOWN = 6  # connected terms listed open; the rest are folded (a phone page stays short)


@dataclass(frozen=True)
class Connected:
    id: str
    relations: tuple[str, ...]


@dataclass(frozen=True)
class PathPlace:
    """Where a term is on the learning path: stage ``k`` of ``n`` and its neighbours."""

    k: int
    n: int
    stage: str
    previous: str | None
    next: str | None


def connected_terms(glossary: Glossary, tid: str, neighbours: list[str]) -> list[Connected]:
    """Every term connected to ``tid``, once, with all its relations: what it builds on, what it
    names as related and see-also, the terms that link to it (used by), and ``neighbours``
    from its category; a term of the same category listed for another reason says so too."""
    terms = glossary.terms
    term = terms[tid]
    found: dict[str, list[str]] = {}
    groups = [(BUILDS_ON, term.prerequisites), (RELATED, term.related),
              (SEE_ALSO, term.see_also), (USED_BY, glossary.backlinks.get(tid, [])),
              (SAME_CATEGORY, neighbours)]
    for label, ids in groups:
        for other in ids:
            if other != tid and other in terms:
                labels = found.setdefault(other, [])
                if label not in labels:
                    labels.append(label)
    for other, labels in found.items():
        if SAME_CATEGORY not in labels and term.category and terms[other].category == term.category:
            labels.append(SAME_CATEGORY)
    return [Connected(other, tuple(labels)) for other, labels in found.items()]


def path_places(glossary: Glossary) -> dict[str, PathPlace]:
    """Each term's stage (1-based) and the terms before and after it along the whole path."""
    order = [tid for stage in glossary.stages for tid in stage.terms]
    places = {}
    position = 0
    for k, stage in enumerate(glossary.stages, 1):
        for tid in stage.terms:
            places[tid] = PathPlace(k, len(glossary.stages), stage.name,
                                    order[position - 1] if position else None,
                                    order[position + 1] if position + 1 < len(order) else None)
            position += 1
    return places
