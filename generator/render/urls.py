"""Where every generated page and file lives, and how a page links to a term: the one place
that spells the site's URLs (``terms/<id>/`` is a stable URL other sites link to)."""

from __future__ import annotations

import functools
import posixpath

INDEX_PAGE = "index.md"
CATEGORIES_PAGE = "categories/index.md"
PATH_PAGE = "path/index.md"
SEARCH_PAGE = "search/index.md"  # with ``search: pagefind`` only
PAGEFIND = "pagefind"  # the folder Pagefind writes its index and UI into
STUDY_PAGE = "study/index.md"  # the study files: Anki decks and a CSV
STUDY_CSV = "study/terms.csv"
MAP_PAGE = "map/index.md"  # the concept map: the page, and the SVG it shows
MAP_SVG = "map/graph.svg"
MAP_COLOURS = 8  # categories take colours tm-c0..tm-c7 (termlab.css) in their order, then again


def study_deck(category: str | None = None) -> str:
    """The Anki deck of every term, or of one category's."""
    return f"study/categories/{category}.apkg" if category else "study/glossary.apkg"
ASSETS = "assets/termlab"
TERMS = "terms"


def term_url(tid: str) -> str:
    """A term's page, as a URL relative to the site root (``terms/dropout/``)."""
    return f"{TERMS}/{tid}/"


def term_page(tid: str) -> str:
    """A term page's source path (``terms/dropout/index.md``)."""
    return f"{TERMS}/{tid}/index.md"


def term_file(tid: str, name: str) -> str:
    """A file published beside a term's page (a figure, a model, the demo's source)."""
    return f"{TERMS}/{tid}/{name}"


def redirect_page(old_id: str) -> str:
    """The HTML page that sends a former id's URL on to the term."""
    return f"{TERMS}/{old_id}/index.html"


def category_page(cid: str) -> str:
    return f"categories/{cid}/index.md"


def is_term_page(src_uri: str) -> bool:
    """Term pages stay out of the navigation (a theme renders the whole nav into every page)."""
    return src_uri.startswith(f"{TERMS}/")


def parse(src_uri: str) -> tuple[str, str]:
    """``(kind, id)`` of a generated page's source path: ``("term", "dropout")``,
    ``("category", "ml")``, ``("index", "")``, ``("categories", "")``, ``("path", "")``;
    ``("", "")`` for any other path."""
    fixed = {INDEX_PAGE: "index", CATEGORIES_PAGE: "categories", PATH_PAGE: "path"}
    if src_uri in fixed:
        return fixed[src_uri], ""
    parts = src_uri.split("/")
    if len(parts) == 3 and parts[2] == "index.md" and parts[0] in (TERMS, "categories"):
        return ("term" if parts[0] == TERMS else "category"), parts[1]
    return "", ""


def term_link(tid: str, label: str, from_page: str) -> str:
    """A Markdown link from the page at ``from_page`` to a term's page, marked for previews
    (``attr_list`` adds the class and the term id). ``label`` must already be safe Markdown."""
    href = _relative(term_page(tid), posixpath.dirname(from_page))
    return f'[{label}]({href}){{ .termlab-term data-term="{tid}" }}'


@functools.lru_cache(maxsize=4096)
def _up(folder: str) -> tuple[str, ...]:
    return tuple(folder.split("/")) if folder else ()


def _relative(target: str, folder: str) -> str:
    """``posixpath.relpath(target, folder)`` for normalised site paths (no ``.``, ``..`` or
    leading ``/``), without its ``abspath`` calls: pages link to every neighbour, and at
    10,000 terms ``relpath`` alone cost seconds per build."""
    parts, base = target.split("/"), _up(folder)
    common = 0
    for a, b in zip(parts, base, strict=False):
        if a != b:
            break
        common += 1
    return "/".join([".."] * (len(base) - common) + parts[common:]) or "."
