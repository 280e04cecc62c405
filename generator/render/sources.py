"""A demo's source on its term page, put in after the page is built.

A term page shows its demo's whole source, folded. Highlighted, the source is most of the
page's HTML (a ``<span>`` per token): highlighting it again on every rebuild, and walking it in
the search indexer, took about as long as the rest of the page. A builder that can splice (the
MkDocs plugin) gets a slot in the page's Markdown instead, highlights each source once with the
site's own Markdown settings, and fills the slots in the finished HTML, after search indexing
(so code stays out of the index). A builder that cannot (``termlab generate``, for other
engines) gets the fenced source, as before.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping

SLOT_MARK = 'class="termlab-source-slot"'  # a page without it has no slot to fill
# Markdown wraps an indented HTML line (the slot sits in a folded box) in a paragraph.
_SLOT = re.compile(r'(?:<p>)?<span class="termlab-source-slot" data-source="([0-9a-f]{64})"></span>(?:</p>)?')


def key(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def slot(source: str) -> str:
    """What the page's Markdown holds where the source goes."""
    return f'<span class="termlab-source-slot" data-source="{key(source)}"></span>'


def splice(html: str, sources: Mapping[str, str], highlight: Callable[[str], str]) -> str:
    """Fill each slot with its source (``sources``: key -> source text) as ``highlight``
    renders it. A slot whose source is not known is left empty."""
    def fill(m: re.Match) -> str:
        source = sources.get(m.group(1))
        return "" if source is None else highlight(source)

    return _SLOT.sub(fill, html)
