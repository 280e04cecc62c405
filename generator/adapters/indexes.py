"""Term indexes the Markdown extension links against: a resolved glossary or another site."""

from __future__ import annotations

import json
from pathlib import Path

from ..model import Glossary, TermRef
from ..render import urls
from ..text.names import lookup, normalize, singulars


class GlossaryIndex:
    """Resolves names against a loaded glossary."""

    def __init__(self, glossary: Glossary):
        self.glossary = glossary
        self._names = sorted({t.term for t in glossary.terms.values()} |
                             {a for t in glossary.terms.values() for a in t.aliases})

    @classmethod
    def from_dir(cls, glossary_dir: Path) -> GlossaryIndex:
        from ..build import load_and_resolve

        return cls(load_and_resolve(glossary_dir, glossary_dir.parent / "demos"))

    def find(self, name: str) -> TermRef | None:
        tid = lookup(self.glossary.names, name)
        term = self.glossary.terms.get(tid) if tid else None
        if term is None:
            return TermRef(tid, tid, urls.term_url(tid)) if tid else None
        return TermRef(term.id, term.term, urls.term_url(term.id))

    def all_names(self) -> list[str]:
        return self._names


class SiteIndex:
    """Resolves names against another termlab site's terms.json or objects.inv."""

    def __init__(self, entries: list[tuple[str, str, str]], base_url: str, index_url: str = ""):
        self.base_url = base_url.rstrip("/") + "/" if base_url else ""
        self.index_url = index_url
        self.names: dict[str, TermRef] = {}
        for name, tid, url in entries:  # (name or alias, id, url relative to the site)
            self.names.setdefault(normalize(name), TermRef(tid, name, url))
        self._all = sorted({name for name, _, _ in entries})

    @classmethod
    def load(cls, location: str, base_url: str = "") -> SiteIndex:
        """Read ``location`` (a path or http(s) URL of terms.json or objects.inv)."""
        data = _read(location)
        base = base_url or (location.rsplit("/", 1)[0] + "/" if "://" in location else "")
        if location.endswith(".inv") or data.startswith(b"# Sphinx inventory"):
            from ..publish.inventory import read_inventory

            entries = [(name, uri.strip("/").split("/")[-1], uri)
                       for name, role, uri, _ in read_inventory(data) if role == "std:term"]
            return cls(entries, base, base + "terms.json" if base else "")
        index = json.loads(data)
        if index.get("format") != "termlab-terms":
            raise ValueError(f"{location} is not a termlab terms.json")
        base = base_url or index.get("site_url") or base
        entries = []
        for term in index["terms"]:
            for name in [term["id"], term["name"], *term["aliases"]]:
                entries.append((name, term["id"], term["url"]))
        json_url = location if "://" in location else (base + "terms.json" if base else "")
        return cls(entries, base, json_url)

    def find(self, name: str) -> TermRef | None:
        key = normalize(name)
        ref = self.names.get(key)
        if ref is None:
            ref = next((self.names[k] for k in singulars(key) if k in self.names), None)
        return ref

    def all_names(self) -> list[str]:
        return self._all


def _read(location: str) -> bytes:
    if location.startswith(("http://", "https://")):
        from urllib.request import urlopen

        with urlopen(location, timeout=30) as response:  # noqa: S310 - http(s) only
            return response.read()
    return Path(location).read_bytes()


def load_index(glossary: str, index: str, base_url: str = ""):
    """The index named by the extension's configuration."""
    if glossary:
        return GlossaryIndex.from_dir(Path(glossary))
    if index:
        return SiteIndex.load(index, base_url)
    raise ValueError("termlab extension: set `glossary:` (a glossary folder) or `index:` "
                     "(another termlab site's terms.json or objects.inv)")
