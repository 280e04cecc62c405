"""``search/names.json``: what the search box's did-you-mean and result summaries need, and no
more (name, aliases, page and summary of each term; ~250 bytes a term)."""

from __future__ import annotations

import json
from typing import Any

NAMES_PATH = "search/names.json"


def search_names(index: dict[str, Any]) -> bytes:
    """From the ``terms.json`` index: one entry per term, in id order."""
    terms = [{"name": t["name"], "aliases": t["aliases"], "url": t["url"], "summary": t["summary"]}
             for t in index["terms"]]
    return json.dumps({"terms": terms}, ensure_ascii=False, separators=(",", ":")).encode()
