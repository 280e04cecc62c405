"""The shared demo cache: a store at any fsspec URL (``s3://``, ``gs://``, ``file://``, read-only
``https://``), fronted by the local cache folder.

The cache has two backends behind one interface, ``EntryStore``: the local folder
(``cache.DemoCache``, where every entry a build reads lives) and ``FsspecStore`` (this module),
which the local folder fronts. In the store an entry is one object, named by its key (the
content address of everything the run depends on)::

    <url>/v1/<key[:2]>/<key>.entry    a JSON header line {"key", "files": [[name, size, sha256], ...]}
                                      then the files' bytes, one after the other

    <url>/v1/packs/<id>.pack          every entry one build asked for at once, in one object:
                                      a JSON header line {"keys": [[key, size], ...]}, then
                                      those entries' objects; <id> hashes the sorted keys
    <url>/v1/packs/HEAD               the name of the pack the last writing build asked for

One object per entry is one request per entry (a cold build of this glossary reads ~60); a
writer also leaves a pack of the entries its build asked for, so a reader whose build asks for
the same ones (the site as CI built it) gets them all in one request, and falls back to the
entries one by one for any the pack lacks or holds damaged. A reader may read the HEAD pack
before it knows its keys (``readahead``): likely the very entries its build will ask for.
A reader sees an object whole or not at all: an object store's put is atomic, and on a local
disk the object is written under a temporary name and renamed. Every file read is checked
against its size and hash: a torn or tampered entry is refused with a warning that names it and
the file, and its demo runs again (a writer then puts it right).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from .cache import DemoCache

log = logging.getLogger("termlab.cache")

LAYOUT = "v1"
HEAD = "packs/HEAD"  # names the pack the last writing build asked for
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

    def fetch_pack(self, keys: list[str]) -> dict[str, dict[str, bytes]]:
        """The intact entries of the pack of exactly these keys, if the store has one."""

    def has_pack(self, keys: list[str]) -> bool:
        """Whether the store has the pack of exactly these keys."""

    def put_pack(self, entries: dict[str, dict[str, bytes]]) -> None:
        """Store these entries as one pack (visible whole or not at all)."""

    def put_head(self, keys: list[str]) -> None:
        """Name the pack of these keys as the last writing build's."""

    def fetch_head(self) -> dict[str, dict[str, bytes]]:
        """The intact entries of the last writing build's pack."""


class CacheURLError(ValueError):
    """The cache URL cannot be used (unknown protocol, missing package, read-only for writes)."""


def check_url(url: str, write: bool = False) -> None:
    """A CacheURLError that says what to do if ``url`` cannot be used (for writing), found without
    importing its filesystem's package (s3fs alone takes half a second to import)."""
    import importlib.util

    try:
        import fsspec
        from fsspec.registry import known_implementations, registry
    except ImportError as exc:
        raise CacheURLError(f"cache_url {url!r} needs fsspec: pip install 'termlab[s3]'") from exc
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol not in fsspec.available_protocols():
        raise CacheURLError(f"cache_url {url!r}: unknown protocol {protocol!r}; use s3://, gs://, "
                            "file:// or https://")
    if write and protocol in READ_ONLY:
        raise CacheURLError(f"cache_url {url!r} is read-only (https): it cannot be written; "
                            "set cache_write: false, or write to s3://, gs:// or file://")
    known = known_implementations.get(protocol, {})
    package = known.get("class", "").split(".")[0]
    if protocol not in registry and package and importlib.util.find_spec(package) is None:
        raise CacheURLError(f"cache_url {url!r} needs a package fsspec could not import: "
                            f"{known.get('err') or package}")


