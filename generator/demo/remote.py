"""The shared demo cache: a store at any fsspec URL (``s3://``, ``gs://``, ``file://``, read-only
``https://``), fronted by the local cache folder.

The cache has two backends behind one interface, ``EntryStore``: the local folder
(``cache.DemoCache``, where every entry a build reads lives) and ``FsspecStore`` (this module),
which the local folder fronts. In the store an entry is one object, named by its key (the
content address of everything the run depends on)::

    <url>/v1/<key[:2]>/<key>.entry    a JSON header line {"key", "files": [[name, size, sha256], ...]}
                                      then the files' bytes, one after the other

One object per entry is one request per entry (a cold build of this glossary reads ~60), and
a reader sees an entry whole or not at all: an object store's put is atomic, and on a local
disk the object is written under a temporary name and renamed. Every file read is checked
against its size and hash: a torn or tampered entry is refused with a warning that names it
and the file, and its demo runs again (a writer then puts it right).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from .cache import DemoCache

log = logging.getLogger("termlab.cache")

LAYOUT = "v1"
READ_ONLY = ("http", "https")  # fsspec protocols that cannot be written


class EntryStore(Protocol):
    """A place entries live: read whole and verified, written whole."""

    writable: bool

    def fetch(self, keys: Iterable[str]) -> dict[str, dict[str, bytes]]:
        """The files of each entry the store has whole and intact, by key."""

    def has(self, keys: Iterable[str]) -> set[str]:
        """Which of these keys the store has an entry for (without reading it)."""

    def put_many(self, entries: dict[str, dict[str, bytes]]) -> None:
        """Store entries (files by key); each becomes visible to readers whole or not at all."""


class CacheURLError(ValueError):
    """The cache URL cannot be used (unknown protocol, missing package, read-only for writes)."""


def open_filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and root path for ``url``, or a CacheURLError that says what to do."""
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError as exc:
        raise CacheURLError(f"cache_url {url!r} needs fsspec: pip install 'termlab[s3]'") from exc
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol not in fsspec.available_protocols():
        raise CacheURLError(f"cache_url {url!r}: unknown protocol {protocol!r}; use s3://, gs://, "
                            "file:// or https://")
    try:
        return url_to_fs(url, **({"auto_mkdir": True} if protocol in ("file", "local") else {}))
    except ImportError as exc:
        raise CacheURLError(f"cache_url {url!r} needs a package fsspec could not import: {exc}") from exc


class FsspecStore:
    """The shared store at an fsspec URL (see the module's docstring for its layout)."""

    def __init__(self, url: str, write: bool = False):
        self.url = url
        self.fs, root = open_filesystem(url)
        self.root = root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        if write and set(protocols) & set(READ_ONLY):
            raise CacheURLError(f"cache_url {url!r} is read-only (https): it cannot be written; "
                                "set cache_write: false, or write to s3://, gs:// or file://")
        self.local_disk = bool({"file", "local"} & set(protocols))
        self.writable = write

    def path(self, key: str) -> str:
        return f"{self.root}/{LAYOUT}/{key[:2]}/{key}.entry"

    def _read(self, keys: list[str], end: int | None = None) -> dict[str, bytes]:
        """The objects of these keys that exist (their first ``end`` bytes), read concurrently
        where the filesystem can: one request each."""
        if not keys:
            return {}
        try:
            found = self.fs.cat_ranges([self.path(k) for k in keys], 0 if end else None, end, on_error="return")
        except (OSError, ValueError) as exc:
            log.warning("termlab: shared cache %s cannot be read (%s): its entries count as missing",
                        self.url, exc)
            return {}
        return {k: data for k, data in zip(keys, found, strict=True) if isinstance(data, bytes)}

    def has(self, keys: Iterable[str]) -> set[str]:
        return set(self._read(list(keys), end=1))

    def fetch(self, keys: Iterable[str]) -> dict[str, dict[str, bytes]]:
        entries = {}
        for key, data in self._read(list(keys)).items():
            try:
                entries[key] = unpack(key, data)
            except ValueError as exc:
                log.warning("termlab: shared cache entry %s: %s: entry refused; the demo runs again", key, exc)
        return entries

    def put_many(self, entries: dict[str, dict[str, bytes]]) -> None:
        objects = {self.path(key): pack(key, files) for key, files in entries.items()}
        if not self.local_disk:
            self.fs.pipe(objects)  # an object store's put is atomic
            return
        for path, data in objects.items():  # a local disk: a temporary name, then a rename
            tmp = f"{path}.{hashlib.sha256(data).hexdigest()[:12]}.tmp"
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, path)


