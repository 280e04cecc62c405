"""Issue 16, part 3: the glossary as study files — an Anki deck (genanki) of every term and one per
category, a CSV of the same notes, a Study page in the nav, all listed in terms.json."""

from __future__ import annotations

import csv
import html.parser
import io
import sqlite3
import zipfile

import pytest


@pytest.fixture
def study_site(project):
    project.term("dropout", "Dropout", category="deep-learning", summary="Drops <b>units</b> & more.",
                 levels={"basic": "Switch units off at random.", "formal": "A mask."})
    project.term("ridge", "Ridge", summary="An L2 penalty.")
    project.term("lasso", "Lasso", summary="An L1 penalty.")
    project.build(strict=True)
    return project


def notes(apkg: bytes, tmp_path) -> list[list[str]]:
    """The notes' fields, read back from the package's SQLite collection."""
    with zipfile.ZipFile(io.BytesIO(apkg)) as z:
        assert sorted(z.namelist()) == ["collection.anki2", "media"]
        db = tmp_path / "collection.anki2"
        db.write_bytes(z.read("collection.anki2"))
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select flds from notes order by sfld").fetchall()
    db.unlink()
    return [r[0].split("\x1f") for r in rows]


def test_the_anki_decks_hold_a_note_per_term_with_text_as_text(study_site, tmp_path):
    site = study_site.root / "site"
    everything = notes((site / "study" / "glossary.apkg").read_bytes(), tmp_path)
    assert [n[0] for n in everything] == ["Dropout", "Lasso", "Ridge"]
    dropout = everything[0]
    assert dropout[1] == "Drops &lt;b&gt;units&lt;/b&gt; &amp; more."  # Anki shows HTML: entry text is escaped
    assert dropout[2] == "Switch units off at random."
    assert 'href="https://example.org/glossary/terms/dropout/"' in dropout[3]
    ml = notes((site / "study" / "categories" / "machine-learning.apkg").read_bytes(), tmp_path)
    assert [n[0] for n in ml] == ["Lasso", "Ridge"]


def test_the_csv_and_terms_json_list_the_same(study_site):
    site = study_site.root / "site"
    rows = list(csv.DictReader(io.StringIO((site / "study" / "terms.csv").read_text("utf-8"))))
    assert [(r["id"], r["summary"]) for r in rows] == [
        ("dropout", "Drops <b>units</b> & more."), ("lasso", "An L1 penalty."), ("ridge", "An L2 penalty.")]
    study = study_site.json("terms.json")["study"]
    assert study == {"anki": "study/glossary.apkg", "csv": "study/terms.csv",
                     "anki_by_category": {"deep-learning": "study/categories/deep-learning.apkg",
                                          "machine-learning": "study/categories/machine-learning.apkg"}}
    for path in [study["anki"], study["csv"], *study["anki_by_category"].values()]:
        assert (site / path).is_file()


def test_two_builds_give_the_same_decks(study_site):
    site = study_site.root / "site" / "study"
    first = {p.name: p.read_bytes() for p in site.rglob("*.apkg")}
    study_site.build(strict=True)
    assert {p.name: p.read_bytes() for p in site.rglob("*.apkg")} == first


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, bool]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href", "").endswith((".apkg", ".csv")):
            self.links.append((attrs["href"], "download" in attrs))


def test_the_study_page_offers_every_file_for_download_and_is_in_the_nav(study_site):
    parser = _Links()
    parser.feed(study_site.html("study/index.html"))
    assert parser.links == [("glossary.apkg", True), ("categories/machine-learning.apkg", True),
                            ("categories/deep-learning.apkg", True), ("terms.csv", True)]
    assert 'href="../../study/"' in study_site.html("terms/ridge/index.html")  # the nav, on every page


@pytest.mark.parametrize("width,scheme", [(1280, "light"), (390, "dark")])
def test_flashcards_turn_and_move_for_the_glossary_and_a_category(study_site, browser, width, scheme):
    from tools import site_page

    with site_page(browser, study_site.root / "site", width, scheme) as (page, base):
        page.goto(base + "categories/machine-learning/")
        page.get_by_role("link", name="flashcards").click()
        front, back = page.locator(".termlab-card-front"), page.locator(".termlab-card-back")
        front.wait_for()
        assert page.locator(".termlab-card-count").inner_text() == "Card 1 of 2"  # the category's deck
        assert front.inner_text() == "Lasso" and back.is_hidden()
        page.get_by_role("button", name="Show the meaning").click()
        assert back.inner_text() == "An L1 penalty."
        page.get_by_role("button", name="Next card").focus()
        page.keyboard.press("ArrowRight")  # the arrows move too
        assert front.inner_text() == "Ridge" and back.is_hidden()
        page.keyboard.press("Enter")  # "Next card": round to the first
        assert front.inner_text() == "Lasso"
        page.get_by_label("Deck").select_option("")  # every term
        assert page.locator(".termlab-card-count").inner_text() == "Card 1 of 3"
        assert front.inner_text() == "Dropout"
        page.get_by_role("button", name="Show the meaning").click()
        assert back.inner_text() == "Drops <b>units</b> & more."  # text, not markup
        assert page.locator(".termlab-card b").count() == 0
