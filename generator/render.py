"""Render the resolved glossary (and demo results) into Markdown pages with Jinja2."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import jinja2

from .model import Glossary, Question, Term
from .problems import Problem
from .resolve import field_label, locate, text_fields
from .safety import attribute_text, escape_markdown_html, escape_text, title_text
from .textscan import PLACEHOLDER, iter_placeholders

MORE_IN_CATEGORY = 8
PATH_PAGE = "path/index.md"
# The learning path lists every term with its summary, like a syllabus. Past this many terms it
# is no syllabus but a page of megabytes (10,000 terms: 3 MB of Markdown, longer to build than
# the rest of the site's pages together), so such a glossary has none; each term page still
# says what it builds on and what comes next.
PATH_MAX_TERMS = 500


def has_learning_path(glossary: Glossary) -> bool:
    return 0 < len(glossary.terms) <= PATH_MAX_TERMS


@dataclass
class Site:
    """Everything a build publishes: Markdown pages and files, by site-relative path."""

    pages: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("generator", "templates"),
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


_LINK_LABEL = re.compile(r"\[\[([^\[\]|\n]+?)(?:\|([^\[\]\n]+?))?\]\]")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"[*_`]+|\$\$?")


_MATH = re.compile(r"\$\$?(.+?)\$\$?", re.S)
_LATEX_COMMAND = re.compile(r"\\([A-Za-z]+)\s*")
_LATEX_SYMBOLS = {
    "lVert": "‖", "rVert": "‖", "Vert": "‖", "cdot": "·", "times": "×", "leq": "≤", "le": "≤",
    "geq": "≥", "ge": "≥", "approx": "≈", "neq": "≠", "to": "→", "leftarrow": "←",
    "rightarrow": "→", "infty": "∞", "sum": "Σ", "partial": "∂", "nabla": "∇", "in": "∈",
    "pm": "±", "sqrt": "√", "ell": "ℓ",
}
_FRAC = re.compile(r"\\t?frac\{([^{}]*)\}\{([^{}]*)\}")
_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _latex_command(m: re.Match) -> str:
    name = m.group(1)
    if name in _LATEX_SYMBOLS:
        return _LATEX_SYMBOLS[name]
    try:
        case = "CAPITAL" if name[0].isupper() else "SMALL"
        return unicodedata.lookup(f"GREEK {case} LETTER {name.upper().replace('LAMBDA', 'LAMDA')}")
    except KeyError:
        return ""  # \frac, \operatorname, \mathrm...: keep their arguments only


def _group(text: str) -> str:
    return f"({text})" if any(op in text for op in "+-") else text


def latex_text(latex: str) -> str:
    """Readable plain text for simple LaTeX: Greek letters and common symbols as Unicode."""
    text = _FRAC.sub(lambda m: f"{m.group(1)}/{_group(m.group(2))}", latex)
    text = _LATEX_COMMAND.sub(_latex_command, text)
    text = re.sub(r"\^\{?(\d)\}?", lambda m: m.group(1).translate(_SUPERSCRIPTS), text)
    return text.replace("{", "").replace("}", "").replace("\\", "")


def plain(markdown: str) -> str:
    """Markdown reduced to one line of plain text (for descriptions and previews)."""
    text = _LINK_LABEL.sub(lambda m: m.group(2) or m.group(1), markdown)
    text = _MATH.sub(lambda m: latex_text(m.group(1)), text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_MARKS.sub("", text)
    return " ".join(text.split())


def fenced(text: str, lang: str = "text", indent: int = 0) -> str:
    """A fenced code block whose fence is longer than any backtick run inside the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = "\n".join((" " * indent + line) if line else line for line in text.rstrip("\n").split("\n"))
    pad = " " * indent
    return f"{fence}{lang}\n{body}\n{pad}{fence}"


def midsentence(name: str, text: str = "") -> str:
    """A name as it reads inside a sentence: ``Weight decay`` -> ``weight decay``; ``L2`` kept,
    and so is a proper noun such as ``Adam``: a name that ``text`` (the entry's own prose)
    writes capitalized but never in lowercase."""
    if not (len(name) > 1 and name[0].isupper() and name[1].islower()):
        return name
    lowered = name[0].lower() + name[1:]

    def written(form: str) -> bool:  # as a word of its own (not inside {{adam_steps}})
        return re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", text) is not None

    return name if written(name) and not written(lowered) else lowered


def anchor(letter: str) -> str:
    return "letter-" + (letter.lower() if letter.isalnum() else "other")


def initial(name: str) -> str:
    """The A–Z heading a name sorts under (accents folded; digits and symbols under #)."""
    first = unicodedata.normalize("NFKD", name.strip()[:1])[:1].upper()
    return first if "A" <= first <= "Z" else "#"


def fill_metrics(text: str, metrics: Mapping[str, str]) -> str:
    """Replace ``{{name}}`` placeholders with formatted metric values."""
    if "{{" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: metrics.get(m.group(1), m.group(0)), text)


