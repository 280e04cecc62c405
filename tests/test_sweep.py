"""Figures with a slider over a parameter the run swept (``demo.sweep``): the default frame
without script, one frame per value (repeats stored once), the frame's numbers, hostile labels
kept as text; a slider moved by mouse or keyboard swaps frame and numbers in a real browser."""

from __future__ import annotations

import gzip
import json

import pytest
from mkdocs.exceptions import Abort
from test_demo_section import parse

SWEEP = '''
import numpy as np

VALUES = [0.0, 0.5, 1.0, 2.0]


def run(demo):
    demo.metric("slope", 1.0, label="Slope")

    @demo.sweep("fit", VALUES, label="<b>weight</b> *λ*", caption="The line for each λ.",
                alt="A line through the data", default=2, fmt=".1f",
                notice="The line flattens as λ grows.",
                numbers=lambda k: [demo.number(1 / (1 + VALUES[k]), "slope <i>kept</i>", ".3f"),
                                   demo.number(VALUES[k] ** 2, "penalty", ".2f")])
    def _(fig, k):
        ax = fig.subplots()
        x = np.linspace(0, 1, 5)
        # frames 0 and 1 draw the same line (a repeat, stored once)
        ax.plot(x, x / (1 + VALUES[max(k, 1)]))
        ax.set_ylim(0, 1)
        ax.set_xlabel("input")
'''


@pytest.fixture(scope="module")
def sweep_site(tmp_path_factory):
    from conftest import CATEGORIES, Project

    project = Project(tmp_path_factory.mktemp("sweep"))
    project.write("glossary/_categories.yaml", CATEGORIES)
    project.write("demos/swept.py", SWEEP)
    project.term("swept-term", demo="swept")
    project.build(strict=True)
    return project


def _figure(page):
    return next(f for f in page.find_all("figure") if f.find_all(cls="termlab-sweep"))


def test_the_page_shows_the_default_frame_its_numbers_and_a_slider_left_to_script(sweep_site):
    page = parse(sweep_site.html("terms/swept-term/index.html"))
    figure = _figure(page)
    imgs = figure.find_all("img")
    assert [i.attrs["src"] for i in imgs] == ["fit-2-light.svg#only-light", "fit-2-dark.svg#only-dark"]
    assert imgs[0].attrs["alt"] == "A line through the data; <b>weight</b> λ 1.0."  # alt text is plain
    control = figure.find_all(cls="termlab-sweep-control")[0]
    assert "hidden" in control.attrs  # no script: no slider that does nothing
    slider = control.find_all("input")[0]
    assert {k: slider.attrs[k] for k in ("type", "min", "max", "value")} == \
        {"type": "range", "min": "0", "max": "3", "value": "2"}
    label = control.find_all("label")[0]
    assert label.attrs["for"] == slider.attrs["id"] and label.text() == "<b>weight</b> *λ*"
    assert not figure.find_all("b") and not figure.find_all("i") and not figure.find_all("em")
    readout = figure.find_all(cls="termlab-sweep-readout")[0]
    assert readout.attrs["aria-live"] == "polite"
    assert " ".join(readout.text().split()) == "<b>weight</b> *λ* 1.0 slope <i>kept</i> 0.500 penalty 1.00"
    frames = figure.find_all(cls="termlab-sweep-frames")[0].find_all("li")
    assert [f.attrs["data-value"] for f in frames] == ["0.0", "0.5", "1.0", "2.0"]
    assert [f.attrs["data-n0"] for f in frames] == ["1.000", "0.667", "0.500", "0.333"]
    assert [f.attrs["data-light"] for f in frames] == ["fit-0-light.svg", "fit-0-light.svg",  # a repeat
                                                       "fit-2-light.svg", "fit-3-light.svg"]
    assert frames[3].attrs["data-alt"] == "A line through the data; <b>weight</b> λ 2.0."
    notice = figure.find_all(cls="termlab-notice")[0].text()
    assert notice == "What to notice: The line flattens as λ grows."


def test_frames_are_files_of_the_site_and_a_repeated_frame_is_stored_once(tmp_path):
    from generator.demo.runtime.context import DemoContext

    ctx = DemoContext("swept", tmp_path)
    namespace: dict = {}
    exec(compile(SWEEP, "swept.py", "exec"), namespace)
    namespace["run"](ctx)
    slider = ctx.outputs.figures[0].slider
    assert slider.frames[1] == slider.frames[0] == ["fit-0-light.svg", "fit-0-dark.svg"]  # drawn alike
    assert not (tmp_path / "fit-1-light.svg").exists() and (tmp_path / "fit-3-dark.svg").exists()
    assert ctx.outputs.figures[0].files() == ["fit-2-light.svg", "fit-2-dark.svg", "fit-0-light.svg",
                                              "fit-0-dark.svg", "fit-3-light.svg", "fit-3-dark.svg"]
    audit = DemoContext("swept", tmp_path / "audit", audit=True)
    namespace["run"](audit)
    assert audit.outputs.figures == []  # an audit's run draws nothing


def test_terms_json_lists_each_frame(sweep_site):
    data = json.loads(sweep_site.html("terms.json"))
    fig = next(t for t in data["terms"] if t["id"] == "swept-term")["demo"]["figures"][0]
    slider = fig["slider"]
    assert slider["label"] == "<b>weight</b> *λ*" and slider["default"] == 2
    assert [f["value"] for f in slider["frames"]] == ["0.0", "0.5", "1.0", "2.0"]
    assert slider["frames"][0]["numbers"] == {"slope <i>kept</i>": "1.000", "penalty": "0.00"}
    for frame in slider["frames"]:
        assert (sweep_site.root / "site" / frame["light"].lstrip("/")).is_file(), frame


