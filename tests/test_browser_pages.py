"""Term pages in Chromium at desktop and phone width, light and dark: every section reachable,
nothing wider than the screen unless it scrolls in its own box, the path's previous/next links.

Screenshots of five term pages go to test-artifacts/ (desktop and phone) for a human to look at.
"""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
from tools import ARTIFACTS, full_screenshot

TERMS = ["dropout", "transformer", "weight-decay", "overfitting", "mamba"]
# Material hides its contents sidebar below 76.25em (1220 px at the default font size).
SIDEBAR_MIN_WIDTH = 1220

# Elements of the article that stick out past the right edge of the screen with no ancestor
# that scrolls them in its own box (overflow auto/scroll). A box that hides the overflow
# counts as sticking out: the reader cannot see the rest.
STICKING_OUT = """() => {
  const width = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll("article *")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= width + 1) continue;
    let a = el.parentElement, boxed = false;
    for (; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a), box = a.getBoundingClientRect();
      if (["auto", "scroll"].includes(s.overflowX) && box.right <= width + 1) { boxed = true; break; }
    }
    if (!boxed) out.push(`${el.tagName.toLowerCase()}.${el.getAttribute("class") || ""} right=${Math.round(r.right)}`);
  }
  return out;
}"""


def sticking_out(page) -> list[str]:
    return page.evaluate(STICKING_OUT)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_term_pages_fit_the_screen_and_every_section_is_reachable(browser, base_url, width, scheme):  # noqa: F811
    phone = width < 600
    context = browser.new_context(viewport={"width": width, "height": 844}, color_scheme=scheme,
                                  is_mobile=phone, has_touch=phone)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for tid in TERMS:
        page.goto(base_url + f"terms/{tid}/")
        expected = "slate" if scheme == "dark" else "default"
        assert page.evaluate("document.body.getAttribute('data-md-color-scheme')") == expected
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        assert sticking_out(page) == [], tid
        if scheme == "light":
            full_screenshot(page, ARTIFACTS / f"term-{tid}-{'phone' if phone else 'desktop'}.png")
        # A section link the reader can see and use: Material's contents sidebar on a wide
        # screen, the page's own folded "On this page" below that width.
        onpage = page.locator("details.termlab-onpage")
        if width < SIDEBAR_MIN_WIDTH:
            assert onpage.is_visible()
            onpage.locator("summary").click()
            link = onpage.locator('a[href$="#connected-terms"]')
        else:
            assert not onpage.is_visible()
            link = page.locator('.md-sidebar--secondary a[href$="#connected-terms"]')
        assert link.is_visible(), (tid, width)
        link.click()
        page.wait_for_function("location.hash === '#connected-terms'")
        page.wait_for_timeout(100)
        top = page.evaluate("document.getElementById('connected-terms').getBoundingClientRect().top")
        assert 0 <= top < 844, (tid, top)
        # The path goes on from every page: previous and/or next, visible and followed.
        nav = page.locator("nav.termlab-pathnav")
        nav.scroll_into_view_if_needed()
        assert nav.is_visible()
        step = nav.locator(".termlab-next a, .termlab-prev a").first
        target = step.get_attribute("data-term")
        # (followed by its address: on a touch screen a first tap previews a term link)
        page.goto(urljoin(page.url, step.get_attribute("href")))
        assert page.url.endswith(f"/terms/{target}/")
        assert page.locator("article h1").first.is_visible()
    assert errors == []
    context.close()


def test_wide_display_math_scrolls_in_its_own_box_on_a_phone(browser, base_url):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(base_url + "terms/transformer/")
    # The glossary's formulas now fit a phone; make the first one six times as long, as an
    # author's long formula would be, and check that its box scrolls instead of cutting it.
    page.evaluate("""() => { const m = document.querySelector('article .termlab-math math');
        const parts = [...m.children];
        for (let i = 0; i < 5; i++) parts.forEach(c => m.appendChild(c.cloneNode(true))); }""")
    boxes = page.evaluate("""[...document.querySelectorAll('article .termlab-math')].map(d => ({
        scroll: d.scrollWidth, client: d.clientWidth, overflow: getComputedStyle(d).overflowX,
        math: d.querySelector('math').getBoundingClientRect().width}))""")
    wide = [b for b in boxes if b["scroll"] > b["client"] + 1]
    assert wide, "a formula wider than the phone exists (else this test shows nothing)"
    for box in wide:
        assert box["overflow"] == "auto" and box["math"] >= box["scroll"] - 1, box  # all of it, scrollable
    page.locator(".termlab-math").first.evaluate("d => d.scrollLeft = d.scrollWidth")
    assert page.locator(".termlab-math").first.evaluate("d => d.scrollLeft") > 0
    context.close()


def test_asides_use_body_size_type(browser, base_url):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(base_url + "terms/dropout/")
    sizes = page.evaluate("""() => {
        const size = sel => parseFloat(getComputedStyle(document.querySelector(sel)).fontSize);
        return {body: size('article .termlab-lead ~ p, article h2 ~ p'), tip: size('article .admonition.tip p'),
                quiz: size('article details.question summary')};
    }""")
    assert sizes["tip"] >= sizes["body"] - 0.5 and sizes["quiz"] >= sizes["body"] - 0.5, sizes
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_lists_of_other_pages_fold_on_a_phone_and_open_by_heading_link_or_search(browser, base_url, scheme):  # noqa: F811
    """Connected terms and references start folded under their heading on a phone (a disclosure
    button: click, keyboard), open from the page's contents and from find-in-page; on a wide
    screen they are open and their headings are plain headings."""
    for width in (390, 1280):
        phone = width < 600
        context = browser.new_context(viewport={"width": width, "height": 844}, color_scheme=scheme,
                                      is_mobile=phone, has_touch=phone)
        page = context.new_page()
        page.goto(base_url + "terms/dropout/")
        for section in ("connected-terms", "references"):
            button = page.locator(f"h2#{section} > button.termlab-fold")
            body = page.locator(f"#{section}-section")
            if not phone:
                assert button.count() == 0 and page.locator(f"h2#{section} + *").is_visible()
                continue
            assert button.get_attribute("aria-expanded") == "false" and not body.is_visible()
            assert button.get_attribute("aria-controls") == f"{section}-section"
            button.focus()
            page.keyboard.press("Enter")
            assert button.get_attribute("aria-expanded") == "true" and body.is_visible()
            button.click()
            assert not body.is_visible()
        if phone:  # the page's contents open a folded section; so does find-in-page (until-found)
            page.locator("details.termlab-onpage summary").click()
            page.locator('details.termlab-onpage a[href$="#references"]').click()
            page.wait_for_function("location.hash === '#references'")
            assert page.locator("#references-section").is_visible()
            assert page.locator("#connected-terms-section").get_attribute("hidden") == "until-found"
            page.evaluate("document.getElementById('connected-terms-section')"
                          ".dispatchEvent(new Event('beforematch'))")
            assert page.locator("#connected-terms-section li").first.is_visible()
        context.close()
