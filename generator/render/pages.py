"""Render the resolved glossary (and demo results) into Markdown pages with Jinja2."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cache
from typing import Any

import jinja2

from ..model import Glossary, Problem, Question, Site, Term, field_label
from ..text.plain import anchor, fenced, fill_metrics, initial, midsentence, plain
from ..text.safety import attribute_text, escape_markdown_html, escape_text, title_text
from ..text.scan import iter_placeholders
from . import urls

MORE_IN_CATEGORY = 8
# The learning path lists every term with its summary, like a syllabus. Past this many terms it
# is no syllabus but a page of megabytes (10,000 terms: 3 MB of Markdown, longer to build than
# the rest of the site's pages together), so such a glossary has none; each term page still
# says what it builds on and what comes next.
PATH_MAX_TERMS = 500


def has_learning_path(glossary: Glossary) -> bool:
    return 0 < len(glossary.terms) <= PATH_MAX_TERMS


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("generator.render", "templates"),
        autoescape=False,  # the output is Markdown: every value goes through a filter below
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        text=escape_text,
        md=escape_markdown_html,
        page_title=lambda s: json.dumps(title_text(plain(str(s))), ensure_ascii=False),
        page_description=lambda s: json.dumps(attribute_text(plain(str(s))), ensure_ascii=False),
        plainattr=lambda s: escape_text(plain(str(s))).replace('"', "&quot;"),
        codetext=lambda s: str(s).replace("`", "'").replace("\n", " "),
        cell=lambda s: str(s).replace("|", "\\|").replace("\n", " "),
        urlsafe=lambda s: str(s).replace(" ", "%20").replace("(", "%28").replace(")", "%29"),
    )
    env.globals.update(plain=plain, anchor=anchor, fenced=fenced)
    return env


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


class SiteRenderer:
    """Renders the generated pages, all at once or one at a time.

    Terms listed in ``pending`` have a demo still running: their pages say so and their
    placeholders stay unfilled (and unreported) until ``add_result`` brings the run, after
    which any page can be rendered again, exactly as if the result had been there at first."""

    def __init__(self, glossary: Glossary, demos: Mapping[str, Any] | None = None, *,
                 title: str = "termlab", description: str = "", pending: set[str] | None = None):
        self.glossary = glossary
        self.demos: dict[str, Any] = dict(demos or {})
        self.audits: dict[str, Any] = {}  # each term's seed audit (demo.audit.DemoAudit), once in
        self.pending = set(pending or ())
        self.title = title
        self.description = description
        self.env = environment()
        self.filled: dict[str, Term] = {}
        self.summaries: dict[str, str] = {}
        self.placeholder_problems: dict[str, list[Problem]] = {}
        self.by_file: dict[str, list[Problem]] = {}
        for p in glossary.problems:
            self.by_file.setdefault(p.path, []).append(p)
        for tid in glossary.terms:
            self._fill(tid)

    def _fill(self, tid: str) -> None:
        """The term with its metrics filled in (and its unfillable placeholders as problems)."""
        term = self.glossary.terms[tid]
        result = self.demos.get(tid)
        metrics = result.formatted_metrics() if result is not None and not result.error else None
        extra = [] if tid in self.pending else placeholder_problems(term, metrics)
        self.placeholder_problems[tid] = extra
        self.filled[tid] = _with_metrics(term, metrics or {})
        self.summaries[tid] = self.filled[tid].summary.strip()

    def add_result(self, tid: str, result: Any) -> None:
        """A pending demo finished."""
        self.pending.discard(tid)
        self.demos[tid] = result
        self._fill(tid)

    def add_audit(self, tid: str, audit: Any) -> None:
        """The seed audit of the term's demo finished: its page shows the hold rates."""
        self.audits[tid] = audit

    @property
    def problems(self) -> list[Problem]:
        """Placeholders that cannot be filled, term by term."""
        return [p for tid in self.glossary.terms for p in self.placeholder_problems[tid]]

    def linker(self, page: str) -> Callable[[str], str]:
        """``link(tid)`` for templates: a link from ``page`` to the term, showing its name."""
        terms = self.glossary.terms

        def link(tid: str) -> str:
            return urls.term_link(tid, escape_text(terms[tid].term if tid in terms else tid), page)

        return link

    def summary(self, tid: str) -> str:
        return self.summaries.get(tid, "")

    def site(self) -> Site:
        """Every page, plus each demo's files next to its term's page."""
        site = Site(problems=self.problems)
        for tid in self.glossary.terms:
            site.pages[urls.term_page(tid)] = self.term_page(tid)
            site.files.update(self.demo_files(tid))
        for stem in self.glossary.broken_files:
            site.pages[urls.term_page(stem)] = self.broken_page(stem)
        site.pages[urls.INDEX_PAGE] = self.index_page()
        site.pages[urls.CATEGORIES_PAGE] = self.categories_page()
        if has_learning_path(self.glossary):
            site.pages[urls.PATH_PAGE] = self.path_page()
        for cid in self.glossary.categories:
            site.pages[urls.category_page(cid)] = self.category_page(cid)
        return site

    def page(self, src_uri: str) -> str | None:
        """The page at ``src_uri`` (None if it is not one of ours)."""
        kind, key = urls.parse(src_uri)
        g = self.glossary
        if kind == "index":
            return self.index_page()
        if kind == "categories":
            return self.categories_page()
        if kind == "path" and has_learning_path(g):
            return self.path_page()
        if kind == "term" and key in g.terms:
            return self.term_page(key)
        if kind == "term" and key in g.broken_files:
            return self.broken_page(key)
        if kind == "category" and key in g.categories:
            return self.category_page(key)
        return None

    def demo_files(self, tid: str) -> dict[str, bytes]:
        result = self.demos.get(tid)
        if result is None:
            return {}
        return {urls.term_file(tid, name): data for name, data in result.files.items()}

    def term_page(self, tid: str) -> str:
        g = self.glossary
        term = self.filled[tid]
        category = g.categories.get(term.category)
        members = g.members.get(term.category, [])
        problems = self.by_file.get(term.where, []) + self.placeholder_problems[tid]
        return self.env.get_template("term.md.j2").render(
            term=term, category=category, problems=problems,
            heading_name=midsentence(term.term, "\n".join(text for _, text in term.text_fields())),
            backlinks=g.backlinks.get(tid, []), next_up=g.next_up.get(tid, []),
            more_in_category=_neighbours(members, tid, MORE_IN_CATEGORY),
            more_count=len(members) - 1, demo=self.demos.get(tid), audit=self.audits.get(tid),
            link=self.linker(urls.term_page(tid)), summary=self.summary)

    def broken_page(self, stem: str) -> str:
        return self.env.get_template("broken.md.j2").render(
            stem=stem, problems=self.glossary.broken_files[stem])

    def index_page(self) -> str:
        g = self.glossary
        terms = g.terms
        letters: dict[str, list[str]] = {}
        for tid in sorted(terms, key=lambda t: (terms[t].term.casefold(), t)):
            letters.setdefault(initial(terms[tid].term), []).append(tid)
        return self.env.get_template("index.md.j2").render(
            title=self.title, description=self.description or "An ML glossary where every term runs.",
            count=len(terms), categories=g.categories, letters=sorted(letters.items()),
            problems=g.problems + self.problems, link=self.linker(urls.INDEX_PAGE), summary=self.summary)

    def path_page(self) -> str:
        terms = self.glossary.terms
        prerequisites = {tid: [p for p in t.prerequisites if p in terms] for tid, t in terms.items()}
        stages = [sorted(stage, key=lambda t: (terms[t].term.casefold(), t))
                  for stage in learning_stages(self.glossary.learning_order, prerequisites)]
        return self.env.get_template("path.md.j2").render(
            stages=stages, count=len(terms),
            prerequisites=prerequisites, link=self.linker(urls.PATH_PAGE), summary=self.summary)

    def categories_page(self) -> str:
        return self.env.get_template("categories.md.j2").render(
            categories=list(self.glossary.categories.values()), members=self.glossary.members)

    def category_page(self, cid: str) -> str:
        return self.env.get_template("category.md.j2").render(
            category=self.glossary.categories[cid], ids=self.glossary.members[cid],
            link=self.linker(urls.category_page(cid)), summary=self.summary)


