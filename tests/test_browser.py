"""The built site in a real browser (Playwright + Debian's Chromium), as a reader uses it.

Screenshots are saved under test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import shutil

import pytest
from tools import ARTIFACTS, full_screenshot, serve


def test_home_lists_terms(page, base_url):
    page.goto(base_url)
    links = page.locator("article a.termlab-term")
    assert links.count() >= 13
    assert page.locator("article").get_by_text("Dropout", exact=True).count() >= 1
    full_screenshot(page, ARTIFACTS / "home.png")
    assert page.errors == []


def test_search_finds_dropout(page, base_url):
    page.goto(base_url)
    page.locator("label.md-search__icon, .md-search__input").first.click()
    page.locator(".md-search__input").press_sequentially("dropout", delay=50)
    result = page.locator(".md-search-result__item").filter(has_text="Dropout").first
    result.wait_for(timeout=15000)
    page.screenshot(path=ARTIFACTS / "search.png")
    assert page.errors == []


def test_figures_switch_with_the_palette(page, base_url):
    page.goto(base_url + "terms/dropout/")
    light = page.locator('article img[src$="#only-light"]').first
    dark = page.locator('article img[src$="#only-dark"]').first
    light.scroll_into_view_if_needed()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=light.element_handle())
    assert light.is_visible() and not dark.is_visible()
    full_screenshot(page, ARTIFACTS / "dropout-light.png")
    page.locator('[data-md-component="palette"] label:visible').first.click()
    page.wait_for_selector('body[data-md-color-scheme="slate"]')
    dark.scroll_into_view_if_needed()
    assert dark.is_visible() and not light.is_visible()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=dark.element_handle())
    full_screenshot(page, ARTIFACTS / "dropout-dark.png")
    assert page.errors == []


def test_hover_preview_on_a_term_link(page, base_url):
    page.goto(base_url + "terms/weight-decay/")
    link = page.locator("article a.termlab-term[data-term='l2-regularization']").first
    link.hover()
    preview = page.locator(".termlab-preview:not([hidden])")
    preview.wait_for(timeout=5000)
    assert "L2 regularization" in preview.inner_text()
    assert link.get_attribute("aria-describedby") == "termlab-preview"
    page.screenshot(path=ARTIFACTS / "preview.png")
    page.keyboard.press("Escape")
    assert page.locator(".termlab-preview:not([hidden])").count() == 0
    other = page.locator("article a.termlab-term[data-term='overfitting']").first
    # Park the pointer on the header: focusing scrolls the page, and a term link that scrolls
    # under a resting pointer rightly takes the preview over.
    page.mouse.move(1, 1)
    other.focus()  # keyboard users get the same preview
    page.locator(".termlab-preview:not([hidden])").filter(has_text="Overfitting").wait_for(timeout=5000)
    assert page.errors == []


def test_phone_width_has_no_horizontal_overflow(browser, base_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for path in ["", "terms/dropout/", "terms/weight-decay/", "categories/"]:
        page.goto(base_url + path)
        page.wait_for_timeout(200)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (path, overflow)
    page.goto(base_url + "terms/dropout/")
    # Each claim's pass mark sits fully inside its list item, left of the statement.
    marks = page.evaluate("""[...document.querySelectorAll('.termlab-claims > ul > li')].map(li => {
        const range = document.createRange();  // the glyph itself, not its box
        range.selectNodeContents(li.querySelector('.termlab-pass, .termlab-fail'));
        const mark = range.getBoundingClientRect();
        const box = li.getBoundingClientRect();
        return [mark.left, mark.right, box.left, box.left + parseFloat(getComputedStyle(li).paddingLeft)];
    })""")
    assert marks
    for mark_left, mark_right, item_left, text_left in marks:
        assert item_left - 0.5 <= mark_left and mark_right <= text_left + 0.5, marks
    full_screenshot(page, ARTIFACTS / "dropout-phone.png")
    assert errors == []
    context.close()


HOSTILE_CASES = ["hostile-text", "hostile-html-everywhere", "hostile-attribute-breakout",
                 "hostile-attribute-lists", "hostile-math", "hostile-code-mask",
                 "hostile-category-name", "hostile-metric-unit"]
# Fire what an attacker's markup would wait for: hover, focus and click on every element
# (clicks stay on the page), after the page and its images loaded.
PROVOKE = """() => {
  addEventListener('click', e => e.preventDefault(), true);
  for (const el of document.querySelectorAll('body *')) {
    for (const type of ['mouseover', 'mouseenter', 'focus', 'click', 'animationstart'])
      el.dispatchEvent(new Event(type, {bubbles: true}));
  }
}"""


@pytest.fixture(scope="module")
def hostile_sites(tmp_path_factory):
    """Each hostile-text corpus case built (non-strict, as an author would preview it) and
    served from one folder, one case per sub-folder."""
    from test_corpus import build, make_project

    served = tmp_path_factory.mktemp("hostile-served")
    for case in HOSTILE_CASES:
        root = make_project(tmp_path_factory.mktemp(case), case)
        done = build(root, strict=False)
        assert done.returncode == 0, (case, done.stderr[-3000:])
        shutil.copytree(root / "site", served / case)
    with serve(served) as url:
        yield served, url


def test_no_hostile_text_runs_in_the_browser(browser, hostile_sites):
    """Every page of every hostile-text case, loaded in Chromium and provoked: no dialog."""
    served, url = hostile_sites
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(f"{page.url}: {d.type} {d.message}"), d.dismiss()))
    pages = sorted(p.relative_to(served).as_posix() for p in served.rglob("*.html")
                   if "/search/" not in p.as_posix())
    assert len(pages) >= 8 * 5
    for rel in pages:
        page.goto(url + rel, wait_until="load")
        page.evaluate(PROVOKE)
        page.wait_for_timeout(30)
    context.close()
    assert dialogs == []
