"""Build tiny sites in tmp_path with MkDocs and assert on the HTML."""

from __future__ import annotations

import re

import pytest
from conftest import entry
from mkdocs.exceptions import Abort


@pytest.fixture
def site(project):
    project.term("loss-function", "Loss function", aliases=["cost function"],
                 summary="Measures how wrong a prediction is.")
    project.term("overfitting", "Overfitting", prerequisites=["loss function"],
                 summary="Fitting noise: low training error, high test error.",
                 body="A model that memorises. Compare [[loss-function|the loss]].\n\n"
                      "$$E = \\sum_i (y_i - \\hat y_i)^2$$\n",
                 related=["dropout"], tags=["generalization"],
                 key_concepts=["Training vs validation error"],
                 example="A degree-15 polynomial.", analogy="Memorising the exam answers.",
                 levels={"basic": "Learning the examples by heart instead of the rule.",
                         "formal": "Training risk $\\hat R(f)$ far below the true risk $R(f)$; "
                                   "see [[loss-function]]."},
                 questions=[{"q": "What is it?", "a": "Fitting noise."}],
                 references=[{"title": "The Problem of Overfitting", "authors": ["D. M. Hawkins"],
                              "year": 2004, "venue": "J. Chem. Inf. Comput. Sci.",
                              "url": "https://doi.org/10.1021/ci0342472"}])
    project.term("dropout", "Dropout", category="deep-learning",
                 summary="Randomly zeroes units during training.", see_also=["overfitting"])
    project.write("docs/guide.md", "# Guide\n\nRead about [[overfitting]] and [[cost functions]].\n")
    project.build()
    return project


def test_term_page_has_every_section(site):
    html = site.html("terms/overfitting/index.html")
    assert "<h1" in html and ">Overfitting<" in html
    assert 'class="termlab-lead"' in html and "Fitting noise: low training error" in html
    for heading in ("Understanding overfitting", "Key concepts", "Example", "Test yourself",
                    "Connected terms", "References"):
        assert heading in html, heading
    for gone in ("Related terms", "See also", "Referenced by", "Next up", "More in"):
        assert gone not in html, gone
    # what it builds on is named once, in the header line (no separate box repeating it)
    assert "Before you start" not in html
    assert re.search(r'<strong>Builds on:</strong> <a [^>]*href="../loss-function/"', html)
    # connected terms each with their relations and their own short summary
    assert re.search(r'href="../dropout/"[^>]*>Dropout</a> <span class="termlab-relation">'
                     r'related · used by</span>\s*<span class="termlab-short">Randomly zeroes units', html)
    assert "Memorising the exam answers." in html
    assert 'display="block"' in html
    assert "D. M. Hawkins (2004)" in html and 'href="https://doi.org/10.1021/ci0342472"' in html


def test_levels_are_tabs_after_the_lead(site):
    html = site.html("terms/overfitting/index.html")
    tabs = re.search(r'<div class="tabbed-set tabbed-alternate".*?</div>\s*</div>', html, re.S)
    assert tabs, "the levels are one Material tab set"
    block = tabs.group(0)
    assert block.index("In plain words") < block.index("Precisely")
    assert "Learning the examples by heart" in block and "<math" in block
    assert 'href="../loss-function/"' in block  # [[links]] work inside levels
    assert html.index("termlab-lead") < tabs.start() < html.index('<h2 id="understanding-overfitting"')
    index = site.json("terms.json")
    levels = next(t for t in index["terms"] if t["id"] == "overfitting")["levels"]
    assert levels["basic"] == "Learning the examples by heart instead of the rule."
    assert set(levels) == {"basic", "formal"}
    assert next(t for t in index["terms"] if t["id"] == "dropout")["levels"] == {}
    assert "tabbed-set" not in site.html("terms/dropout/index.html")


def test_backlinks_and_category_pages(site):
    loss = site.html("terms/loss-function/index.html")
    assert re.search(r'href="../overfitting/"[^>]*>Overfitting</a> <span class="termlab-relation">'
                     r'used by · same category</span>', loss)  # overfitting builds on it
    cat = site.html("categories/deep-learning/index.html")
    assert "Many-layered networks." in cat and "Randomly zeroes units" in cat


def test_learning_path_puts_each_term_after_what_it_builds_on(site):
    html = site.html("path/index.html")
    first, second = html.index('id="stage-1"'), html.index('id="stage-2"')
    # no _path.yaml: one stage per category, in category order, named after it
    assert "Stage 1: Machine Learning" in html and "Stage 2: Deep Learning" in html
    assert "Stage 3" not in html and "Learning from data." in html
    assert first < html.index(">Loss function<", first) < html.index(">Overfitting<", first) < second
    assert html.index(">Dropout<", second) > second
    item = html[html.index(">Overfitting<", first):]
    item = item[:item.index("</li>")]
    assert "Fitting noise" in item and "Builds on" in item and 'href="../terms/loss-function/"' in item
    nav_item = r'href="path/"[^>]*>\s*<span class="md-ellipsis">\s*Learning path'
    assert re.search(nav_item, site.html("index.html"))


def test_headings_lowercase_a_name_mid_sentence_but_keep_proper_nouns():
    from generator.text.plain import midsentence

    assert midsentence("Weight decay", "Adding **weight decay** shrinks") == "weight decay"
    assert midsentence("Adam", "Adam needs {{steps_adam}} steps; Adam-trained; {{adam_x}}") == "Adam"
    assert midsentence("Dropout") == "dropout"
    assert midsentence("L2 regularization", "l2 regularization") == "L2 regularization"


