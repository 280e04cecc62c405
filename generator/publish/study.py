"""Study files made from ``terms.json``'s index: an Anki deck (genanki) of the whole glossary and
one per category, and a CSV of the same notes. One note per term: its name, summary and
plain-words explanation (plain text, HTML-escaped: Anki shows fields as HTML) and its page.

The files are deterministic: fixed note, deck and model ids (from the site's title and the term
ids), a fixed timestamp, and zip entries with a fixed date."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import sqlite3
import zipfile
from functools import lru_cache
from typing import Any

from ..render import urls

_EPOCH = 946684800  # 2000-01-01: a fixed timestamp for the notes (no build time in any file)
_FIELDS = ["Term", "Summary", "In plain words", "Page"]
_FRONT = '<div class="term">{{Term}}</div>'
_BACK = ('{{FrontSide}}<hr id="answer"><p>{{Summary}}</p>{{#In plain words}}<p>{{In plain words}}</p>'
         '{{/In plain words}}<p>{{Page}}</p>')


def _id(*parts: str) -> int:
    """A stable id in genanki's range (positive, below 2**31)."""
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:4], "big") >> 1 | 1 << 20


def study_paths(index: dict[str, Any]) -> dict[str, Any]:
    """What ``terms.json`` lists under ``study``: every file's path, relative to the site root."""
    categories = sorted({t["category"]["id"] for t in index["terms"]})
    return {"anki": urls.study_deck(), "anki_by_category": {c: urls.study_deck(c) for c in categories},
            "csv": urls.STUDY_CSV}


def _page(url: str, site_url: str) -> str:
    url = (site_url.rstrip("/") + "/" + url) if site_url else url
    label = "Read the page" if site_url else f"Page: {url} (relative to the site)"
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>' if site_url else html.escape(label)


def _package(title: str, name: str, terms: list[dict[str, Any]], site_url: str) -> bytes:
    """One deck's ``.apkg``, built again only when what its notes show changed (serve rebuilds
    every few seconds; genanki takes ~40 ms a deck)."""
    notes = tuple((t["id"], t["name"], t["summary"], t.get("levels", {}).get("basic", ""), t["url"]) for t in terms)
    return _built(title, name, notes, site_url)


@lru_cache(maxsize=64)
def _built(title: str, name: str, notes: tuple[tuple[str, ...], ...], site_url: str) -> bytes:
    return _apkg(_deck(title, name, notes, site_url))


def _deck(title: str, name: str, notes: tuple[tuple[str, ...], ...], site_url: str):
    import genanki

    model = genanki.Model(_id(title, "model"), f"{title} term",
                          fields=[{"name": f} for f in _FIELDS],
                          templates=[{"name": "Term → meaning", "qfmt": _FRONT, "afmt": _BACK}])
    deck = genanki.Deck(_id(title, "deck", name), name)
    for tid, term, summary, basic, url in notes:
        deck.add_note(genanki.Note(
            model=model, guid=genanki.guid_for(title, tid),
            fields=[html.escape(term), html.escape(summary), html.escape(basic), _page(url, site_url)]))
    return deck


def _apkg(deck) -> bytes:
    import genanki

    # In memory, then serialized: the same database file, without a disk file synced after
    # each of the schema's statements (~0.2 s a deck).
    connection = sqlite3.connect(":memory:")
    try:
        genanki.Package(deck).write_to_db(connection.cursor(), _EPOCH, iter(range(_EPOCH * 1000, 2**62)))
        connection.commit()
        collection = connection.serialize()
    finally:
        connection.close()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in (("collection.anki2", collection), ("media", b"{}")):
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def study_files(index: dict[str, Any], title: str, category_names: dict[str, str]) -> dict[str, bytes]:
    """The decks and the CSV, by site-relative path."""
    terms = index["terms"]
    site_url = index.get("site_url") or ""
    files = {urls.study_deck(): _package(title, title, terms, site_url)}
    for cid, path in study_paths(index)["anki_by_category"].items():
        members = [t for t in terms if t["category"]["id"] == cid]
        name = f"{title}::{category_names.get(cid, cid)}"
        files[path] = _package(title, name, members, site_url)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["id", "term", "category", "summary", "in plain words", "url"])
    for t in terms:
        writer.writerow([t["id"], t["name"], t["category"]["name"], t["summary"],
                         t.get("levels", {}).get("basic", ""), t["url"]])
    files[urls.STUDY_CSV] = text.getvalue().encode("utf-8")
    return files