def learning_stages(order: list[str], prerequisites: Mapping[str, list[str]]) -> list[list[str]]:
    """Terms grouped by prerequisite depth: stage 1 needs nothing, stage k+1 builds on stage k
    at most. ``order`` is topological; terms left out of it (a prerequisite cycle, reported as a
    problem) come last."""
    depth: dict[str, int] = {}
    for tid in order:
        depth[tid] = 1 + max((depth.get(p, 0) for p in prerequisites[tid]), default=-1)
    last = max(depth.values(), default=-1) + 1
    stages: list[list[str]] = [[] for _ in range(last + 1)]
    for tid in order:
        stages[depth[tid]].append(tid)
    stages[last] = sorted(set(prerequisites) - set(depth))
    return [s for s in stages if s]


def _neighbours(members: list[str], tid: str, n: int) -> list[str]:
    """Up to ``n`` other members around ``tid`` in alphabetical order (O(n) per page)."""
    if tid not in members:
        return members[:n]
    i = members.index(tid)
    start = max(0, min(i - n // 2, len(members) - n - 1))
    return [m for m in members[start:start + n + 1] if m != tid][:n]


def _with_metrics(term: Term, metrics: Mapping[str, str]) -> Term:
    """A copy of the term with metric placeholders filled in every text field."""
    if not metrics:
        return term
    return replace(
        term,
        summary=fill_metrics(term.summary, metrics),
        body=fill_metrics(term.body, metrics),
        example=fill_metrics(term.example, metrics),
        analogy=fill_metrics(term.analogy, metrics),
        levels={k: fill_metrics(v, metrics) for k, v in term.levels.items()},
        key_concepts=[fill_metrics(k, metrics) for k in term.key_concepts],
        questions=[Question(fill_metrics(q.q, metrics), fill_metrics(q.a, metrics))
                   for q in term.questions],
    )
