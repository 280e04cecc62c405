"""Every page type of the real site passes an automated WCAG 2 A/AA audit (axe-core 4, from npm,
injected by Playwright into Chromium), in the light and the dark scheme, at desktop and phone width.

Each page is audited as it loads and again with everything termlab opens on demand open (the
"Sanity checks" and other collapsed boxes, quiz answers, a hover preview), so what a reader can
reach is audited too. A failure lists every violation with its rule, its selector and axe's
summary; the full results go to test-artifacts/a11y/ for a human to read.
"""

from __future__ import annotations

import json
import re

import pytest
from tools import ARTIFACTS, AXE, require

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PAGES = {
    "home": "",
    "dropout": "terms/dropout/",
    "transformer": "terms/transformer/",
    "weight-decay": "terms/weight-decay/",
    "batch-normalization": "terms/batch-normalization/",
    "overfitting": "terms/overfitting/",
    "category": "categories/deep-learning/",
    "categories": "categories/",
    "learning-path": "path/",
    "study": "study/",
    "concept-map": "map/",
    "about": "about/",
    "not-found": "404.html",
}
SCHEMES = {"light": "default", "dark": "slate"}
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}

# Open what a reader can open: collapsed boxes (Sanity checks, quiz answers, demo source, "Run it in
# your browser", audited once its models ran and its sliders are there) and,
# by keyboard focus, the hover preview of the first visible term link in the article.
OPEN_EVERYTHING = """async () => {
  for (const d of document.querySelectorAll('article details')) d.open = true;
  const link = [...document.querySelectorAll('article a.termlab-term[data-term]')]
    .find(a => a.checkVisibility());
  if (link) link.focus();
  return !!link;
}"""


def run_axe(page) -> list[dict]:
    """axe's violations on the page as it is now (WCAG 2.0/2.1 A and AA rules only)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags},"
                           " resultTypes: ['violations']})", TAGS)
    return result["violations"]


def audit(page, url: str, scheme: str) -> tuple[list[dict], dict]:
    """Load ``url`` in ``scheme``, audit it as loaded and with everything opened.

    Returns the violations (merged, each node once) and a summary for the report."""
    page.goto(url, wait_until="load")
    if page.locator(".termlab-map").count():  # the concept map is inlined after load: audit it drawn
        page.locator(".termlab-map[data-ready]").wait_for(timeout=10_000)
    shown = page.evaluate("() => document.body.getAttribute('data-md-color-scheme')")
    assert shown == SCHEMES[scheme], f"{url}: the page shows scheme {shown!r}, not {scheme}"
    violations = run_axe(page)
    if page.evaluate(OPEN_EVERYTHING):
        page.locator(".termlab-preview:not([hidden])").wait_for(timeout=5000)
    if page.locator("details.termlab-live").count():  # "Run it in your browser": audited with its results
        page.locator("details.termlab-live[data-done]").wait_for(timeout=60_000)
    for extra in run_axe(page):
        same = next((v for v in violations if v["id"] == extra["id"]), None)
        if same is None:
            violations.append(extra)
            continue
        seen = {json.dumps(n["target"]) for n in same["nodes"]}
        same["nodes"] += [n for n in extra["nodes"] if json.dumps(n["target"]) not in seen]
    return violations, {v["id"]: len(v["nodes"]) for v in violations}


def describe(violations: list[dict]) -> list[str]:
    """One line per failing node: rule id, impact, selector and the first line of axe's advice."""
    lines = []
    for v in violations:
        for node in v["nodes"]:
            selector = " >> ".join(" ".join(t) if isinstance(t, list) else t for t in node["target"])
            advice = (node.get("failureSummary") or "").splitlines()
            hint = advice[1].strip() if len(advice) > 1 else v["help"]
            lines.append(f"{v['id']} ({v['impact']}): {selector} — {hint}")
    return lines


@pytest.fixture(scope="module")
def axe_available():
    require(AXE.is_file(), "npm package axe-core")


@pytest.mark.browser
@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("name", list(PAGES))
def test_page_has_no_wcag_violations(browser, base_url, axe_available, name, scheme, width):
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, color_scheme=scheme,
                                  is_mobile=width == "phone", has_touch=width == "phone")
    page = context.new_page()
    try:
        violations, counts = audit(page, base_url + PAGES[name], scheme)
    finally:
        context.close()
    out = ARTIFACTS / "a11y"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}-{scheme}-{width}.json").write_text(json.dumps(violations, indent=1), "utf-8")
    lines = describe(violations)
    assert not lines, (f"{len(lines)} WCAG A/AA violation(s) on {PAGES[name] or '/'} ({scheme}, {width}; "
                       f"per rule {counts}):\n" + "\n".join(lines))


def test_describe_names_rule_and_selector():
    """The failure message carries what a reader of the test output needs to find the node."""
    violation = {"id": "color-contrast", "impact": "serious", "help": "contrast",
                 "nodes": [{"target": [".md-footer p"],
                            "failureSummary": "Fix any of the following:\n  Element has insufficient contrast"}]}
    (line,) = describe([violation])
    assert re.fullmatch(r"color-contrast \(serious\): \.md-footer p — Element has insufficient contrast", line)


@pytest.mark.browser
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_links_in_prose_are_underlined(browser, base_url, scheme):
    """A prose paragraph's term links carry an underline in both schemes (not colour alone), and
    keep their colour on focus; the paragraph is saved as a screenshot for a human to look at."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(base_url + "terms/dropout/")
        found = page.evaluate("""() => {  // the first visible paragraph with two term links or more
            const p = [...document.querySelectorAll('article p')].find(p =>
                p.checkVisibility() && p.querySelectorAll('a.termlab-term').length >= 2);
            if (p) p.setAttribute('data-probe', '');
            return !!p;
        }""")
        assert found, "no visible paragraph with two term links on the dropout page"
        paragraph = page.locator("article p[data-probe]")
        paragraph.scroll_into_view_if_needed()
        styles = paragraph.evaluate("""p => [...p.querySelectorAll('a')].map(a => {
            const s = getComputedStyle(a);
            return [a.textContent, s.textDecorationLine, s.color, getComputedStyle(p).color];
        })""")
        assert len(styles) >= 2, styles
        for text, line, colour, text_colour in styles:
            assert line == "underline", (text, line)
            assert colour != text_colour, (text, "a link is also coloured")
        before = styles[0][2]
        paragraph.locator("a").first.focus()
        assert paragraph.locator("a").first.evaluate("a => getComputedStyle(a).color") == before
        paragraph.locator("a").first.blur()
        page.mouse.move(1, 1)
        paragraph.screenshot(path=ARTIFACTS / f"a11y-prose-links-{scheme}.png")
    finally:
        context.close()
