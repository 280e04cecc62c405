"""Resolver: names, aliases, plurals, every reference error, cycles, and the indexes."""

from __future__ import annotations

from conftest import entry


def test_names_resolve_case_insensitively_by_alias_and_plural(project):
    project.term("l2-regularization", "L2 regularization", aliases=["L2 penalty", "ridge"])
    project.term("batch", "Batch")
    project.term("x", "X", related=["l2 PENALTY", "Ridge", "batches", "L2-Regularization"])
    g = project.load()
    assert g.problems == []
    assert g.terms["x"].related == ["l2-regularization", "batch"]
    assert g.lookup("L2 penalties") == "l2-regularization"
    assert g.lookup("batches") == "batch"


def test_unknown_reference_in_every_field_with_suggestion(project):
    project.term("dropout", "Dropout")
    for i, field in enumerate(["related", "see_also", "prerequisites"]):
        project.write(f"glossary/t{i}.yaml", entry(f"T{i}") + f"{field}:\n  - dropout\n  - dropot\n")
    problems = project.problems()
    for i, field in enumerate(["related", "see_also", "prerequisites"]):
        assert (f"glossary/t{i}.yaml:7: {field}: unknown term 'dropot' (did you mean 'dropout'?)"
                in problems), problems


def test_unknown_wikilink_names_its_line(project):
    project.term("dropout", "Dropout")
    project.write("glossary/x.yaml", entry("X", body="First line.\nSee [[dropout]] and\n"
                                                  "also [[dropot|this]].\n"))
    assert project.problems() == [
        "glossary/x.yaml:8: body: unknown term '[[dropot]]' (did you mean 'dropout'?)"]


def test_wikilinks_in_code_are_ignored(project):
    project.write("glossary/x.yaml", entry("X", body="Use `[[name]]` or\n\n```\n[[code]]\n```\n"))
    assert project.problems() == []


def test_duplicate_names_case_insensitive(project):
    project.term("dropout", "Dropout")
    project.write("glossary/other.yaml", entry("DROPOUT"))
    project.write("glossary/third.yaml", entry("Third", aliases=["Dropout"]))
    problems = project.problems()
    assert ("glossary/other.yaml:1: term: 'DROPOUT' is already a name of 'dropout' "
            "(glossary/dropout.yaml:1); names and aliases must be unique (case-insensitive): "
            "rename or remove one") in problems
    assert any(p.startswith("glossary/third.yaml:6: aliases: 'Dropout' is already a name of "
                            "'dropout'") for p in problems), problems


def test_self_reference(project):
    project.write("glossary/x.yaml", entry("X", aliases=["ex"]) + "related: [ex]\n")
    assert project.problems() == [
        "glossary/x.yaml:7: related: 'ex' is this term itself; remove the self-reference"]


def test_prerequisite_cycle(project):
    project.term("a", "A", prerequisites=["b"])
    project.term("b", "B", prerequisites=["c"])
    project.term("c", "C", prerequisites=["a"])
    problems = project.problems()
    assert len(problems) == 1
    assert "prerequisites: prerequisites form a cycle: " in problems[0]
    assert "remove one of these prerequisites" in problems[0]
    assert problems[0].split(":")[0] in {"glossary/a.yaml", "glossary/b.yaml", "glossary/c.yaml"}


def test_unknown_category(project):
    project.term("x", "X", category="deep-learnin")
    assert project.problems() == [
        "glossary/x.yaml:2: category: unknown category 'deep-learnin' (did you mean "
        "'deep-learning'?); declare it in glossary/_categories.yaml or use one of: "
        "machine-learning, deep-learning"]


def test_unsafe_urls_in_markdown_are_refused(project):
    project.write("glossary/x.yaml", entry("X", body="Click [here](javascript:alert(1)).\n"))
    assert project.problems() == [
        "glossary/x.yaml:4: body: unsafe URL 'javascript:alert(1' refused; use an http(s) link"]


def test_backlinks_members_and_learning_order(project):
    project.term("loss", "Loss")
    project.term("overfitting", "Overfitting", prerequisites=["loss"])
    project.term("dropout", "Dropout", category="deep-learning", prerequisites=["overfitting"],
                 body="Fights [[overfitting]].")
    project.term("ridge", "Ridge", related=["overfitting"])
    g = project.load()
    assert g.backlinks["overfitting"] == ["dropout", "ridge"]
    assert g.backlinks["loss"] == ["overfitting"]
    assert g.members == {"machine-learning": ["loss", "overfitting", "ridge"],
                         "deep-learning": ["dropout"]}
    assert g.learning_order.index("loss") < g.learning_order.index("overfitting") < \
        g.learning_order.index("dropout")
    assert g.next_up["overfitting"] == ["dropout"]


def test_broken_file_does_not_cascade_into_unknown_references(project):
    project.write("glossary/broken.yaml", "term: [\n")
    project.term("x", "X", related=["broken"])
    problems = project.problems()
    assert len(problems) == 1 and problems[0].startswith("glossary/broken.yaml:2: malformed YAML")