def test_a_large_glossary_has_no_learning_path(project, monkeypatch):
    from generator.render import pages as render

    monkeypatch.setattr(render, "PATH_MAX_TERMS", 2)
    for tid in "abc":
        project.term(tid, tid.upper())
    project.build()
    assert not (project.root / "site" / "path").exists()
    assert 'href="path/"' not in project.html("index.html")


def test_home_is_an_a_to_z_index(site):
    home = site.html("index.html")
    assert 'id="letter-d"' in home and 'id="letter-o"' in home
    a_to_z = home.index('id="letter-d"')
    assert home.index(">Dropout<", a_to_z) < home.index(">Loss function<", a_to_z) < \
        home.index(">Overfitting<", a_to_z)


def test_term_pages_stay_out_of_the_nav(site):
    home = site.html("index.html")
    nav = home[home.find('md-nav--primary'):home.find('md-sidebar--secondary')]
    assert "Categories" in nav and "terms/overfitting" not in nav


def test_handwritten_pages_get_term_links(site):
    guide = site.html("guide/index.html")
    assert 'href="../terms/overfitting/"' in guide
    assert 'href="../terms/loss-function/">cost functions</a>' in guide


def test_hostile_text_is_escaped(project):
    project.term("x", "<img src=x onerror=alert(1)>",
                 summary="<script>alert(1)</script> summary",
                 body='Body <b onmouseover="alert(1)">bold</b> and `<code>` stays.',
                 aliases=["<i>alias</i>"], tags=["<t>"],
                 questions=[{"q": "<script>alert(2)</script>?", "a": "<img src=y onerror=alert(3)>"}],
                 references=[{"title": "<b onclick=x>T</b>", "authors": ["<s>A</s>"], "year": 2000,
                              "venue": "<script>v</script>", "url": "https://e.org/a b(c)"}],
                 key_concepts=["<iframe src=z>"], example="<svg onload=alert(4)>",
                 analogy="<style>body{}</style>",
                 levels={"basic": "<object data=x>", "formal": '<a href="x" onclick="alert(5)">f</a>'})
    project.build()
    html = project.html("terms/x/index.html")
    article = html[html.find("<article"):html.find("</article>")]
    assert "<script>alert" not in article and "<img src=x" not in article
    assert "<b onmouseover" not in article and "<i>alias" not in article
    for bad in ("<script", "<img", "<iframe", "<svg", "<style", "<b onclick", "<s>", "<object"):
        assert bad not in article, bad
    assert not re.search(r"<[a-z][^>]*\son[a-z]+=", article)  # no tag carries an event handler
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in article
    assert "<code>&lt;code&gt;</code>" in article


def test_strict_build_fails_with_located_message(project, caplog_mkdocs):
    project.term("x", "X", related=["nope"])
    with pytest.raises(Abort):
        project.build()
    assert "glossary/x.yaml:6: related: unknown term 'nope'" in caplog_mkdocs.text


def test_unknown_link_in_handwritten_page_fails_strict(project, caplog_mkdocs):
    project.term("x", "X")
    project.write("docs/page.md", "# P\n\nText\n\nSee [[nope]].\n")
    with pytest.raises(Abort):
        project.build()
    assert "docs/page.md:5: unknown term '[[nope]]'" in caplog_mkdocs.text


def test_non_strict_build_shows_errors_on_pages(project):
    project.term("x", "X", related=["nope"])
    project.write("glossary/broken.yaml", "term: [\n")
    project.build(strict=False)
    html = project.html("terms/x/index.html")
    assert "This entry has 1 problem" in html and "unknown term" in html
    broken = project.html("terms/broken/index.html")
    assert "This entry could not be read" in broken and "malformed YAML" in broken
    assert "The glossary has 2 problems" in project.html("index.html")


def test_demo_placeholder_until_run(project):
    project.write("demos/d.py", "def run(demo):\n    pass\n")
    project.write("glossary/x.yaml", entry("X") + "demo: d\n")
    project.build(run_demos=False)
    assert "Demo not run" in project.html("terms/x/index.html")


def test_page_templates_are_compiled_once_into_the_build_cache(tmp_path, monkeypatch):
    """The next build process loads the page templates' compiled code from the build's cache
    (Jinja checks each source); the folder is named after the settings it was compiled with."""
    import functools

    from generator.render import pages

    def new_process() -> None:
        monkeypatch.setattr(pages, "environment", functools.cache(pages.environment.__wrapped__))
        pages.keep_compiled(tmp_path)

    new_process()
    first = pages.environment().get_template("term.md.j2")
    (folder,) = (tmp_path / "templates").glob("pages-*")
    assert [p.suffix for p in folder.iterdir()] == [".cache"]  # term.md.j2's code
    new_process()
    env = pages.environment()
    monkeypatch.setattr(env, "compile", lambda *a, **k: pytest.fail("compiled again"))
    again = env.get_template("term.md.j2")
    assert again.blocks.keys() == first.blocks.keys()
    next(folder.iterdir()).write_bytes(b"torn")
    new_process()  # a damaged file is compiled again, not trusted
    assert pages.environment().get_template("term.md.j2").blocks.keys() == first.blocks.keys()
