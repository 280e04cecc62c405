"""Issue 16, part 4: the concept map — every term a node linking to its page, prerequisites as
arrows, related terms as lines, coloured by category, laid out at build time (byte-stable);
the map page inlines it with pan, zoom and search, by mouse and keyboard."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def map_site(project):
    project.term("overfitting", "Overfitting <b>x</b>", summary="Fitting noise.")
    project.term("ridge", "Ridge", summary="An L2 penalty.", prerequisites=["overfitting"],
                 related=["lasso"])
    project.term("lasso", "Lasso", summary="An L1 penalty.", prerequisites=["overfitting"],
                 related=["ridge"], see_also=["dropout"])
    project.term("dropout", "Dropout", category="deep-learning", summary="Drops units.")
    project.build(strict=True)
    return project


def nodes(svg: ET.Element) -> dict[str, tuple[str, str, str]]:
    """Each node's term id → (href, label, colour class)."""
    out = {}
    for a in svg.iter(f"{SVG}a"):
        colour = next(c for c in a.get("class").split() if c.startswith("tm-c"))
        assert a.find(f"{SVG}text").text == a.get("aria-label")  # its name, for screen readers too
        out[a.get("href").split("/")[-2]] = (a.get("href"), a.get("aria-label"), colour)
    return out


def test_the_map_links_every_term_and_draws_arrows_and_lines(map_site):
    raw = (map_site.root / "site" / "map" / "graph.svg").read_bytes()
    svg = ET.fromstring(raw)  # well-formed XML: names are escaped, never markup
    assert nodes(svg) == {
        "overfitting": ("../terms/overfitting/", "Overfitting <b>x</b>", "tm-c0"),
        "ridge": ("../terms/ridge/", "Ridge", "tm-c0"),
        "lasso": ("../terms/lasso/", "Lasso", "tm-c0"),
        "dropout": ("../terms/dropout/", "Dropout", "tm-c1")}
    assert not [e for e in svg.iter() if e.tag.removeprefix(SVG) not in
                {"svg", "style", "path", "a", "circle", "text"}]
    paths = {p.get("class"): p.get("d") for p in svg.iter(f"{SVG}path")}
    assert paths["tm-arrow"].count("M") == 2 and paths["tm-head"].count("Z") == 2  # two prerequisites
    assert paths["tm-line"].count("M") == 2  # ridge–lasso once, lasso–dropout
    for tid, (href, _, _) in nodes(svg).items():  # every link resolves to the term's page
        assert (map_site.root / "site" / "map" / href / "index.html").resolve() == \
            (map_site.root / "site" / "terms" / tid / "index.html").resolve()


def test_the_layout_is_byte_stable_and_nodes_do_not_overlap(map_site):
    from generator.publish.concept_map import RADIUS, layout, map_svg

    glossary = map_site.load()
    assert map_svg(glossary) == map_svg(glossary) == (map_site.root / "site" / "map" / "graph.svg").read_bytes()
    at = list(layout(glossary).values())
    gaps = [((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5 for i, (x1, y1) in enumerate(at) for x2, y2 in at[i + 1:]]
    assert min(gaps) > 4 * RADIUS


def test_the_map_page_is_in_the_nav_with_a_legend_and_a_fallback_link(map_site):
    page = map_site.html("map/index.html")
    assert re.search(r'<div class="termlab-map" data-src="graph.svg"[^>]*>\s*<p><a href="graph.svg">', page)
    legend = page.split('class="termlab-map-legend"', 1)[1].split("</div>", 1)[0]
    assert 'tm-swatch tm-c0' in legend and "Machine Learning" in legend and "Deep Learning" in legend
    assert 'href="map/"' in map_site.html("index.html") or 'href="./map/"' in map_site.html("index.html")


@pytest.mark.browser
@pytest.mark.parametrize("width,scheme", [(1280, "light"), (390, "dark")])
def test_the_map_pans_zooms_and_finds_a_term_by_keyboard(map_site, browser, width, scheme):
    from tools import ARTIFACTS, site_page

    with site_page(browser, map_site.root / "site", width, scheme) as (page, base):
        page.goto(base + "map/")
        page.locator(".termlab-map[data-ready]").wait_for(timeout=5000)
        assert page.locator(".termlab-map svg a.tm-node").count() == 4
        frame = page.locator(".termlab-map-frame")
        before = page.locator(".termlab-map svg").get_attribute("viewBox")
        frame.focus()
        page.keyboard.press("+")
        zoomed = page.locator(".termlab-map svg").get_attribute("viewBox")
        assert float(zoomed.split()[2]) < float(before.split()[2])
        page.keyboard.press("ArrowRight")
        assert page.locator(".termlab-map svg").get_attribute("viewBox").split()[0] != zoomed.split()[0]
        page.get_by_role("button", name="Reset the view to the whole map").click()
        assert page.locator(".termlab-map svg").get_attribute("viewBox") == before
        page.get_by_label("Find a term").fill("lass")
        assert page.get_by_role("status").inner_text() == "1 term matches; press Enter to go to it"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.getAttribute('href')") == "../terms/lasso/"
        page.screenshot(path=str(ARTIFACTS / f"concept-map-tiny-{width}-{scheme}.png"))
        page.keyboard.press("Enter")  # the focused node is a link
        page.wait_for_url("**/terms/lasso/")
        assert not page.errors, page.errors


@pytest.mark.browser
def test_the_real_map_links_every_term(page, base_url, real_site):
    import json

    terms = json.loads((real_site / "terms.json").read_text())["terms"]
    page.goto(base_url + "map/")
    page.locator(".termlab-map[data-ready]").wait_for(timeout=5000)
    linked = page.locator(".termlab-map svg a.tm-node").evaluate_all(
        "els => els.map(a => new URL(a.getAttribute('href'), location.href).pathname)")
    assert sorted(linked) == sorted(f"/terms/{t['id']}/" for t in terms)
    from tools import ARTIFACTS, full_screenshot

    full_screenshot(page, ARTIFACTS / "concept-map-real-1280-light.png")
    assert not page.errors, page.errors
