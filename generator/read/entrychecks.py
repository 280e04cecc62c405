"""Checks on one entry's own text, made when the entry is read (and kept with it by stat):
the ``[[links]]`` it writes, and what is wrong in its Markdown whatever the other entries say."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from ..model import Problem, Term, field_label
from ..text.mathml import formula_problems
from ..text.numbers import typed_numbers
from ..text.safety import unsafe_markup, unsafe_urls
from ..text.scan import iter_placeholders, iter_wikilinks

SCAFFOLD_TODO = "TODO"


class Link(NamedTuple):
    """A ``[[name]]`` written in a field, at its line; resolved once every entry is read."""

    name: str
    field: str
    line: int


def entry_checks(term: Term) -> tuple[list[Link], list[Problem]]:
    """The entry's ``[[links]]`` and the problems in its own text."""
    links: list[Link] = []
    problems: list[Problem] = []
    where = term.where

    def at(path: tuple, text: str, offset: int) -> int:
        return term.locate(path, text.splitlines()[offset].strip()[:80])

    for i, ref in enumerate(term.references):
        if ref.title.startswith(SCAFFOLD_TODO) or any(a.startswith(SCAFFOLD_TODO) for a in ref.authors):
            problems.append(Problem(where, term.line("references", i), "still holds the TODO "
                                    "written by `termlab new`; cite a real primary source", "references"))
    for path, text in term.text_fields():
        field = field_label(path)
        for name, _label, _offset in iter_wikilinks(text):
            links.append(Link(name, field, term.locate(path, f"[[{name}")))
        if text.lstrip().startswith(SCAFFOLD_TODO):
            problems.append(Problem(where, term.line(*path), "still holds the TODO written by "
                                    "`termlab new`; replace it with the real text", field))
        if term.demo:
            for number, offset in typed_numbers(text):
                problems.append(Problem(where, at(path, text, offset),
                                        f"'{number}' is typed by hand in a paragraph about the demo; "
                                        "record it in the demo (demo.setting or demo.metric) and write "
                                        "{{its_name}} here", field))
        for message, offset in [*unsafe_markup(text), *formula_problems(text)]:
            problems.append(Problem(where, at(path, text, offset), message, field))
        for url, _offset in unsafe_urls(text):
            problems.append(Problem(where, term.locate(path, url),
                                    f"unsafe URL '{url[:60]}' refused; use an http(s) link", field))
    if not term.demo:  # nothing can ever fill its placeholders
        problems.extend(placeholder_problems(term, None))
    return links, problems


def placeholder_problems(term: Term, metrics: Mapping[str, str] | None) -> list[Problem]:
    """Each ``{{name}}`` that names no metric of the term's demo run."""
    problems = []
    for path, text in term.text_fields():
        for name, offset in iter_placeholders(text):
            if metrics is not None and name in metrics:
                continue
            why = ("the term has no demo" if not term.demo else
                   "its demo did not run" if metrics is None else
                   f"its demo has no metric '{name}' (it has: {', '.join(metrics) or 'none'})")
            # The line the placeholder is on (a code example before it may hold a `{{` too).
            at = text.splitlines()[offset].strip()
            line = term.locate(path, at) if at and len(at) < 200 else term.locate(path, "{{" + name)
            problems.append(Problem(term.where, line,
                                    f"placeholder {{{{{name}}}}} cannot be filled: {why}",
                                    field_label(path)))
    return problems
