"""Partial rebuilds under ``mkdocs serve --dirty``: only the generated pages whose Markdown
changed since the last build are read and rendered again; the rest stay as they are.

MkDocs' dirty mode skips a page when ``File.is_modified()`` is false; for files on disk that
compares modification times. termlab's pages are generated, so "modified" means: its Markdown
differs (by hash) from what the last build rendered. Anything that every page shows — the
nav, the set of pages, the names that ``[[links]]`` resolve to, the config — changing forces
a full rebuild. Hand-written pages are always rebuilt (few, and their ``[[links]]`` show term
names). The search index would only hold the rebuilt pages (and Material's own dirty merge
assumes one page and reorders), so it is put back together here, page by page in build order:
the partial build's index is the full build's, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

from jinja2.bccache import Bucket, BytecodeCache
from mkdocs.structure.files import File


class GeneratedPage(File):
    """A generated page or file that knows whether its content changed since the last build."""

    modified = True

    def is_modified(self) -> bool:
        return self.modified


class MemoryBytecodeCache(BytecodeCache):
    """Compiled theme templates kept across serve rebuilds (Jinja checks each template's
    source checksum, so an edited template is compiled again)."""

    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.store[bucket.key] = bucket.bytecode_to_string()


def _always_modified() -> bool:
    return True


def digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()


class PartialRebuilds:
    """What the last build rendered (page hashes, search entries by page) and the plan for
    the next: which generated pages to build again."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the last build: the next one builds everything."""
        self.hashes: dict[str, str] = {}  # src_uri -> hash of the Markdown it was built from
        self.data: dict[str, str] = {}  # src_uri -> hash of a generated file's bytes
        self.site_hash = ""
        self.search: dict[str, list[dict]] = {}  # page url -> its search entries
        self.pending: dict[str, str] = {}  # this build's hashes, kept once it succeeds
        self.built: set[str] = set()  # page urls rendered in this build
        self.full = True
        self.written: set[str] = set()  # every generated file of the last build
        self.writing: set[str] = set()  # and of this one

    def plan(self, pages: dict[str, GeneratedPage], contents: dict[str, str], site_hash: str,
             hand_written: Iterable[File], data: dict[str, tuple[GeneratedPage, bytes]]) -> list[str]:
        """Mark which generated pages changed; returns those that will be built. ``data``: the
        other generated files (data files, assets), written again only when changed."""
        self.pending = {src: digest(text) for src, text in contents.items()}
        self.full = site_hash != self.site_hash or set(self.pending) != set(self.hashes)
        self.writing = set(pages) | set(data)
        fresh = {src: digest(content) for src, (_, content) in data.items()}
        for src, (file, _) in data.items():
            file.modified = self.full or self.data.get(src) != fresh[src]
        self.data = fresh
        self.site_hash = site_hash
        self.built = set()
        for src, file in pages.items():
            file.modified = self.full or self.hashes.get(src) != self.pending[src]
        for file in hand_written:
            file.is_modified = _always_modified  # type: ignore[method-assign]
        return sorted(src for src, f in pages.items() if f.modified)

    def page_built(self, url: str) -> None:
        self.built.add(url)

    def settled(self, src_uri: str, markdown: str) -> None:
        """The page was built from this Markdown instead (its demo finished meanwhile): the
        next build, with the demo cached, renders this, and need not build it again."""
        self.pending[src_uri] = digest(markdown)

    def wrote(self, src_uris: Iterable[str]) -> None:
        """Files written after the plan (a late demo's figures, terms.json again)."""
        self.writing.update(src_uris)

    def merge_search(self, search_plugin: Any, doc_pages: Iterable[File]) -> None:
        """Before the search plugin writes its index: this build's entries for the pages it
        rendered, the last build's for the others, in the order a full build adds them."""
        index = getattr(search_plugin, "search_index", None)
        if index is None:
            return
        fresh: dict[str, list[dict]] = {}
        for entry in index.entries:
            fresh.setdefault(entry["location"].split("#", 1)[0], []).append(entry)
        search: dict[str, list[dict]] = {}
        for file in doc_pages:
            url = file.page.url if file.page is not None else file.url  # home: "" (its file: "./")
            search[url] = fresh.get(url, []) if url in self.built else self.search.get(url, [])
        self.search = search
        index.entries = [e for entries in search.values() for e in entries]
        search_plugin.search_index_prev = None  # its own dirty merge assumes a single page

    def commit(self, config: Any) -> None:
        """The build succeeded: remember it; remove generated files it no longer makes (a
        dirty build does not clean the site folder)."""
        self.hashes = self.pending
        gone, self.written = self.written - self.writing, self.writing
        for src in gone:
            dest = File.generated(config, src, content="").abs_dest_path
            if os.path.isfile(dest):
                os.remove(dest)