def open_filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and root path for ``url``, or a CacheURLError that says what to do."""
    check_url(url)
    from fsspec.core import url_to_fs

    local = url.split("://", 1)[0] in ("file", "local") if "://" in url else True
    try:
        return url_to_fs(url, **({"auto_mkdir": True} if local else {}))
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
        """The objects of these keys that exist (their first ``end`` bytes)."""
        found = self._objects([self.path(k) for k in keys], end)
        return {k: data for k, data in zip(keys, found, strict=True) if data is not None}

    def _objects(self, paths: list[str], end: int | None = None) -> list[bytes | None]:
        """These objects (their first ``end`` bytes; None where missing), read concurrently
        where the filesystem can: one request each."""
        if not paths:
            return []
        try:
            found = self.fs.cat_ranges(paths, 0 if end else None, end, on_error="return")
        except (OSError, ValueError) as exc:
            log.warning("termlab: shared cache %s cannot be read (%s): its entries count as missing",
                        self.url, exc)
            return [None] * len(paths)
        return [data if isinstance(data, bytes) else None for data in found]

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

    def pack_path(self, keys: list[str]) -> str:
        return f"{self.root}/{LAYOUT}/packs/{hashlib.sha256(chr(10).join(sorted(keys)).encode()).hexdigest()}.pack"

    def fetch_pack(self, keys: list[str]) -> dict[str, dict[str, bytes]]:
        return self._read_pack(self.pack_path(keys))

    def put_head(self, keys: list[str]) -> None:
        """Name the pack of these keys as the one the last writing build asked for."""
        self._put({f"{self.root}/{LAYOUT}/{HEAD}": self.pack_path(keys).rsplit("/", 1)[1].encode()})

    def fetch_head(self) -> dict[str, dict[str, bytes]]:
        """The intact entries of the pack the last writing build asked for (a reader's best
        guess before it knows its own keys), or nothing."""
        name = self._objects([f"{self.root}/{LAYOUT}/{HEAD}"])[0]
        if not name or not re.fullmatch(rb"[0-9a-f]{64}\.pack", name):
            return {}
        return self._read_pack(f"{self.root}/{LAYOUT}/packs/{name.decode()}")

    def _read_pack(self, path: str) -> dict[str, dict[str, bytes]]:
        try:
            data = self.fs.cat_file(path)
        except (OSError, ValueError):
            return {}  # no pack (or unreadable): the entries come one by one
        head, _, body = data.partition(b"\n")
        try:
            listed = [(str(k), int(size)) for k, size in json.loads(head)["keys"]]
        except (ValueError, KeyError, TypeError):
            log.warning("termlab: shared cache pack %s is unreadable: its entries come one by one", path)
            return {}
        entries, at = {}, 0
        for key, size in listed:
            chunk, at = body[at:at + size], at + size
            try:
                entries[key] = unpack(key, chunk)
            except ValueError as exc:
                log.warning("termlab: shared cache entry %s in a pack: %s: taken from its own object instead",
                            key, exc)
        return entries

    def has_pack(self, keys: list[str]) -> bool:
        return self._objects([self.pack_path(keys)], end=1)[0] is not None

    def put_pack(self, entries: dict[str, dict[str, bytes]]) -> None:
        objects = [pack(key, files) for key, files in sorted(entries.items())]
        header = {"keys": [[key, len(obj)] for key, obj in zip(sorted(entries), objects, strict=True)]}
        self._put({self.pack_path(list(entries)): json.dumps(header).encode() + b"\n" + b"".join(objects)})

    def put_many(self, entries: dict[str, dict[str, bytes]]) -> None:
        self._put({self.path(key): pack(key, files) for key, files in entries.items()})

    def _put(self, objects: dict[str, bytes]) -> None:
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
        self.singly = 0  # of those, read one by one (not from a pack)
        self.pushed = 0
        self.asked: list[list[str]] = []  # each prefetch's keys: a writer packs them on close

    def close(self) -> None:
        """A writer leaves the pack of each set of entries a prefetch asked for, now that its
        runs are in (a set some of whose entries failed to appear stays unpacked)."""
        if not self.store.writable:
            return
        packed: list[set[str]] = []
        asked = sorted(self.asked, key=len, reverse=True)
        for keys in asked:
            if any(packed_keys >= set(keys) for packed_keys in packed):
                continue  # a bigger pack holds them all (the audit asks again for what the build did)
            packed.append(set(keys))
            entries = {key: self._files(key) for key in keys}
            if all(entries.values()) and not self.store.has_pack(keys):
                try:
                    self.store.put_pack(entries)
                except OSError as exc:
                    log.warning("termlab: shared cache %s: a pack could not be written (%s)",
                                getattr(self.store, "url", "store"), exc)
        if asked and self.store.has_pack(asked[0]):
            try:
                self.store.put_head(asked[0])
            except OSError as exc:
                log.warning("termlab: shared cache %s: its head could not be written (%s)",
                            getattr(self.store, "url", "store"), exc)
        self.asked.clear()

    def _files(self, key: str) -> dict[str, bytes]:
        entry = self.get(key)
        return {p.name: p.read_bytes() for p in sorted(entry.iterdir()) if p.is_file()} if entry else {}

    def prefetch(self, keys: Iterable[str]) -> None:
        """Bring the entries of ``keys`` missing locally from the store: their pack in one read
        if the store has one, else (and for what it lacks) one round of reads. When writable,
        also push those the local folder has and the store lacks (and the pack, on ``close``)."""
        keys = sorted(set(keys))
        missing = [k for k in keys if self.get(k) is None]
        if keys:
            self.asked.append(keys)
        start = time.monotonic()
        fetched = {k: v for k, v in self.store.fetch_pack(keys).items() if k in missing} if missing else {}
        alone = self.store.fetch([k for k in missing if k not in fetched])
        self.singly += len(alone)
        fetched.update(alone)
        self.install_all(fetched)
        if missing:
            log.info("termlab: shared cache: %d of %d entries missing here came from %s in %.2f s",
                     len(fetched), len(missing), getattr(self.store, "url", "the store"),
                     time.monotonic() - start)
        if self.store.writable:
            local = [k for k in keys if k not in missing]
            there = self.store.has(local)
            self._push([k for k in local if k not in there])

    def install_all(self, entries: dict[str, dict[str, bytes]]) -> None:
        """Put entries read from the store into the local folder (each whole or not at all)."""
        for key, files in entries.items():
            if self.get(key) is not None:
                continue
            scratch = self.scratch(key)
            for name, data in files.items():
                (scratch / name).write_bytes(data)
            self.install(key, scratch)
            self.fetched += 1

    def commit(self, key: str, scratch: Path, result: dict[str, Any]) -> Path:
        entry = super().commit(key, scratch, result)
        if self.store.writable:
            self._push([key])
        return entry

    def _push(self, keys: list[str]) -> None:
        entries = {key: files for key in keys if (files := self._files(key))}
        if not entries:
            return
        try:
            self.store.put_many(entries)
            self.pushed += len(entries)
        except OSError as exc:
            log.warning("termlab: shared cache %s: %d entries (%s) could not be written (%s); they stay "
                        "local", getattr(self.store, "url", "store"), len(entries), ", ".join(sorted(entries)),
                        exc)
