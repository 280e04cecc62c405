"""A read-only shared cache read in a forked process, so that a build's wait for it overlaps
the build's own start instead of adding to it.

Opening the store means importing its filesystem (s3fs and its HTTP stack: about half a second
of CPU) and then reading the pack. Done in the build's process, both come before any page; a
thread would not help (the import holds the interpreter). So the cache forks one helper process
as soon as it is opened (while the build reads the glossary and computes the demos' keys on the
other core), the helper imports and opens the store at once, and ``prefetch`` hands it the keys:
it reads, verifies and installs the entries into the local folder exactly as ``SharedCache``
does (it is one), and sends back its counts and log lines, which are logged here."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from .cache import DemoCache
from .remote import FsspecStore, SharedCache, log

_STORE: FsspecStore | None = None  # the helper's store, opened once


def _open(url: str) -> None:
    """In the helper: import the filesystem and open the store."""
    global _STORE
    _STORE = FsspecStore(url)


def _collect() -> list[tuple[int, str]]:
    """What the helper logs, kept to be logged by the build (not by the helper's copy of its
    handlers)."""
    records: list[tuple[int, str]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append((record.levelno, record.getMessage()))

    log.handlers, log.propagate = [Collect()], False  # the helper's copy of the logger
    return records


def _head(directory: str) -> tuple[int, int, list[tuple[int, str]]]:
    """In the helper, before the build knows its keys: the entries of the last writing build's
    pack into the local folder."""
    records = _collect()
    assert _STORE is not None
    cache = SharedCache(Path(directory), _STORE)
    cache.install_all(_STORE.fetch_head())
    return cache.fetched, 0, records


def _prefetch(directory: str, keys: list[str]) -> tuple[int, int, list[tuple[int, str]]]:
    """In the helper: bring the missing entries into the local folder; the counts and what was
    logged."""
    records = _collect()
    assert _STORE is not None
    cache = SharedCache(Path(directory), _STORE)
    cache.prefetch(keys)
    return cache.fetched, cache.singly, records


# (url, cache folder) -> a helper started by ``early``, its store opened, the HEAD pack read
_early: dict[tuple[str, Path], tuple[ProcessPoolExecutor, Future, Future]] = {}


def early(url: str, directory: Path) -> None:
    """Start the helper for ``url`` and the cache folder ``directory`` now (an adapter calls
    this as soon as it knows them, before the build starts): it opens the store and reads the
    HEAD pack into the folder; the next ``ReadAheadCache`` for them takes it over."""
    if (url, directory) not in _early:
        helper = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
        _early[(url, directory)] = (helper, helper.submit(_open, url), helper.submit(_head, str(directory)))


def _nothing() -> tuple[int, int, list[tuple[int, str]]]:
    return 0, 0, []


class ReadAheadCache(SharedCache):
    """A ``SharedCache`` that only reads, through a forked helper (see the module docstring)."""

    def __init__(self, directory: Path, url: str):
        super().__init__(directory, None)  # type: ignore[arg-type]  # the helper holds the store
        self.url = url
        early(url, directory)
        self._helper, self._opened, self._head = _early.pop((url, directory))

    def prefetch(self, keys: Iterable[str]) -> None:
        keys = sorted(set(keys))
        if not keys or all(self.get(k) is not None for k in keys):
            return
        self._opened.result()  # a store that cannot be opened says why here
        for done in (self._head, self._helper.submit(_prefetch, str(self.directory), keys)):
            fetched, singly, records = done.result()
            self.fetched += fetched
            self.singly += singly
            for level, message in records:
                log.log(level, "%s", message)
        self._head = self._helper.submit(_nothing)

    def commit(self, key: str, scratch: Path, result: dict) -> Path:
        return super(SharedCache, self).commit(key, scratch, result)  # a reader pushes nothing

    def close(self) -> None:
        self._helper.shutdown(wait=False, cancel_futures=True)


def open_cache(directory: Path, url: str = "", write: bool = False) -> DemoCache:
    """The local cache folder, fronting the shared store at ``url`` if one is given (read-only:
    read through a helper, see above)."""
    if not url:
        return DemoCache(directory)
    if not write:
        return ReadAheadCache(directory, url)
    return SharedCache(directory, FsspecStore(url, write))
