"""Issue 16: "Listen" reads a term's summary and plain-words explanation aloud with the
browser's speech synthesis (stubbed here: the test checks what it is asked to say)."""

from __future__ import annotations

import pytest

STUB = """
window.__spoken = [];
window.__calls = [];
window.SpeechSynthesisUtterance = function (text) { this.text = text; };
Object.defineProperty(window, 'speechSynthesis', {configurable: true, value: {
  speak(u) { window.__spoken.push(u.text); window.__calls.push('speak'); window.__last = u; },
  pause() { window.__calls.push('pause'); }, resume() { window.__calls.push('resume'); },
  cancel() { window.__calls.push('cancel'); },
}});
"""


@pytest.fixture
def listen_site(project):
    project.term("dropout", summary="Zeroes random units <b>while</b> training.",
                 levels={"basic": "Each step, some units are switched off at random.",
                         "formal": "A Bernoulli mask with keep probability $1-p$."})
    project.build(strict=True)
    return project


def test_the_page_carries_the_listen_box_hidden_until_speech_is_there(listen_site):
    page = listen_site.html("terms/dropout/index.html")
    assert '<div class="termlab-listen" data-search-exclude hidden><button type="button" class="md-button" ' \
           'data-listen="play">Listen</button>' in page
    assert "termlab-listen.js" in page


@pytest.mark.parametrize("width,scheme", [(1280, "light"), (390, "dark")])
def test_listen_reads_the_summary_and_the_plain_words(listen_site, browser, width, scheme):
    from tools import serve

    with serve(listen_site.root / "site") as base:
        context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
        context.add_init_script(STUB)
        page = context.new_page()
        page.goto(base + "terms/dropout/")
        play = page.locator(".termlab-listen [data-listen=play]")
        play.wait_for(state="visible")
        play.focus()
        page.keyboard.press("Enter")
        spoken = page.evaluate("window.__spoken")
        assert spoken == ["Zeroes random units <b>while</b> training. "
                          "Each step, some units are switched off at random."]
        assert play.inner_text() == "Pause"
        play.click()
        assert play.inner_text() == "Resume" and page.evaluate("window.__calls").count("pause") == 1
        play.click()
        assert play.inner_text() == "Pause"
        page.locator(".termlab-listen [data-listen=stop]").click()
        assert play.inner_text() == "Listen"
        assert page.locator(".termlab-listen [role=status]").inner_text() == "Stopped"
        context.close()


def test_listen_stays_hidden_where_the_browser_cannot_speak(listen_site, browser):
    from tools import serve

    with serve(listen_site.root / "site") as base:
        context = browser.new_context()
        context.add_init_script("Object.defineProperty(window, 'speechSynthesis', "
                                "{configurable: true, value: undefined});")
        page = context.new_page()
        page.goto(base + "terms/dropout/")
        page.wait_for_load_state("load")
        assert page.locator(".termlab-listen").is_hidden()
        context.close()
