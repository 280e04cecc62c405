"""Math and search in Chromium, at desktop (1280 px) and phone (390 px) width: every construct the
shipped glossary uses draws (nothing cut, brackets stretch, inline math never wraps), a typo finds
its term, a result shows the term's summary, and the search index holds no run-together tab labels.
Screenshots of the transformer page's math (light, dark) go to test-artifacts/."""

from __future__ import annotations

import html
import json
import re

import pytest
import yaml
from tools import ARTIFACTS, ROOT

from generator.text.mathml import to_mathml
from generator.text.safety import MATH_SPAN

WIDTHS = [1280, 390]


def _glossary_formulas() -> list[tuple[str, str]]:
    found: dict[tuple[str, str], None] = {}

    def walk(value):
        if isinstance(value, str):
            for m in MATH_SPAN.finditer(value):
                block = m.group(0).startswith("$$")
                latex = html.unescape(m.group(0)[2:-2].strip() if block else m.group(1))
                found[(latex, "block" if block else "inline")] = None
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in sorted((ROOT / "glossary").glob("*.yaml")):
        walk(yaml.safe_load(path.read_text("utf-8")))
    return list(found)


def _context(browser, width, scheme="light"):  # noqa: F811
    phone = width < 600
    return browser.new_context(viewport={"width": width, "height": 844 if phone else 900},
                               is_mobile=phone, has_touch=phone, color_scheme=scheme)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_glossary_formula_draws(browser, base_url, width):  # noqa: F811
    """All of the glossary's formulas, in a page of the built site (its CSS and math font)."""
    formulas = _glossary_formulas()
    assert len(formulas) > 100
    context = _context(browser, width)
    page = context.new_page()
    page.goto(base_url + "terms/dropout/")
    body = "".join(f'<p class="probe">Text before {to_mathml(latex, "inline")} and after, wrapping '
                   "onto more lines as a paragraph does.</p>" if display == "inline" else
                   f'<div class="termlab-math probe">{to_mathml(latex, "block")}</div>'
                   for latex, display in formulas)
    page.evaluate("(html) => { document.querySelector('article').innerHTML = html; }", body)
    page.evaluate("document.fonts.ready")
    report = page.evaluate("""() => {
      const out = {font: document.fonts.check('16px "Noto Sans Math"'), wrapped: [], cut: [], empty: []};
      document.querySelectorAll('.probe math').forEach((m, i) => {
        const r = m.getBoundingClientRect();
        if (r.width < 1 || r.height < 1) out.empty.push(i);
        if (m.getAttribute('display') !== 'block') {
          // one line box: every token's vertical middle within the math box's own height
          const tops = [...m.querySelectorAll('mi, mn, mo')].map(e => e.getBoundingClientRect());
          if (m.getClientRects().length !== 1 || tops.some(t => t.top > r.bottom || t.bottom < r.top))
            out.wrapped.push(m.textContent);
        } else {
          const box = m.parentElement;
          // wider than its box: the box must scroll, not cut (and not widen the page)
          if (box.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX !== 'auto')
            out.cut.push(m.textContent);
        }
      });
      out.pageWider = document.documentElement.scrollWidth > window.innerWidth + 1;
      return out;
    }""")
    page.screenshot(path=ARTIFACTS / f"math-all-{width}.png", full_page=False)
    context.close()
    assert report["font"], "the math font did not load"
    assert report["empty"] == [] and report["wrapped"] == [] and report["cut"] == [], report
    assert not report["pageWider"]


