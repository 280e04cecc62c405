"""Property tests: whatever an author writes, the loader and resolver answer with the
project's own located problems, never an unhandled exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from conftest import CATEGORIES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.build import load_and_resolve
from generator.model import Glossary, Problem

FIELDS = ["term", "summary", "body", "category", "aliases", "tags", "related", "see_also",
          "prerequisites", "demo", "references", "key_concepts", "example", "analogy", "questions",
          "levels", "basic", "formal", "redirect_from", "title", "authors", "year", "url", "venue",
          "q", "a", "name", "timeout"]
NAMES = ["a", "b", "A", "c", "machine-learning", "deep-learning", "x y", "bs", "B s", "[[a]]", ""]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.sampled_from(NAMES), st.text(max_size=40))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)), max_leaves=25)
entries = st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS))
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def check(files: dict[str, bytes]) -> Glossary:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "glossary").mkdir()
        (root / "demos").mkdir()
        (root / "glossary" / "_categories.yaml").write_text(CATEGORIES)
        for name, data in files.items():
            (root / "glossary" / name).write_bytes(data)
        glossary = load_and_resolve(root / "glossary", root / "demos", root)
    for problem in glossary.problems:
        assert isinstance(problem, Problem)
        assert problem.path.startswith("glossary/") and problem.message
        assert "Traceback" not in problem.message
    return glossary


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data):
    check({"a.yaml": data})


@SETTINGS
@given(st.lists(st.sampled_from(list("ab :-[]{}&*!|>#'\"\n\t\\%@`,?\u00e9") +
                                ["term", "summary", "related", "\n  - ", ": "]), max_size=80))
def test_yaml_ish_text(pieces):
    check({"a.yaml": "".join(pieces).encode("utf-8")})


@SETTINGS
@given(st.lists(entries, min_size=1, max_size=4))
def test_structured_entries_with_cross_references(docs):
    files = {f"{'abc'[i % 3]}{i}.yaml": yaml.safe_dump(doc, allow_unicode=True).encode()
             for i, doc in enumerate(docs)}
    glossary = check(files)
    for term in glossary.terms.values():  # whatever survives is resolved to real ids
        for field in ("related", "see_also", "prerequisites"):
            assert all(target in glossary.names.values() for target in getattr(term, field))


_segment = st.text(alphabet="abcxyz-0123456789", min_size=1, max_size=6)


@given(st.lists(_segment, min_size=1, max_size=4), st.lists(_segment, min_size=0, max_size=4))
def test_relative_urls_agree_with_posixpath_relpath(target, folder):
    """urls._relative is relpath's fast path for site paths: the same answer, always."""
    import posixpath

    from generator.render.urls import _relative

    t, f = "/".join(target), "/".join(folder)
    assert _relative(t, f) == posixpath.relpath(t, f or ".")
