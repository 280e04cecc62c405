"""Issue 16, part 3: a term's questions as a scored self-test, and read / tested ticks on the
learning path, kept in the browser (localStorage)."""

from __future__ import annotations

import pytest


@pytest.fixture
def quiz_site(project):
    project.term("overfitting", "Overfitting", summary="Fitting noise.",
                 questions=[{"q": "What is <b>overfitting</b>?", "a": "Fitting noise."},
                            {"q": "How to spot it?", "a": "A validation gap."}])
    project.term("ridge", "Ridge", summary="An L2 penalty.", prerequisites=["overfitting"])
    project.build(strict=True)
    return project


def test_without_javascript_the_questions_stay_foldable_boxes(quiz_site):
    page = quiz_site.html("terms/overfitting/index.html")
    quiz = page.split('<div class="termlab-quiz" data-term="overfitting">', 1)[1].split("</div>", 1)[0]
    assert quiz.count('<details class="question">') == 2
    assert "What is &lt;b&gt;overfitting&lt;/b&gt;?" in quiz


@pytest.mark.parametrize("width,scheme", [(1280, "light"), (390, "dark")])
def test_a_self_test_round_scores_persists_and_ticks_the_path(quiz_site, browser, width, scheme):
    from tools import site_page

    with site_page(browser, quiz_site.root / "site", width, scheme) as (page, base):
        page.goto(base + "path/")
        assert page.locator(".termlab-progress").count() == 0  # nothing read yet
        page.goto(base + "terms/overfitting/")
        questions = page.locator(".termlab-quiz details")
        questions.nth(0).locator("summary").click()
        questions.nth(0).get_by_role("button", name="I knew it").click()
        score = page.locator(".termlab-quiz-score")
        assert score.inner_text() == "Score: 1 of 2 known (1 to go)"
        questions.nth(1).locator("summary").focus()
        page.keyboard.press("Enter")  # by keyboard too
        questions.nth(1).get_by_role("button", name="Not yet").focus()
        page.keyboard.press("Enter")
        assert score.inner_text() == "Score: 1 of 2 known"
        assert questions.nth(0).get_by_role("button", name="I knew it").get_attribute("aria-pressed") == "true"
        page.reload()
        assert page.locator(".termlab-quiz-score").inner_text() == "Score: 1 of 2 known"  # kept
        page.goto(base + "terms/ridge/")  # read, not tested
        page.goto(base + "path/")
        ticks = dict(zip(page.locator(".termlab-progress").evaluate_all(
            "els => els.map(e => e.previousElementSibling.textContent)"),
            page.locator(".termlab-progress").all_inner_texts(), strict=True))
        assert ticks == {"Overfitting": "✓ read · tested", "Ridge": "✓ read"}
        page.goto(base + "terms/overfitting/")
        page.get_by_role("button", name="Start again").click()
        assert page.locator(".termlab-quiz-score").inner_text() == ""