def placeholder_problems(term: Term, metrics: Mapping[str, str] | None) -> list[Problem]:
    """Each ``{{name}}`` that names no metric of the term's demo run."""
    problems = []
    for path, text in text_fields(term):
        for name, _ in iter_placeholders(text):
            if metrics is not None and name in metrics:
                continue
            why = ("the term has no demo" if not term.demo else
                   "its demo did not run" if metrics is None else
                   f"its demo has no metric '{name}' (it has: {', '.join(metrics) or 'none'})")
            problems.append(Problem(term.where, locate(term, path, "{{"),
                                    f"placeholder {{{{{name}}}}} cannot be filled: {why}",
                                    field_label(path)))
    return problems


def render_site(glossary: Glossary, demos: Mapping[str, Any] | None = None,
                title: str = "termlab", description: str = "") -> Site:
    """All generated pages. ``demos`` maps term id -> DemoResult (or None if not run)."""
    return SiteRenderer(glossary, demos, title=title, description=description).site()


class SiteRenderer:
    """Renders the generated pages, all at once or one at a time.

    Terms listed in ``pending`` have a demo still running: their pages say so and their
    placeholders stay unfilled (and unreported) until ``add_result`` brings the run, after
    which any page can be rendered again, exactly as if the result had been there at first."""

    def __init__(self, glossary: Glossary, demos: Mapping[str, Any] | None = None, *,
                 title: str = "termlab", description: str = "", pending: set[str] | None = None):
        self.glossary = glossary
        self.demos: dict[str, Any] = dict(demos or {})
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

    @property
    def problems(self) -> list[Problem]:
        """Placeholders that cannot be filled, term by term."""
        return [p for tid in self.glossary.terms for p in self.placeholder_problems[tid]]

    def link(self, tid: str) -> str:
        terms = self.glossary.terms
        name = terms[tid].term if tid in terms else tid
        return f"[[{tid}|{escape_text(name)}]]"

    def summary(self, tid: str) -> str:
        return self.summaries.get(tid, "")

    def site(self) -> Site:
        """Every page, plus each demo's files next to its term's page."""
        site = Site(problems=self.problems)
        for tid in self.glossary.terms:
            site.pages[f"terms/{tid}/index.md"] = self.term_page(tid)
            site.files.update(self.demo_files(tid))
        for stem in self.glossary.broken_files:
            site.pages[f"terms/{stem}/index.md"] = self.broken_page(stem)
        site.pages["index.md"] = self.index_page()
        site.pages["categories/index.md"] = self.categories_page()
        if has_learning_path(self.glossary):
            site.pages[PATH_PAGE] = self.path_page()
        for cid in self.glossary.categories:
            site.pages[f"categories/{cid}/index.md"] = self.category_page(cid)
        return site

    def page(self, src_uri: str) -> str | None:
        """The page at ``src_uri`` (None if it is not one of ours)."""
        parts = src_uri.split("/")
        if src_uri == "index.md":
            return self.index_page()
        if src_uri == "categories/index.md":
            return self.categories_page()
        if src_uri == PATH_PAGE and has_learning_path(self.glossary):
            return self.path_page()
        if len(parts) == 3 and parts[2] == "index.md":
            if parts[0] == "terms" and parts[1] in self.glossary.terms:
                return self.term_page(parts[1])
            if parts[0] == "terms" and parts[1] in self.glossary.broken_files:
                return self.broken_page(parts[1])
            if parts[0] == "categories" and parts[1] in self.glossary.categories:
                return self.category_page(parts[1])
        return None

    def demo_files(self, tid: str) -> dict[str, bytes]:
        result = self.demos.get(tid)
        if result is None:
            return {}
        return {f"terms/{tid}/{name}": data for name, data in result.files.items()}

    def term_page(self, tid: str) -> str:
        g = self.glossary
        term = self.filled[tid]
        category = g.categories.get(term.category)
        members = g.members.get(term.category, [])
        problems = self.by_file.get(term.where, []) + self.placeholder_problems[tid]
        return self.env.get_template("term.md.j2").render(
            term=term, category=category, problems=problems,
            heading_name=midsentence(term.term, "\n".join(text for _, text in text_fields(term))),
            backlinks=g.backlinks.get(tid, []), next_up=g.next_up.get(tid, []),
            more_in_category=_neighbours(members, tid, MORE_IN_CATEGORY),
            more_count=len(members) - 1, demo=self.demos.get(tid),
            link=self.link, summary=self.summary)

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
            problems=g.problems + self.problems, link=self.link, summary=self.summary)

    def path_page(self) -> str:
        terms = self.glossary.terms
        prerequisites = {tid: [p for p in t.prerequisites if p in terms] for tid, t in terms.items()}
        stages = [sorted(stage, key=lambda t: (terms[t].term.casefold(), t))
                  for stage in learning_stages(self.glossary.learning_order, prerequisites)]
        return self.env.get_template("path.md.j2").render(
            stages=stages, count=len(terms),
            prerequisites=prerequisites, link=self.link, summary=self.summary)

    def categories_page(self) -> str:
        return self.env.get_template("categories.md.j2").render(
            categories=list(self.glossary.categories.values()), members=self.glossary.members)

    def category_page(self, cid: str) -> str:
        return self.env.get_template("category.md.j2").render(
            category=self.glossary.categories[cid], ids=self.glossary.members[cid],
            link=self.link, summary=self.summary)


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