@pytest.mark.parametrize("width", WIDTHS)
def test_stretchy_brackets_stretch(browser, base_url, width):  # noqa: F811
    context = _context(browser, width)
    page = context.new_page()
    page.goto(base_url + "terms/dropout/")
    cases = [r"\left( \frac{a}{b} \right)", r"\left\lVert \frac{\partial L}{\partial w} \right\rVert",
             r"\left[ \sum_{i=1}^{n} x_i \right]"]
    body = "".join(f'<p class="probe">x {to_mathml(c, "inline")} y</p>'
                   f'<div class="termlab-math probe">{to_mathml(c, "block")}</div>' for c in cases)
    body += f'<p class="plain">x {to_mathml("(x)", "inline")} y</p>'
    page.evaluate("(html) => { document.querySelector('article').innerHTML = html; }", body)
    page.evaluate("document.fonts.ready")
    plain, ratios = page.evaluate("""() => {
      const plain = document.querySelector('.plain mo').getBoundingClientRect().height;
      return [plain, [...document.querySelectorAll('.probe math')].map(m => {
        const line = parseFloat(getComputedStyle(m.closest('.probe')).lineHeight);
        const h = m.querySelector('mo[fence="true"]').getBoundingClientRect().height;
        return [m.getAttribute('display') === 'block', h / plain, h / line];
      })];
    }""")
    context.close()
    assert plain > 0
    for k, (display, per_plain, per_line) in enumerate(ratios):
        assert per_plain > (1.3 if display else 1.15), ratios   # taller than an unstretched bracket
        if display and k < 4:                                     # around a display fraction
            assert per_line > 1.3, ratios


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_transformer_math_screenshots(browser, base_url, scheme):  # noqa: F811
    context = _context(browser, 1280, scheme)
    page = context.new_page()
    page.goto(base_url + "terms/transformer/")
    block = page.locator("article .termlab-math").first
    block.scroll_into_view_if_needed()
    page.evaluate("document.fonts.ready")
    assert page.evaluate("document.fonts.check('16px \"Noto Sans Math\"')")
    page.screenshot(path=ARTIFACTS / f"transformer-math-{scheme}.png")
    context.close()


def _search(page, base_url, query):  # noqa: F811
    page.goto(base_url)
    if page.viewport_size["width"] >= 960:  # Material's breakpoint for the search box in the header
        page.locator(".md-search__input").click()
    else:  # phone: the header's search button opens the search
        page.locator('label.md-header__button[for="__search"]').click()
    page.locator(".md-search__input").press_sequentially(query, delay=40)
    page.wait_for_selector('.md-search-result__meta:not(:has-text("Initializing"))', timeout=30000)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("query,term", [("overfiting", "Overfitting"), ("dropuot", "Dropout")])
def test_a_typo_finds_its_term(browser, base_url, width, query, term):  # noqa: F811
    context = _context(browser, width)
    page = context.new_page()
    _search(page, base_url, query)
    link = page.locator(".termlab-didyoumean a", has_text=term)
    link.wait_for(timeout=10000)
    page.screenshot(path=ARTIFACTS / f"search-typo-{query}-{width}.png")
    # keyboard: the arrow key reaches the suggestion from the search box, Enter follows it
    page.locator(".md-search__input").press("ArrowDown")
    assert page.evaluate("document.activeElement.closest('.termlab-didyoumean') !== null")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/terms/[a-z-]+/$"))
    assert page.locator("article h1").first.inner_text().startswith(term)
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_result_shows_the_summary(browser, base_url, width):  # noqa: F811
    context = _context(browser, width)
    page = context.new_page()
    _search(page, base_url, "dropout")
    names = page.evaluate("fetch('search/names.json').then(r => r.json())")
    summary = next(t["summary"] for t in names["terms"] if t["name"] == "Dropout")
    item = page.locator(".md-search-result__item").filter(has_text="Dropout").first
    item.wait_for(timeout=10000)
    page.wait_for_function("(s) => document.querySelector('.md-search-result__list').innerText.includes(s)",
                           arg=summary[:50], timeout=10000)
    assert summary[:50] in item.inner_text()
    page.screenshot(path=ARTIFACTS / f"search-summary-{width}.png")
    context.close()


def test_index_holds_no_tab_labels_tables_or_code(real_site):
    index = json.loads((real_site / "search" / "search_index.json").read_text("utf-8"))
    text = " ".join(d["text"] for d in index["docs"])
    assert index["docs"] and "In plain words" in (real_site / "terms/dropout/index.html").read_text()
    assert "wordsPrecisely" not in text and "In plain words" not in text
    assert "Metric Value" not in text                 # the measured-numbers table
    assert "gap_dropout" not in text                  # a claim's numbers
    assert "def run(" not in text                     # code
    # The A–Z home page repeats every summary the term pages hold: it stays out of the index
    # (at 10,000 terms it was most of the index and of a serve rebuild's indexing time)
    assert not any(d["location"].split("#")[0] == "" for d in index["docs"])
    assert any(d["location"].startswith("terms/dropout/") for d in index["docs"])
