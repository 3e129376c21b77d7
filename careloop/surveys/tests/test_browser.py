"""The designer and the questionnaire form in a real Chromium (Playwright)."""

from __future__ import annotations

import json
import shutil

import pytest
from django.test import Client

from careloop.surveys import services
from careloop.surveys.tests.factories import make_questionnaire

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(10_000)
        yield page
        context.close()
        browser.close()


def login(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def test_doctor_designs_and_publishes_a_questionnaire(browser_page, live_server, hospital):
    page = browser_page
    questionnaire = services.create_questionnaire(
        title="心衰随访", department=hospital.cardio, acting_user=hospital.dave
    )
    login(page, live_server, hospital.dave)
    page.goto(f"{live_server.url}/surveys/{questionnaire.pk}/edit/")

    # Question 1: a yes/no question with an abnormal answer.
    page.click("#add-question")
    page.fill("#dq-0-text", "最近一周有没有气短？")
    page.select_option("#dq-0-type", "yes_no")
    page.fill("#dq-0-key", "breathless")
    page.select_option("#dq-0-alert", "yes")
    # Question 2: a number shown only when question 1 is answered yes.
    page.click("#add-question")
    page.select_option("#dq-1-type", "number")
    page.fill("#dq-1-text", "每天体重增加了多少？")
    page.fill("#dq-1-key", "weight_gain")
    page.fill("#dq-1-min", "0")
    page.fill("#dq-1-max", "5")
    page.fill("#dq-1-unit", "kg")
    page.select_option("#dq-1-cond-key", "breathless")
    page.select_option("#dq-1-cond-value", "true")
    # Question 3: a single choice with scores; then moved to the top.
    page.click("#add-question")
    page.fill("#dq-2-text", "活动能力如何？")
    page.fill("#dq-2-key", "activity")
    page.fill("#dq-2-opt-0-label", "正常")
    page.fill("#dq-2-opt-0-score", "2")
    page.fill("#dq-2-opt-1-label", "稍差")
    page.click("#dq-2-add-option")
    page.fill("#dq-2-opt-2-label", "卧床")
    page.check("#dq-2-opt-2-alert")
    page.click("#dq-2-up")
    page.click("#dq-1-up")
    page.click("#save-draft")
    page.wait_for_url(f"**/surveys/{questionnaire.pk}/edit/")

    draft = questionnaire.versions.get()
    questions = draft.definition["questions"]
    assert [q["key"] for q in questions] == ["activity", "breathless", "weight_gain"]
    assert questions[0]["options"][2] == {"value": "3", "label": "卧床", "alert": True}
    assert questions[0]["options"][0]["score"] == 2
    assert questions[2]["show_if"] == {"key": "breathless", "op": "eq", "value": True}
    assert (questions[2]["min"], questions[2]["max"], questions[2]["unit"]) == (0, 5, "kg")
    assert draft.published_at is None

    # An invalid edit is reported on its question and not saved.
    page.fill("#dq-2-min", "9")
    page.click("#save-draft")
    page.wait_for_selector("#dq-2.has-error")
    assert "min" in page.inner_text("#dq-2 .dq-errors")
    assert questionnaire.versions.get().definition["questions"][2]["min"] == 0

    page.fill("#dq-2-min", "0")
    page.click("#publish")
    page.wait_for_url(f"**/surveys/{questionnaire.pk}/")
    assert questionnaire.current_version.number == 1
    assert page.locator("#version-1 .badge.published").count() == 1


def test_questionnaire_form_hides_skipped_questions_and_shows_server_errors(
    browser_page, live_server, hospital
):
    page = browser_page
    questionnaire = make_questionnaire(department=hospital.cardio)
    login(page, live_server, hospital.alice)
    page.goto(f"{live_server.url}/surveys/{questionnaire.pk}/preview/")

    follow_up = page.locator("#question-pain_level")
    assert follow_up.is_hidden()
    page.check("#id_q_chest_pain_0")  # yes
    assert follow_up.is_visible()
    page.check("#id_q_chest_pain_1")  # no
    assert follow_up.is_hidden()
    page.check("#id_q_chest_pain_0")

    # Required follow-up question left empty → the server's message appears under it.
    page.fill("#id_q_temperature", "36.5")
    page.click("#preview-submit")
    page.wait_for_selector("#error-pain_level")
    assert follow_up.is_visible()
    assert page.input_value("#id_q_temperature") == "36.5"  # answers kept

    page.check("#id_q_pain_level_7")
    page.check("#id_q_medication_0")
    page.click("#preview-submit")
    page.wait_for_selector("#preview-result")
    assert page.inner_text("#preview-score") == "2"
    assert "chest_pain" in page.inner_text("#preview-alerts")


def test_designer_loads_a_published_questionnaire_into_a_new_draft(
    browser_page, live_server, hospital
):
    page = browser_page
    questionnaire = make_questionnaire(department=hospital.cardio)
    login(page, live_server, hospital.dave)
    page.goto(f"{live_server.url}/surveys/{questionnaire.pk}/edit/")
    assert page.input_value("#dq-0-key") == "chest_pain"
    assert page.input_value("#dq-1-cond-key") == "chest_pain"
    page.fill("#dq-0-text", "近一周有没有胸痛？")
    page.click("#save-draft")
    page.wait_for_url(f"**/surveys/{questionnaire.pk}/edit/")
    v2 = questionnaire.versions.get(number=2)
    assert v2.definition["questions"][0]["text"] == "近一周有没有胸痛？"
    assert (
        json.dumps(questionnaire.versions.get(number=1).definition, ensure_ascii=False).count(
            "出院后是否有胸痛"
        )
        == 1
    )
