"""``termlab check`` after a few edits, without reading the rest of a large glossary again.

A full check leaves a ``Snapshot`` beside the entry memo (``memo.py``): every entry file's stat,
the problems found in each file, and what checking one entry against the others needs (the
names index, the categories, the resolved prerequisites). The next check stats the files; when
only a few entries were edited, and nothing it cannot judge from one entry changed, it checks
just those against the snapshot (``quick``) and gives the same problems a full check would
(a test replays random edits against full checks). Anything else is left to the full check:
files added, removed or unusable, a name, alias, former id or stage edited, the categories or
learning-path files or the set of demo files changed, problems between entries standing, or a
prerequisite cycle appearing. Kept and replaced like the memo: one file, written atomically."""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ..model import Problem, Term
from ..text.names import lookup
from .load import CATEGORIES_FILE, PATH_FILE, Loaded, demo_names, entry_files, read_entry
from .resolve import find_cycles, term_references

SNAPSHOT = "check.pickle"
MOST = 1000  # more changed entries than this: the full check is as quick


@dataclass
class Snapshot:
    """What a full check leaves for the next one."""

    settings: tuple  # the categories and path files' stats, the demo files' names
    files: dict[str, tuple]  # entry file name -> stat key
    prefix: str  # the glossary folder, as problems name it
    sigs: dict[str, tuple]  # rel path -> what other entries depend on (see ``_sig``)
    problems: dict[str, list[Problem]]  # rel path (or other file) -> its problems
    names: dict[str, str]  # normalised name -> id
    categories: tuple[str, ...]
    prerequisites: dict[str, list[str]]  # id -> resolved prerequisite ids
    demos: dict[str, Path]  # rel path -> the demo file its entry names
    whole: bool  # no problem between entries, no stage: single entries can be checked again
    counts: tuple[int, int] = (0, 0)  # terms, categories
    quick: bool = field(default=False, compare=False)  # made by ``quick`` (for tests)

    def all_problems(self) -> list[Problem]:
        return sorted({p for found in self.problems.values() for p in found})


def _sig(term: Term) -> tuple:
    """What other entries' problems depend on: its names, former ids and stage."""
    return term.id, term.term, tuple(term.aliases), tuple(term.redirect_from), term.stage


def _stat(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _settings(glossary_dir: Path, demos_dir: Path) -> tuple:
    return (_stat(str(glossary_dir / CATEGORIES_FILE)), _stat(str(glossary_dir / PATH_FILE)),
            demo_names(demos_dir)[1])


def stats(glossary_dir: Path) -> dict[str, tuple]:
    """Every entry file's stat key (taken before a full check reads them)."""
    folder = str(glossary_dir)
    return {name: _stat(f"{folder}/{name}") for name in entry_files(glossary_dir)}


def snapshot(glossary_dir: Path, demos_dir: Path, prefix: str, loaded: Loaded,
             problems: list[Problem], kept: dict, files: dict[str, tuple] | None = None) -> Snapshot:
    """The snapshot of a full check (``kept``: what ``resolve.check`` kept). ``files``: the
    stats taken before the entries were read (a file edited while they were read is read
    again next time)."""
    by_path: dict[str, list[Problem]] = {}
    for p in problems:
        by_path.setdefault(p.path, []).append(p)
    terms = loaded.terms.values()
    return Snapshot(
        settings=_settings(glossary_dir, demos_dir), files=files or {}, prefix=prefix,
        sigs={t.where: _sig(t) for t in terms}, problems=by_path, names=kept["names"],
        categories=tuple(loaded.categories), prerequisites=kept["prerequisites"],
        demos={t.where: t.demo.path for t in terms if t.demo},
        whole=not kept["across"] and not loaded.stages and not any(t.stage for t in terms),
        counts=(len(loaded.terms), len(loaded.categories)))


def quick(kept: Snapshot | None, glossary_dir: Path, demos_dir: Path, root: Path) -> Snapshot | None:
    """The snapshot updated for the entries edited since it was taken, or None when a full
    check is needed (see the module's docstring)."""
    if kept is None or not glossary_dir.is_dir() or kept.settings != _settings(glossary_dir, demos_dir):
        return None
    files = stats(glossary_dir)
    if files.keys() != kept.files.keys():
        return None
    changed = [name for name, key in files.items() if kept.files[name] != key]
    if not changed:
        kept.quick = True
        return kept
    if len(changed) > MOST or not kept.whole:
        return None
    names = kept.names
    found: dict[str, str | None] = {}

    def find(name: str) -> str | None:
        if name not in found:
            found[name] = lookup(names, name)
        return found[name]

    @cache
    def all_names() -> list[str]:
        return sorted({n for sig in kept.sigs.values() for n in (sig[0], sig[1], *sig[2])})

    demos = demo_names(demos_dir)
    prerequisites = dict(kept.prerequisites)
    redone: dict[str, tuple[list[Problem], Term]] = {}
    for name in changed:
        rel = f"{kept.prefix}/{name}"
        if rel not in kept.sigs:
            return None
        term, problems, links = read_entry(f"{glossary_dir}/{name}", rel, demos_dir, demos, root)
        if term is None or _sig(term) != kept.sigs[rel]:
            return None
        more, resolved, _ = term_references(term, links, find, kept.categories, all_names)
        prerequisites[term.id] = resolved.get("prerequisites", term.prerequisites)
        redone[rel] = (problems + more, term)
    if find_cycles(prerequisites):
        return None
    by_path = dict(kept.problems)
    demo_of = dict(kept.demos)
    for rel, (problems, term) in redone.items():
        by_path.pop(rel, None)
        if problems:
            by_path[rel] = problems
        demo_of.pop(rel, None)
        if term.demo:
            demo_of[rel] = term.demo.path
    return Snapshot(kept.settings, files, kept.prefix, kept.sigs, by_path, names, kept.categories,
                    prerequisites, demo_of, True, kept.counts, quick=True)


def load(folder: Path) -> Snapshot | None:
    """The snapshot kept in ``folder``, or None (missing, torn or from other code)."""
    try:
        with open(folder / SNAPSHOT, "rb") as f:
            found = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError,
            ValueError):
        return None
    return found if isinstance(found, Snapshot) else None


def save(folder: Path, kept: Snapshot) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(kept, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, folder / SNAPSHOT)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