BAD = {
    "labels": ('    @demo.sweep("f", [1, 2], label="a", caption="c", alt="a",\n'
               '                numbers=lambda k: [demo.number(k, "x" if k else "y")])\n',
               "demos/bad.py:3:", "frame 1 gives the numbers ['x'], frame 0 gives ['y']"),
    "default": ('    @demo.sweep("f", [1, 2, 3], label="a", caption="c", alt="a", default=3)\n',
                "demos/bad.py:3:", "default=3 is not the index of one of its 3 values (0 to 2)"),
    "one value": ('    @demo.sweep("f", [1], label="a", caption="c", alt="a")\n',
                  "demos/bad.py:3:", "sweep 'f' needs 2 to 41 values, got 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_sweep_fails_naming_the_demo_line_and_the_fix(project, caplog_mkdocs, case):
    call, where, message = BAD[case]
    project.term("t", demo="bad")
    project.write("demos/bad.py", "\ndef run(demo):\n" + call + "    def _(fig, k):\n        fig.subplots()\n")
    with pytest.raises(Abort):
        project.build(strict=True)
    assert where in caplog_mkdocs.text and message in caplog_mkdocs.text, caplog_mkdocs.text


def test_the_shipped_sliders_stay_small(real_site):
    """Each slider of the real site: at least 10 pages have one, and its frames (light and dark)
    add at most 300 KB gzipped."""
    data = json.loads((real_site / "terms.json").read_text())
    sizes = {}
    for term in data["terms"]:
        for fig in (term["demo"] or {}).get("figures", []):
            if fig.get("slider"):
                files = {f[t] for f in fig["slider"]["frames"] for t in ("light", "dark")}
                sizes[f"{term['id']}/{fig['name']}"] = sum(
                    len(gzip.compress((real_site / f.lstrip("/")).read_bytes(), 9)) for f in files)
    pages = {k.split("/")[0] for k in sizes}
    assert len(pages) >= 10, sorted(sizes)
    assert max(sizes.values()) <= 300_000, sizes


def _slider_pages(real_site) -> list[str]:
    return sorted(p.parent.name for p in (real_site / "terms").glob("*/index.html")
                  if 'class="termlab-sweep"' in p.read_text())


@pytest.mark.browser
@pytest.mark.parametrize("width,scheme", [(1280, "light"), (390, "dark")])
def test_moving_a_slider_changes_the_figure_and_the_numbers_on_every_page_that_has_one(
        browser, real_site, width, scheme):
    from tools import ARTIFACTS, site_page

    pages = _slider_pages(real_site)
    assert len(pages) >= 10, pages
    with site_page(browser, real_site, width, scheme) as (page, base):
        for tid in pages:
            page.goto(f"{base}terms/{tid}/", wait_until="load")
            for box in page.locator(".termlab-sweep").all():
                figure = box.locator("xpath=ancestor::figure[1]")
                img = figure.locator(f"img[src*='#only-{scheme}']")
                slider = box.locator("input[type=range]")
                assert slider.is_visible(), tid  # the script showed the control
                assert box.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), tid  # nothing overflows
                before = (img.get_attribute("src"), box.locator(".termlab-sweep-readout").inner_text())
                last = int(slider.get_attribute("max"))
                start = int(slider.get_attribute("value"))
                slider.focus()
                page.keyboard.press("Home" if start else "End")  # by keyboard
                after = (img.get_attribute("src"), box.locator(".termlab-sweep-readout").inner_text())
                assert after[1] != before[1], (tid, before, after)
                assert after[0] != before[0] or _same_frame(box, start, 0 if start else last), tid
                img.evaluate("i => i.complete || new Promise(r => i.onload = r)")
                assert img.evaluate("i => i.naturalWidth") > 0, (tid, after[0])  # the frame loaded
                assert slider.get_attribute("aria-valuetext").endswith(
                    box.locator("output").inner_text()), tid
            if tid in ("weight-decay", "dropout"):
                box = page.locator(".termlab-sweep").first
                box.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / f"slider-{tid}-{width}-{scheme}.png"))
        assert not page.errors, page.errors


def _same_frame(box, a: int, b: int) -> bool:
    """Whether two frames are one stored file (a frame that repeats another)."""
    items = box.locator(".termlab-sweep-frames li")
    return items.nth(a).get_attribute("data-light") == items.nth(b).get_attribute("data-light")


@pytest.mark.browser
def test_a_slider_moved_by_pointer_on_a_tiny_site_swaps_frames(browser, sweep_site):
    from tools import site_page

    with site_page(browser, sweep_site.root / "site", 390, "light") as (page, base):
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(base + "terms/swept-term/", wait_until="load")
        assert not [u for u in requested if "fit-3-" in u]  # other frames load only when asked for
        slider = page.locator(".termlab-sweep input[type=range]")
        slider.wait_for(state="visible")  # the script showed it
        slider.scroll_into_view_if_needed()
        box = slider.bounding_box()
        page.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
        img = page.locator("figure img[src*='#only-light']").last
        assert img.get_attribute("src") == "fit-3-light.svg#only-light"
        assert img.get_attribute("alt").endswith("</b> λ 2.0.")
        assert page.locator(".termlab-sweep [data-n='0']").inner_text() == "0.333"
        assert page.locator(".termlab-sweep output").inner_text() == "2.0"
        page.keyboard.press("ArrowLeft")
        assert page.locator(".termlab-sweep output").inner_text() == "1.0"
        assert not page.errors, page.errors
