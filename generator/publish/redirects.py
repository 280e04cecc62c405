"""Redirect pages so that former ids and aliases keep working as URLs forever."""

from __future__ import annotations

import html
import posixpath

from ..model import Glossary
from ..render import urls
from ..text.names import slug

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Redirecting to {title}</title>
<link rel="canonical" href="{target}"><meta name="robots" content="noindex">
<meta http-equiv="refresh" content="0; url={target}">
<script>location.replace("{target}" + location.hash)</script>
</head><body><p>This term has moved: <a href="{target}">{title}</a>.</p></body></html>
"""


def redirect_pages(glossary: Glossary, site_url: str = "") -> dict[str, bytes]:
    """``terms/<old>/index.html`` -> the term's page, for ``redirect_from`` and alias slugs."""
    pages: dict[str, bytes] = {}
    taken = set(glossary.terms) | set(glossary.broken_files)
    ordered = sorted(glossary.terms.values(), key=lambda t: t.id)
    # Former ids first: an explicit redirect wins over the slug of another term's alias.
    wanted = [(t, old) for t in ordered for old in t.redirect_from] + [
        (t, old) for t in ordered for old in dict.fromkeys([*map(slug, t.aliases), slug(t.term)])]
    for term, old in wanted:
        if not old or old in taken or urls.redirect_page(old) in pages:
            continue
        target = posixpath.relpath(urls.term_url(term.id), urls.term_url(old)) + "/"
        pages[urls.redirect_page(old)] = TEMPLATE.format(
            title=html.escape(term.term), target=html.escape(target)).encode()
    return pages
