"""The [[term]] Markdown extension on its own (as Zensical or any Markdown engine runs it)."""

from __future__ import annotations

from xml.etree import ElementTree

import markdown
import pytest
from conftest import entry

from generator.adapters.markdown_ext import TermlabExtension


@pytest.fixture
def md(project):
    project.term("dropout", "Dropout")
    project.term("l2-regularization", "L2 regularization", aliases=["L2 penalty"])
    ext = TermlabExtension(glossary=str(project.glossary), base_url="https://g.example/")
    ext.problems = []
    return markdown.Markdown(extensions=[ext]), ext


def test_links_aliases_plurals_and_labels(md):
    m, ext = md
    html = m.convert("[[dropout]], [[Dropout|the trick]], [[L2 penalty]], [[dropouts]].")
    assert '<a class="termlab-term" data-term="dropout" href="https://g.example/terms/dropout/">' \
           'dropout</a>' in html
    assert ">the trick</a>" in html
    assert 'href="https://g.example/terms/l2-regularization/">L2 penalty</a>' in html
    assert 'href="https://g.example/terms/dropout/">dropouts</a>' in html
    assert ext.problems == []


def test_unknown_name_is_marked_and_reported_with_line(md):
    m, ext = md
    html = m.convert("fine\n\nsee [[dropot]] here")
    assert '<span class="termlab-missing">[[dropot]]</span>' in html
    assert [str(p) for p in ext.problems] == [
        "<markdown>:3: unknown term '[[dropot]]' (did you mean 'Dropout'?); "
        "check the spelling or add the term to the glossary"]


def test_code_is_left_alone(md):
    m, ext = md
    html = m.convert("`[[dropout]]`\n\n```\n[[dropout]]\n```\n")
    assert "termlab-term" not in html and ext.problems == []


def test_math_becomes_mathml(md):
    m, _ = md
    html = m.convert(r"Penalty $\lambda \lVert w \rVert^2$ and" + "\n\n$$\\frac{a}{b}$$\n")
    assert 'display="inline"' in html and "<mi>λ</mi>" in html
    assert 'display="block"' in html and "$" not in html
    # the block formula's box scrolls sideways when wide: keyboard-reachable and named
    box = ElementTree.fromstring(f"<root>{html}</root>").find("div")
    assert box.get("class") == "termlab-math" and box[0].tag.endswith("math")
    assert box.get("data-search-exclude") == "true"
    assert (box.get("tabindex"), box.get("role"), box.get("aria-label")) == ("0", "group", "Formula")


def test_unsafe_urls_are_refused(md):
    m, ext = md
    html = m.convert("[x](javascript:alert(1)) ![y](data:image/svg+xml,abc)")
    assert "javascript:" not in html and "data:" not in html
    assert len(ext.problems) == 2


def test_extension_loads_by_name(project):
    project.write("glossary/dropout.yaml", entry("Dropout"))
    html = markdown.markdown("[[dropout]]", extensions=["termlab"],
                             extension_configs={"termlab": {"glossary": str(project.glossary)}})
    assert 'href="/terms/dropout/"' in html
