"""Entries as last read, kept on disk by their files' stat, so that ``termlab check`` on a large
glossary reads again only the files that changed.

A folder per glossary and termlab version in the cache folder; its name holds a digest of the
code that reads and checks entries, so a termlab upgrade or edit starts a fresh memo instead of
trusting what older code concluded. Entries are spread over ``SHARDS`` files by their path, and
only the files holding a changed entry are written again, each atomically (a killed check
leaves every file whole, old or new). A term is kept slim (``slim``): its own text was checked
when it was read, and its problems and links are kept beside it."""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import shutil
import sys
import tempfile
import zlib
from dataclasses import replace
from functools import cache
from pathlib import Path

_CODE = ("read", "text", "model.py")  # what decides an entry's Term, problems and links
SHARDS = 64
# What ``termlab check`` needs of a term once its own text is checked: names, references, places.
# The rest is left out of the memo (a third of the objects to load).
_TEXT = {"summary": "", "body": "", "example": "", "analogy": "", "text": "", "key_concepts": [],
         "tags": [], "levels": {}, "questions": [], "references": []}
_NO_SOURCE = Path()


def slim(term):
    """The term as ``termlab check`` keeps it, without its own text (None stays None)."""
    return None if term is None else replace(term, source=_NO_SOURCE, **_TEXT)


def _shard(rel: str) -> int:
    return zlib.crc32(rel.encode()) % SHARDS


class EntryMemo(dict):
    """``rel path -> (stat key, slim Term, problems, links)``; knows which shards changed."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: set[int] = set()

    def __setitem__(self, key, value) -> None:
        self.changed.add(_shard(key))
        stat, term, problems, links = value
        super().__setitem__(key, (stat, slim(term), problems, links))

    def __delitem__(self, key) -> None:
        self.changed.add(_shard(key))
        super().__delitem__(key)


@cache
def code_digest() -> str:
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(sys.version.encode())
    for part in _CODE:
        files = [package / part] if part.endswith(".py") else sorted(
            p for p in (package / part).rglob("*") if p.suffix in (".py", ".json") and p.is_file())
        for f in files:
            h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:20]


def memo_path(cache_dir: Path, glossary_dir: Path) -> Path:
    where = hashlib.sha256(str(glossary_dir.resolve()).encode()).hexdigest()[:12]
    return cache_dir / "entries" / f"{where}-{code_digest()}"


def load_memo(folder: Path) -> EntryMemo:
    """The memo kept in ``folder``; a missing, torn or foreign shard is read as empty (its
    entries are read again)."""
    memo = EntryMemo()
    collecting = gc.isenabled()
    gc.disable()  # the memo is acyclic: collections while it loads only re-scan it
    try:
        for k in range(SHARDS):
            try:
                with open(folder / f"{k:02d}.pickle", "rb") as f:
                    dict.update(memo, pickle.load(f))
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError,
                    ValueError):
                continue
    finally:
        if collecting:
            gc.enable()
    return memo


def save_memo(folder: Path, memo: EntryMemo) -> None:
    """Write the shards holding a changed entry; memos of other termlab versions of the same
    glossary are removed."""
    if not memo.changed and folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    shards: dict[int, dict] = {k: {} for k in (memo.changed if folder.is_dir() else range(SHARDS))}
    for rel, value in memo.items():
        if (k := _shard(rel)) in shards:
            shards[k][rel] = value
    for k, entries in shards.items():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(entries, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, folder / f"{k:02d}.pickle")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    memo.changed = set()
    for old in folder.parent.glob(folder.name.split("-")[0] + "-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
