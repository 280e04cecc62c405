"""``search: pagefind``: a chunked search index for large glossaries, with Pagefind's own
search box on a search page (issue 19)."""

from __future__ import annotations

import pytest
from mkdocs.exceptions import Abort, PluginError

PAGEFIND_YML = """\
site_name: Test glossary
docs_dir: docs
theme:
  name: material
  features: [navigation.instant]
  palette:
    - media: "(prefers-color-scheme: light)"
      scheme: default
      primary: indigo
      toggle: {{icon: material/weather-night, name: Dark}}
    - media: "(prefers-color-scheme: dark)"
      scheme: slate
      primary: indigo
      toggle: {{icon: material/weather-sunny, name: Light}}
plugins:
  - termlab:
      cache_dir: {cache}
      audit_seeds: 0
      search: pagefind
"""


@pytest.fixture
def pagefind_site(project):
    project.write("mkdocs.yml", PAGEFIND_YML.format(cache=project.root / ".cache"))
    project.term("dropout", summary="Zeroes random units while training.", related=["weight-decay"])
    project.term("weight-decay", summary="Shrinks every weight a little at each step.")
    project.term("evil", "Evil <b>one</b>", summary="Holds <img src=x onerror=alert(1)> as text.")
    project.build(strict=True)
    return project


def test_the_site_carries_pagefinds_index_and_a_search_page(pagefind_site):
    site = pagefind_site.root / "site"
    assert (site / "pagefind" / "pagefind-ui.js").is_file() and (site / "pagefind" / "pagefind-entry.json").is_file()
    assert not (site / "search" / "search_index.json").exists()  # Material's index is not built
    page = pagefind_site.html("search/index.html")
    assert 'id="termlab-search"' in page and 'data-pagefind="../pagefind/"' in page
    assert "termlab-search.js" in pagefind_site.html("terms/dropout/index.html")
    home = pagefind_site.html("index.html")
    assert 'href="search/"' in home  # in the nav


def test_two_builds_give_the_same_index(pagefind_site):
    site = pagefind_site.root / "site" / "pagefind"
    first = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    pagefind_site.build(strict=True)
    again = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert first.keys() == again.keys() and [k for k in first if first[k] != again[k]] == []


def test_material_search_beside_pagefind_is_refused_with_the_fix(project, caplog_mkdocs):
    project.write("mkdocs.yml", PAGEFIND_YML.format(cache=project.root / ".cache")
                  .replace("plugins:\n", "plugins:\n  - search\n"))
    project.term("a")
    with pytest.raises((PluginError, Abort)):
        project.build(strict=True)
    assert "mkdocs.yml: plugins: termlab: search: pagefind replaces Material's search, but the 'material/search' " \
           "plugin is on too; remove it from plugins" in caplog_mkdocs.text


def test_a_bad_search_setting_names_the_choices(project):
    project.write("mkdocs.yml", PAGEFIND_YML.format(cache=project.root / ".cache")
                  .replace("search: pagefind", "search: lunr"))
    project.term("a")
    with pytest.raises(Abort):
        project.build(strict=True)


@pytest.mark.parametrize("width,scheme", [(1280, "light"), (390, "dark")])
def test_slash_opens_search_and_a_result_leads_to_the_term(pagefind_site, browser, width, scheme):
    from tools import site_page

    with site_page(browser, pagefind_site.root / "site", width, scheme) as (page, base):
        page.goto(base + "terms/weight-decay/")
        page.keyboard.press("/")
        page.wait_for_url("**/search/")
        page.wait_for_selector("#termlab-search input")
        page.keyboard.type("zeroes random")
        first = page.wait_for_selector(".pagefind-ui__result-link")
        assert first.get_attribute("href") == "/terms/dropout/"
        page.click(".pagefind-ui__result-link")
        page.wait_for_url("**/terms/dropout/")
        assert page.title().startswith("Dropout")
        page.goto(base + "search/")
        page.wait_for_selector("#termlab-search input").fill("onerror")
        page.wait_for_selector(".pagefind-ui__result-link")
        assert page.eval_on_selector_all("#termlab-search img", "els => els.length") == 0  # text, not markup
        assert page.errors == []


@pytest.mark.parametrize("width,scheme", [(1280, "light"), (1280, "dark"), (390, "light"), (390, "dark")])
def test_the_search_page_with_results_passes_the_wcag_audit(pagefind_site, browser, width, scheme):
    from test_a11y import describe, run_axe
    from tools import AXE, require, serve

    require(AXE.is_file(), "npm package axe-core")
    with serve(pagefind_site.root / "site") as base:
        context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        page.goto(base + "search/")
        page.wait_for_selector("#termlab-search input").fill("weight")
        page.wait_for_selector(".pagefind-ui__result-link")
        page.wait_for_timeout(300)  # the result list settles
        lines = describe(run_axe(page))
    assert not lines, "\n".join(lines)
