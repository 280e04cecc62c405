"""Every loader error kind: the message and its file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import entry


def test_valid_entry_loads_with_all_fields(project):
    project.term("dropout", "Dropout", aliases=["dropout regularization"], tags=["nn"],
                 key_concepts=["masks"], example="ex", analogy="an",
                 questions=[{"q": "why?", "a": "because"}],
                 references=[{"title": "T", "authors": ["A B"], "year": 2014,
                              "url": "https://jmlr.org/x", "venue": "JMLR"}])
    g = project.load()
    assert g.problems == []
    t = g.terms["dropout"]
    assert t.term == "Dropout" and t.aliases == ["dropout regularization"]
    assert t.references[0].year == 2014 and t.questions[0].a == "because"


@pytest.mark.parametrize(("text", "expected"), [
    ("term: [unclosed\n", "glossary/bad.yaml:1: malformed YAML: a bracket opened on this line"),
    ("term: x\n\tsummary: y\n", "glossary/bad.yaml:2: tab character in indentation"),
    ("", "glossary/bad.yaml:1: file is empty"),
    ("term: a\nterm: b\n", "glossary/bad.yaml:2: duplicate key 'term'"),
    ("- a\n- b\n", "glossary/bad.yaml:1: an entry must be a mapping of fields, got a list"),
    ("a: &x [1, 2]\nb: *x\n", "glossary/bad.yaml:2: YAML aliases (*name) are not allowed"),
])
def test_malformed_files(project, text, expected):
    project.write("glossary/bad.yaml", text)
    problems = project.problems()
    assert any(p.startswith(expected) for p in problems), problems


def test_non_utf8_names_the_line_of_the_bad_byte(project):
    project.write("glossary/bad.yaml", b"term: ok\nsummary: caf\xe9\n")
    assert "glossary/bad.yaml:2: byte 0xe9 is not valid UTF-8; save the file as UTF-8" in \
        project.problems()


def test_byte_order_mark_is_refused(project):
    project.write("glossary/bad.yaml", b"\xef\xbb\xbf" + entry("Bad").encode())
    assert project.problems() == [
        "glossary/bad.yaml:1: file starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM"]


def test_alias_bomb_is_rejected_without_expansion(project):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    project.write("glossary/bomb.yaml", "\n".join(lines) + "\n")
    assert project.problems() == [
        "glossary/bomb.yaml:2: YAML aliases (*name) are not allowed in entries; write the value out"]


@pytest.mark.parametrize("text", ["term: " + "[" * 200_000 + "]" * 200_000,
                                  "".join(" " * i + f"k{i}:\n" for i in range(1000))])
def test_deep_nesting_is_refused_not_crashed(project, text):
    project.write("glossary/deep.yaml", text)
    problems = project.problems()
    assert any("nested too deeply" in p for p in problems), problems


def test_huge_file_is_refused(project):
    project.write("glossary/huge.yaml", entry("Huge", body="x" * 10_000_000))
    assert project.problems() == ["glossary/huge.yaml:1: file is 10.0 MB; entries are limited to "
                                  "1000 kB (move long material into a linked page)"]


def test_missing_required_fields(project):
    project.write("glossary/thin.yaml", "term: Thin\ncategory: machine-learning\n")
    problems = project.problems()
    assert "glossary/thin.yaml:1: missing required field 'summary'; add `summary: ...`" in problems
    assert "glossary/thin.yaml:1: missing required field 'body'; add `body: ...`" in problems


def test_unknown_field_suggests_the_right_name(project):
    project.write("glossary/x.yaml", entry("X") + "relatd: [y]\n")
    (problem,) = project.problems()
    assert problem.startswith("glossary/x.yaml:5: unknown field 'relatd' (did you mean 'related'?)")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("term", "[a, b]", "term: expected a string, got a list"),
    ("summary", "{a: 1}", "summary: expected a string, got a mapping"),
    ("body", "42", "body: expected a string, got a number"),
    ("aliases", "just-one", "aliases: expected an array, got text"),
    ("tags", "[[nested]]", "tags.0: expected a string, got a list"),
    ("related", "[1]", "related.0: expected a string, got a number"),
    ("see_also", "yes", "see_also: expected an array, got true/false"),
    ("prerequisites", "{a: b}", "prerequisites: expected an array, got a mapping"),
    ("references", "[{title: T, authors: A, year: 2000}]",
     "references.0.authors: expected an array, got text"),
    ("references", "[{title: T, authors: [A], year: '2000'}]",
     "references.0.year: expected an integer, got text"),
    ("references", "[{title: T, authors: [A], year: 2000, url: 'javascript:alert(1)'}]",
     "references.0.url: URL 'javascript:alert(1)' must start with http:// or https://"),
    ("demo", "[a]", "demo: demo must be a demo name"),
    ("questions", "[{q: only}]", "questions.0: missing required field 'a'"),
])
def test_wrong_types_name_field_and_line(project, field, value, message):
    base = {"term": "X", "summary": "S.", "body": "B.", "category": "machine-learning"}
    base.pop(field, None)
    lines = [f"{k}: {v}" for k, v in base.items()][:4]
    lines += ["tags: [t]"] * (4 - len(lines))
    project.write("glossary/x.yaml", "\n".join(lines) + f"\n{field}: {value}\n")
    problems = project.problems()
    assert any(p.startswith(f"glossary/x.yaml:5: {message}") for p in problems), problems


def test_invalid_file_name(project):
    project.write("glossary/Weight Decay.yaml", entry("Weight decay"))
    assert project.problems() == [
        "glossary/Weight Decay.yaml: file name 'Weight Decay.yaml' is not a valid term id; "
        "rename it to 'weight-decay.yaml' (lowercase, hyphens)"]


def test_demo_that_names_no_file(project):
    project.write("demos/dropout_demo.py", "def run(demo): pass\n")
    project.write("glossary/x.yaml", entry("X") + "demo: dropout_dem\n")
    assert project.problems() == [
        "glossary/x.yaml:5: demo: no demo file demos/dropout_dem.py (did you mean "
        "'dropout_demo'?); create it (termlab new) or fix the name"]


def test_all_problems_of_all_files_are_reported_together(project):
    project.write("glossary/a.yaml", "term: [\n")
    project.write("glossary/b.yaml", "")
    project.write("glossary/c.yaml", entry("C") + "bogus: 1\n")
    paths = {p.split(":")[0] for p in project.problems()}
    assert paths == {"glossary/a.yaml", "glossary/b.yaml", "glossary/c.yaml"}


def test_categories_file_problems(project):
    project.write("glossary/_categories.yaml", "ml: {name: ML, order: one, description: d}\n")
    assert "glossary/_categories.yaml:1: ml.order: expected an integer, got text" in \
        project.problems()


def test_precompiled_validators_are_current_and_agree_with_the_schemas():
    """The validators generated ahead of time (generator/read/validators) match their schemas,
    and judge real and broken entries exactly as a validator compiled from the schema does."""
    import fastjsonschema

    from generator.read.load import schema, schema_text
    from generator.read.validators import SCHEMAS, precompiled
    from generator.read.yamlnodes import YamlProblem
    from generator.read.yamlnodes import load as load_yaml

    for name in SCHEMAS:
        assert precompiled(name, schema_text(name)) is not None, (
            f"generator/read/schema/{name}.schema.json changed: run `python -m generator.read.validators`")
    assert precompiled("term", schema_text("term") + "\n") is None  # a changed schema is compiled

    fresh, ahead = fastjsonschema.compile(schema("term")), precompiled("term", schema_text("term"))
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "glossary").glob("[!_]*.yaml"))
    files += sorted((root / "tests" / "corpus").glob("*/files/glossary/[!_]*.yaml"))
    samples = []
    for path in files:
        try:
            samples.append(load_yaml(path).data)
        except YamlProblem:
            continue  # not YAML at all: the schema is never asked

    def verdict(validate, data):
        try:
            validate(data)
        except fastjsonschema.JsonSchemaException as exc:
            return f"invalid: {exc.message}"
        return "valid"

    judged = [(verdict(ahead, d), verdict(fresh, d)) for d in samples if isinstance(d, dict)]
    assert len(judged) > 40
    assert {a for a, _ in judged} >= {"valid"} and any(a != "valid" for a, _ in judged)
    assert all(a == b for a, b in judged)


def test_a_memo_reads_only_changed_entries(project, monkeypatch):
    """Serve keeps each entry's outcome by its stat: an unchanged file is not parsed again,
    an edited one is, and the result equals a fresh load."""
    from generator.read import load as loader

    project.term("a", summary="First.")
    project.term("b", summary="Second.", related=["c"])
    read = []
    real = loader.load
    monkeypatch.setattr(loader, "load", lambda path: read.append(path.name) or real(path))
    entries = lambda: [name for name in read if not name.startswith("_")]  # noqa: E731
    memo: dict = {}
    first = loader.load_glossary(project.glossary, project.demos, project.root, memo)
    assert sorted(entries()) == ["a.yaml", "b.yaml"]
    read.clear()
    again = loader.load_glossary(project.glossary, project.demos, project.root, memo)
    assert entries() == [] and again.terms == first.terms and again.problems == first.problems
    project.term("b", summary="Second, edited.", related=["c"])
    (project.glossary / "a.yaml").unlink()
    edited = loader.load_glossary(project.glossary, project.demos, project.root, memo)
    assert entries() == ["b.yaml"] and list(edited.terms) == ["b"]
    fresh = loader.load_glossary(project.glossary, project.demos, project.root)
    assert edited.terms == fresh.terms and edited.problems == fresh.problems
    assert [rel.rsplit("/", 1)[-1] for rel in memo] == ["b.yaml"]