def pack(key: str, files: dict[str, bytes]) -> bytes:
    """One entry as one object: a JSON header line, then the files' bytes in its order."""
    names = sorted(files)
    header = {"key": key, "files": [[n, len(files[n]), hashlib.sha256(files[n]).hexdigest()] for n in names]}
    return json.dumps(header, sort_keys=True).encode() + b"\n" + b"".join(files[n] for n in names)


def unpack(key: str, data: bytes) -> dict[str, bytes]:
    """An entry's files, each checked against its size and hash; ValueError says what is wrong."""
    head, sep, body = data.partition(b"\n")
    try:
        header = json.loads(head)
        listed = [(str(n), int(size), str(digest)) for n, size, digest in header["files"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"its header is unreadable (torn or not a termlab entry: {exc})") from None
    if not sep or header.get("key") != key:
        raise ValueError("its header names another entry" if sep else "it has no header")
    total = sum(size for _, size, _ in listed)
    if len(body) != total:
        raise ValueError(f"it holds {len(body)} bytes of files where its header lists {total} (torn)")
    files, at = {}, 0
    for name, size, digest in listed:
        chunk = body[at:at + size]
        at += size
        if "/" in name or name.startswith(".") or not name:
            raise ValueError(f"file {name!r} has an unsafe name")
        if hashlib.sha256(chunk).hexdigest() != digest:
            raise ValueError(f"file {name} does not match its hash (tampered with or corrupted)")
        files[name] = chunk
    return files


class SharedCache(DemoCache):
    """The local cache folder in front of a shared store: reads come from the local folder, which
    ``prefetch`` fills from the store (verified); runs are pushed to the store when writable."""

    def __init__(self, directory: Path, store: EntryStore):
        super().__init__(directory)
        self.store = store
        self.fetched = 0  # entries taken from the store (the bench and tests read this)
        self.pushed = 0

    def prefetch(self, keys: Iterable[str]) -> None:
        """Bring the entries of ``keys`` missing locally from the store, in one round of reads.
        When writable, also push those the local folder has and the store lacks."""
        keys = sorted(set(keys))
        missing = [k for k in keys if self.get(k) is None]
        start = time.monotonic()
        fetched = self.store.fetch(missing)
        for key, files in fetched.items():
            scratch = self.scratch(key)
            for name, data in files.items():
                (scratch / name).write_bytes(data)
            self.install(key, scratch)
        self.fetched += len(fetched)
        if missing:
            log.info("termlab: shared cache: %d of %d entries missing here came from %s in %.2f s",
                     len(fetched), len(missing), getattr(self.store, "url", "the store"),
                     time.monotonic() - start)
        if self.store.writable:
            local = [k for k in keys if k not in missing]
            there = self.store.has(local)
            self._push([k for k in local if k not in there])

    def commit(self, key: str, scratch: Path, result: dict[str, Any]) -> Path:
        entry = super().commit(key, scratch, result)
        if self.store.writable:
            self._push([key])
        return entry

    def _push(self, keys: list[str]) -> None:
        entries = {}
        for key in keys:
            entry = self.get(key)
            if entry is not None:
                entries[key] = {p.name: p.read_bytes() for p in sorted(entry.iterdir()) if p.is_file()}
        if not entries:
            return
        try:
            self.store.put_many(entries)
            self.pushed += len(entries)
        except OSError as exc:
            log.warning("termlab: shared cache %s: %d entries (%s) could not be written (%s); they stay "
                        "local", getattr(self.store, "url", "store"), len(entries), ", ".join(sorted(entries)),
                        exc)


def open_cache(directory: Path, url: str = "", write: bool = False) -> DemoCache:
    """The local cache folder, fronting the shared store at ``url`` if one is given."""
    if not url:
        return DemoCache(directory)
    return SharedCache(directory, FsspecStore(url, write))
