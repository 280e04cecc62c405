"""Render the resolved glossary (and demo results) into Markdown pages with Jinja2."""

from __future__ import annotations

import html
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cache
from hashlib import sha256
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import BytecodeCache, FileSystemBytecodeCache

from ..demo.bundle import REQUIREMENTS
from ..model import Glossary, Problem, Question, Site, Term
from ..read.entrychecks import placeholder_problems
from ..text.plain import anchor, fenced, fill_metrics, initial, midsentence, plain, short_summary
from ..text.safety import attribute_text, escape_markdown_html, escape_text, title_text
from . import sources, urls
from .connections import SAME_CATEGORY, SHOWN, connected_terms, path_places

MORE_IN_CATEGORY = 8
# The learning path lists every term with its summary, like a syllabus. Past this many terms it
# is no syllabus but a page of megabytes (10,000 terms: 3 MB of Markdown, longer to build than
# the rest of the site's pages together), so such a glossary has none; each term page still
# says what it builds on and what comes next.
PATH_MAX_TERMS = 500
# search: pagefind — the page holding Pagefind's search box (termlab-search.js mounts it).
SEARCH_PAGE = """\
# Search

<div id="termlab-search" class="termlab-search" data-pagefind="{pagefind}/" markdown="0"></div>

Every term is also listed in the [A–Z index]({index}).
"""


def has_learning_path(glossary: Glossary) -> bool:
    return 0 < len(glossary.terms) <= PATH_MAX_TERMS


