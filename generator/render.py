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
from .resolve import locate, text_fields
from .safety import attribute_text, escape_markdown_html, escape_text, title_text
from .textscan import PLACEHOLDER, iter_placeholders

MORE_IN_CATEGORY = 8


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
    env.filters["midsentence"] = midsentence
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


def midsentence(name: str) -> str:
    """A name as it reads inside a sentence: ``Weight decay`` -> ``weight decay``, ``L2`` kept."""
    if len(name) > 1 and name[0].isupper() and name[1].islower():
        return name[0].lower() + name[1:]
    return name


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
                                    path[0]))
    return problems


def render_site(glossary: Glossary, demos: Mapping[str, Any] | None = None,
                title: str = "termlab", description: str = "") -> Site:
    """All generated pages. ``demos`` maps term id -> DemoResult (or None if not run)."""
    demos = demos or {}
    env = environment()
    site = Site()
    terms = glossary.terms
    summaries: dict[str, str] = {}

    def link(tid: str) -> str:
        name = terms[tid].term if tid in terms else tid
        return f"[[{tid}|{escape_text(name)}]]"

    def summary(tid: str) -> str:
        return summaries.get(tid, "")

    by_file: dict[str, list[Problem]] = {}
    for p in glossary.problems:
        by_file.setdefault(p.path, []).append(p)

    filled: dict[str, Term] = {}
    for tid, term in terms.items():
        result = demos.get(tid)
        metrics = result.formatted_metrics() if result is not None and not result.error else None
        extra = placeholder_problems(term, metrics)
        if extra:
            site.problems.extend(extra)
            by_file.setdefault(term.where, []).extend(extra)
        filled[tid] = _with_metrics(term, metrics or {})
        summaries[tid] = filled[tid].summary.strip()

    term_tpl = env.get_template("term.md.j2")
    for tid, term in filled.items():
        category = glossary.categories.get(term.category)
        members = glossary.members.get(term.category, [])
        others = _neighbours(members, tid, MORE_IN_CATEGORY)
        site.pages[f"terms/{tid}/index.md"] = term_tpl.render(
            term=term, category=category, problems=by_file.get(term.where, []),
            backlinks=glossary.backlinks.get(tid, []), next_up=glossary.next_up.get(tid, []),
            more_in_category=others, more_count=len(members) - 1,
            demo=demos.get(tid), link=link, summary=summary)
        result = demos.get(tid)
        if result is not None:
            site.files.update({f"terms/{tid}/{name}": data for name, data in result.files.items()})

    broken_tpl = env.get_template("broken.md.j2")
    for stem, problems in glossary.broken_files.items():
        site.pages[f"terms/{stem}/index.md"] = broken_tpl.render(stem=stem, problems=problems)

    letters: dict[str, list[str]] = {}
    for tid in sorted(terms, key=lambda t: (terms[t].term.casefold(), t)):
        letters.setdefault(initial(terms[tid].term), []).append(tid)
    site.pages["index.md"] = env.get_template("index.md.j2").render(
        title=title, description=description or "An ML glossary where every term runs.",
        count=len(terms), categories=glossary.categories, letters=sorted(letters.items()),
        problems=glossary.problems + site.problems, link=link, summary=summary)
    site.pages["categories/index.md"] = env.get_template("categories.md.j2").render(
        categories=list(glossary.categories.values()), members=glossary.members)
    cat_tpl = env.get_template("category.md.j2")
    for cid, category in glossary.categories.items():
        site.pages[f"categories/{cid}/index.md"] = cat_tpl.render(
            category=category, ids=glossary.members[cid], link=link, summary=summary)
    return site


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
        key_concepts=[fill_metrics(k, metrics) for k in term.key_concepts],
        questions=[Question(fill_metrics(q.q, metrics), fill_metrics(q.a, metrics))
                   for q in term.questions],
    )
