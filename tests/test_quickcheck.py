"""``termlab check`` after a few edits checks only those entries against the last check's snapshot
(``generator/read/quickcheck.py``): replayed random edits give exactly what a full check gives."""

from __future__ import annotations

import os
import random

import pytest
import yaml
from conftest import entry

from generator.adapters.cli import main
from generator.read import quickcheck
from generator.read.memo import memo_path

# Edits by how often they are tried: edits of one entry's own fields (checked by the snapshot)
# and edits that need the full check (names, unusable files, files added or removed).
KINDS = {"summary": 4, "related": 3, "unknown": 2, "prerequisite": 2, "category": 2, "link": 2,
         "see_also_self": 1, "alias": 1, "broken": 1, "add": 1, "remove": 1, "unchanged": 1}
NAMES = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Eta", "Theta"]


def _check(project, capsys, monkeypatch, cache) -> tuple[int, str, str]:
    monkeypatch.setenv("TERMLAB_CACHE_DIR", str(cache))
    code = main(["--root", str(project.root), "check"])
    out = capsys.readouterr()
    return code, out.out, out.err


def _write(path, data: dict) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a new stat even within one clock tick


def _edit(rnd: random.Random, project) -> str:
    """One random edit an author could make; returns its kind."""
    files = sorted(project.glossary.glob("[!_]*.yaml"))
    path = rnd.choice(files)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        data = yaml.safe_load(entry(path.stem.capitalize()))
    others = [n for n in NAMES if n.lower() != path.stem]
    kind = rnd.choices(list(KINDS), weights=list(KINDS.values()))[0]
    if kind == "summary":
        data["summary"] = f"Edited {rnd.random():.6f}."
    elif kind == "related":
        data["related"] = rnd.sample(others, rnd.randint(0, 3))
    elif kind == "unknown":
        data["related"] = [*data.get("related", []), "Nonexistent thing"]
    elif kind == "prerequisite":
        data["prerequisites"] = rnd.sample(others, rnd.randint(0, 2))
    elif kind == "category":
        data["category"] = rnd.choice(["machine-learning", "deep-learning", "no-such-category"])
    elif kind == "link":
        data["body"] = f"See [[{rnd.choice([*others, 'Nowhere'])}]] for more."
    elif kind == "alias":
        data["aliases"] = [rnd.choice(["alt", "other name", others[0]])]
    elif kind == "see_also_self":
        data["see_also"] = [data["term"]]
    elif kind == "broken":
        path.write_text("term: [unclosed\n")
        return kind
    elif kind == "add":
        missing = [n for n in NAMES if not (project.glossary / f"{n.lower()}.yaml").exists()]
        if missing:
            project.term(missing[0].lower(), missing[0])
        return kind
    elif kind == "remove":
        if len(files) > 3:
            path.unlink()
        return kind
    elif kind == "unchanged":
        return kind
    _write(path, data)
    return kind


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replayed_edits_match_a_full_check(project, capsys, monkeypatch, tmp_path, seed):
    for name in NAMES[:6]:
        project.term(name.lower(), name, related=[n for n in NAMES[:6] if n != name][:2])
    rnd = random.Random(seed)
    kept = tmp_path / "kept-cache"
    kinds = []
    quick = []  # edits the snapshot took (not a full check)
    real = quickcheck.quick

    def counting(last, *args):
        found = real(last, *args)
        if found is not None and found is not last:
            quick.append(kinds[-1])
        return found
    monkeypatch.setattr(quickcheck, "quick", counting)
    for step in range(40):
        kinds.append(_edit(rnd, project))
        fresh = tmp_path / f"fresh-{step}"
        assert _check(project, capsys, monkeypatch, kept) == _check(project, capsys, monkeypatch, fresh), \
            (step, kinds)
    assert {"summary", "unknown", "broken", "alias"} & set(kinds)
    assert len(quick) >= 5, kinds  # the quick path was taken, and agreed


def test_a_summary_edit_reads_only_that_entry(project, capsys, monkeypatch, tmp_path):
    for name in NAMES[:4]:
        project.term(name.lower(), name, prerequisites=["Alpha"] if name != "Alpha" else [])
    cache = tmp_path / "cache"
    assert _check(project, capsys, monkeypatch, cache)[0] == 0
    folder = memo_path(cache, project.glossary)
    path = project.glossary / "beta.yaml"
    _write(path, {**yaml.safe_load(path.read_text()), "summary": "Edited.", "related": ["Nobody"]})
    reads = []
    real = quickcheck.read_entry
    monkeypatch.setattr(quickcheck, "read_entry", lambda *a: reads.append(a[1]) or real(*a))
    found = quickcheck.quick(quickcheck.load(folder), project.glossary, project.demos, project.root)
    assert found is not None and found.quick and reads == ["glossary/beta.yaml"]
    (problem,) = found.all_problems()
    assert (problem.path, problem.field, problem.message) == (
        "glossary/beta.yaml", "related", "unknown term 'Nobody'")


def test_a_new_cycle_or_name_goes_back_to_the_full_check(project, capsys, monkeypatch, tmp_path):
    project.term("alpha", "Alpha")
    project.term("beta", "Beta", prerequisites=["Alpha"])
    cache = tmp_path / "cache"
    assert _check(project, capsys, monkeypatch, cache)[0] == 0
    folder = memo_path(cache, project.glossary)
    _write(project.glossary / "alpha.yaml", yaml.safe_load(entry("Alpha", prerequisites=["Beta"])))
    assert quickcheck.quick(quickcheck.load(folder), project.glossary, project.demos, project.root) is None
    code, _, err = _check(project, capsys, monkeypatch, cache)
    assert code == 1 and "prerequisites form a cycle" in err
    _write(project.glossary / "alpha.yaml", yaml.safe_load(entry("Alpha", aliases=["First"])))
    assert quickcheck.quick(quickcheck.load(folder), project.glossary, project.demos, project.root) is None


def test_a_torn_snapshot_is_not_trusted(project, capsys, monkeypatch, tmp_path):
    project.term("alpha", "Alpha", related=["Nobody"])
    cache = tmp_path / "cache"
    first = _check(project, capsys, monkeypatch, cache)
    snap = memo_path(cache, project.glossary) / quickcheck.SNAPSHOT
    snap.write_bytes(snap.read_bytes()[:50])
    assert _check(project, capsys, monkeypatch, cache) == first
    assert quickcheck.load(snap.parent) is not None  # written whole again by the full check