def compiled_templates(folder: Path) -> BytecodeCache | None:
    """Compiled templates kept in ``folder`` between builds (Jinja checks each template's
    source, and writes each file whole); None if the folder cannot be made (read-only)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return FileSystemBytecodeCache(str(folder))


def keep_compiled(cache_dir: Path) -> None:
    """Keep the page templates' compiled code in the build's cache, beside the theme's. Jinja
    does not check the settings code was compiled with: they name the folder."""
    env = environment()
    settings = (jinja2.__version__, env.trim_blocks, env.lstrip_blocks, env.keep_trailing_newline,
                env.autoescape, env.newline_sequence)
    digest = sha256(repr(settings).encode()).hexdigest()[:12]
    env.bytecode_cache = compiled_templates(cache_dir / "templates" / f"pages-{digest}")


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
        htmlattr=lambda s: html.escape(str(s), quote=True),
        number=readable_number,
    )
    env.globals.update(plain=plain, anchor=anchor, fenced=fenced, evidence=evidence, source_slot=sources.slot,
                       requirements=" ".join(REQUIREMENTS))
    return env


_E_NOTATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)e([+-]?)0*(\d+)\b")
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def readable_number(text: str) -> str:
    """A formatted number as a reader writes it: ``8.8e-10`` becomes ``8.8 × 10⁻¹⁰``."""
    def power(m: re.Match) -> str:
        exponent = ("-" if m.group(2) == "-" else "") + m.group(3)
        return f"{m.group(1)} × 10{exponent.translate(_SUPERSCRIPT)}"

    return _E_NOTATION.sub(power, str(text))


def evidence(claim: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """A claim's labelled numbers, those whose labels share the words before their last comma
    in one group: ``Validation loss, no dropout`` and ``Validation loss, dropout`` read as
    ``Validation loss: no dropout 2.1, dropout 0.93``. Each group is (shared words, [(own
    words, value)]); a number that shares nothing is a group of its own with no shared words."""
    groups: list[tuple[str, list[tuple[str, str]]]] = []
    by_head: dict[str, list[tuple[str, str]]] = {}
    for key, value in claim.numbers.items():
        label = claim.labels.get(key)
        if label is None:
            continue
        head, _, tail = label.rpartition(", ")
        if head and tail:
            if head not in by_head:
                by_head[head] = []
                groups.append((head, by_head[head]))
            by_head[head].append((tail, value))
        else:
            groups.append(("", [(label, value)]))
    return [("", [(f"{head}, {items[0][0]}", items[0][1])]) if head and len(items) == 1 else (head, items)
            for head, items in groups]


class SiteRenderer:
    """Renders the generated pages, all at once or one at a time.

    Terms listed in ``pending`` have a demo still running: their pages say so and their
    placeholders stay unfilled (and unreported) until ``add_result`` brings the run, after
    which any page can be rendered again, exactly as if the result had been there at first."""

    def __init__(self, glossary: Glossary, demos: Mapping[str, Any] | None = None, *,
                 title: str = "termlab", description: str = "", pending: set[str] | None = None,
                 search_page: bool = False, memo: dict | None = None, live: str = "",
                 splice_sources: bool = False):
        self.glossary = glossary
        # Serve: term pages as last rendered (kept by the caller across rebuilds), see term_page.
        self.memo = memo
        self.search_page = search_page  # search: pagefind
        self.live = live  # "Run it in your browser": onnxruntime-web's download size, "" = no panel
        self.splice_sources = splice_sources  # demo sources as slots the builder fills (render/sources.py)
        self.demos: dict[str, Any] = dict(demos or {})
        self.audits: dict[str, Any] = {}  # each term's seed audit (demo.audit.DemoAudit), once in
        self.pending = set(pending or ())
        self.title = title
        self.description = description
        self.env = environment()
        self.filled: dict[str, Term] = {}
        self.summaries: dict[str, str] = {}
        self.shorts: dict[str, str] = {}  # the first sentence, cut at 25 words: for lists
        self.places = path_places(glossary)
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
        # A term without a demo: its placeholders are reported when its entry is read.
        extra = [] if tid in self.pending or not term.demo else placeholder_problems(term, metrics)
        self.placeholder_problems[tid] = extra
        self.filled[tid] = _with_metrics(term, metrics or {})
        self.summaries[tid] = self.filled[tid].summary.strip()
        self.shorts[tid] = short_summary(self.summaries[tid])

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

    def short(self, tid: str) -> str:
        """The short plain-text summary, escaped for Markdown."""
        return escape_text(self.shorts.get(tid, ""))

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
        if self.glossary.terms:
            site.pages[urls.STUDY_PAGE] = self.study_page()
            site.pages[urls.MAP_PAGE] = self.map_page()
        if self.search_page:
            site.pages[urls.SEARCH_PAGE] = SEARCH_PAGE.format(pagefind=_rel(f"{urls.PAGEFIND}/", urls.SEARCH_PAGE),
                                                              index=_rel(urls.INDEX_PAGE, urls.SEARCH_PAGE))
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
        """A term's page. With a ``memo`` (serve), a page is rendered again only if what it
        shows changed: its own inputs, or the name or summary of a term it names; every other
        term's name and summary are read through ``link``/``short``/``summary``, which note them."""
        g = self.glossary
        term = self.filled[tid]
        members = g.members.get(term.category, [])
        connected = connected_terms(g, tid, _neighbours(members, tid, MORE_IN_CATEGORY))
        page = urls.term_page(tid)
        problems = self.by_file.get(term.where, []) + self.placeholder_problems[tid]
        inputs = (term, g.categories.get(term.category), problems, connected, len(members) - 1, self.places.get(tid),
                  _rel(urls.PATH_PAGE, page) if has_learning_path(g) else "", self.demos.get(tid), self.audits.get(tid),
                  self.live)
        kept = self.memo.get(tid) if self.memo is not None else None
        if kept is not None and kept[0] == inputs and all(self._shown(o) == v for o, v in kept[1].items()):
            return kept[2]
        read: dict[str, tuple] = {}
        link, short, summary = self.linker(page), self.short, self.summary

        def noted(function):
            def call(other: str) -> str:
                read[other] = self._shown(other)
                return function(other)
            return call

        markdown = self.env.get_template("term.md.j2").render(
            term=term, category=inputs[1], problems=inputs[2],
            heading_name=midsentence(term.term, "\n".join(text for _, text in term.text_fields())),
            connected=connected, shown=SHOWN, more_count=inputs[4],
            in_category=sum(SAME_CATEGORY in c.relations for c in connected),
            place=inputs[5], path_page=inputs[6], demo=inputs[7], audit=inputs[8], live=inputs[9],
            splice_sources=self.splice_sources,
            link=noted(link), summary=noted(summary), short=noted(short))
        if self.memo is not None:
            self.memo[tid] = (inputs, read, markdown)
        return markdown

    def _shown(self, tid: str) -> tuple:
        """What other pages show of a term: its name (None once it is gone) and summaries."""
        term = self.glossary.terms.get(tid)
        return (term.term if term else None, self.shorts.get(tid), self.summaries.get(tid))

    def broken_page(self, stem: str) -> str:
        return self.env.get_template("broken.md.j2").render(
            stem=stem, problems=self.glossary.broken_files[stem])

    def index_page(self) -> str:
        g = self.glossary
        terms = g.terms
        letters: dict[str, list[str]] = {}
        for tid in sorted(terms, key=lambda t: (terms[t].term.casefold(), t)):
            letters.setdefault(initial(terms[tid].term), []).append(tid)
        start = g.stages[0].terms[0] if g.stages and g.stages[0].terms else None
        return self.env.get_template("index.md.j2").render(
            title=self.title, description=self.description, start=start,
            first_stage=g.stages[0] if g.stages else None, has_path=has_learning_path(g),
            count=len(terms), categories=g.categories, letters=sorted(letters.items()),
            problems=g.problems + self.problems, link=self.linker(urls.INDEX_PAGE), short=self.short,
            category=lambda tid: g.categories[c].name if (c := terms[tid].category) in g.categories else "")

    def path_page(self) -> str:
        terms = self.glossary.terms
        prerequisites = {tid: [p for p in t.prerequisites if p in terms] for tid, t in terms.items()}
        return self.env.get_template("path.md.j2").render(
            stages=self.glossary.stages, count=len(terms), prerequisites=prerequisites,
            link=self.linker(urls.PATH_PAGE), short=self.short)

    def study_page(self) -> str:
        g, page = self.glossary, urls.STUDY_PAGE
        categories = [(cid, c.name, _rel(urls.study_deck(cid), page), len(g.members[cid]))
                      for cid, c in g.categories.items() if g.members.get(cid)]
        return self.env.get_template("study.md.j2").render(
            deck=_rel(urls.study_deck(), page), csv=_rel(urls.STUDY_CSV, page), count=len(g.terms),
            categories=categories, terms_json=_rel("terms.json", page))

    def map_page(self) -> str:
        g = self.glossary
        used = [c for cid, c in g.categories.items() if g.members.get(cid)]
        return self.env.get_template("map.md.j2").render(
            svg=_rel(urls.MAP_SVG, urls.MAP_PAGE), count=len(g.terms), index=_rel(urls.INDEX_PAGE, urls.MAP_PAGE),
            categories=[(i % urls.MAP_COLOURS, c.name) for i, c in enumerate(g.categories.values()) if c in used])

    def categories_page(self) -> str:
        return self.env.get_template("categories.md.j2").render(
            categories=list(self.glossary.categories.values()), members=self.glossary.members)

    def category_page(self, cid: str) -> str:
        return self.env.get_template("category.md.j2").render(
            category=self.glossary.categories[cid], ids=self.glossary.members[cid],
            link=self.linker(urls.category_page(cid)), short=self.short,
            study=_rel(urls.STUDY_PAGE, urls.category_page(cid)),
            deck=_rel(urls.study_deck(cid), urls.category_page(cid)))


def _rel(target: str, page: str) -> str:
    """A Markdown link target from ``page`` to the page ``target`` (both source paths)."""
    return posixpath.relpath(target, posixpath.dirname(page) or ".")


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
