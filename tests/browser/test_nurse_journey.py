"""A cardiology nurse's morning in the demo hospital, in a real browser (F2.4, F1.5).

Log in through the form, open "My tasks", open a follow-up due today, read the script, fill the
questionnaire, record "reached", then find the contact on the patient's timeline.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext

from careloop.accounts.models import User
from careloop.demo import data
from careloop.demo.seed import seed_demo
from careloop.followup import states
from careloop.followup.choices import Outcome
from careloop.followup.models import FollowUpRecord, Task
from careloop.followup.queries import workspace_tasks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = "/tmp/careloop_nurse_journey.png"  # the patient's page at the end
FORM_SCREENSHOT = "/tmp/careloop_task_form.png"  # the filled task page before saving


def _zh(message: str) -> str:
    with translation.override("zh-hans"):
        return gettext(message)


def _fresh_task_due_today(nurse: User) -> Task:
    today = timezone.localdate()
    for task in workspace_tasks(nurse):
        if (
            task.current_status == states.DUE
            and task.window_start <= today <= task.deadline
            and task.attempts == 0
            and task.step.questionnaire is not None
        ):
            return task
    raise AssertionError("the demo gave nurse_cardio no fresh task due today")


def test_nurse_works_a_follow_up_due_today_and_sees_it_on_the_timeline(
    page: Any, live_server: Any
) -> None:
    from playwright.sync_api import expect

    seed_demo(patients=60)
    nurse = User.objects.get(username="nurse_cardio")
    task = _fresh_task_due_today(nurse)
    assert task.step.questionnaire.code == "pci"

    # Log in through the form.
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "nurse_cardio")
    page.fill("#id_password", data.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator("header .who")).to_contain_text(nurse.display_name)

    # My tasks: the task due today is in the queue.
    page.get_by_role("link", name=_zh("My tasks"), exact=True).click()
    page.wait_for_url(f"{live_server.url}/followup/")
    row = page.locator("#my-tasks tr", has=page.locator(f'a[href="/followup/tasks/{task.pk}/"]'))
    expect(row).to_contain_text(task.patient.name)
    expect(row).to_contain_text(task.step.title)
    row.locator(f'a[href="/followup/tasks/{task.pk}/"]').click()
    page.wait_for_url(f"{live_server.url}/followup/tasks/{task.pk}/")

    # The script and the questionnaire are on the task page.
    expect(page.locator("#script")).to_contain_text("您好")
    expect(page.locator("#outcome-form")).to_contain_text("出院后有没有出现胸痛、胸闷？")
    page.check('input[name="q_chest_pain"][value="none"]')
    expect(page.locator("#question-chest_pain_duration")).to_be_hidden()
    page.check('input[name="q_puncture_site"][value="normal"]')
    page.check('input[name="q_antiplatelet"][value="yes"]')
    page.fill('input[name="q_temperature"]', "36.6")
    page.fill('input[name="q_sbp"]', "128")
    page.fill('input[name="q_dbp"]', "78")
    page.check('input[name="q_recheck_booked"][value="yes"]')
    recheck = (timezone.localdate() + dt.timedelta(days=25)).isoformat()
    page.fill('input[name="q_recheck_date"]', recheck)
    page.fill('textarea[name="q_other"]', "无其他不适")
    page.check(f'input[name="outcome"][value="{Outcome.REACHED}"]')
    page.fill('textarea[name="note"]', "患者恢复良好，已提醒按时复查")
    page.screenshot(path=FORM_SCREENSHOT, full_page=True)
    page.click("#outcome-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/followup/")
    expect(page.locator(".messages")).to_be_visible()
    expect(page.locator(f'#my-tasks a[href="/followup/tasks/{task.pk}/"]')).to_have_count(0)

    task.refresh_from_db()
    assert task.status == states.DONE
    record = FollowUpRecord.objects.select_related("response").get(task=task)
    assert (record.outcome, record.recorded_by) == (Outcome.REACHED, nurse)
    assert record.response.answers["temperature"] == 36.6
    assert record.response.answers["recheck_date"] == recheck

    # The patient's page shows the contact at the top of the timeline.
    page.goto(f"{live_server.url}/followup/tasks/{task.pk}/")
    page.click(f'a[href="/patients/{task.patient_id}/"]')
    page.wait_for_url(re.compile(rf"/patients/{task.patient_id}/$"))
    expect(page.locator("h1")).to_contain_text(task.patient.name)
    newest = page.locator(".timeline li.tl-followup").first
    expect(newest).to_contain_text(task.step.title)
    expect(newest).to_contain_text(_zh(str(Outcome.REACHED.label)))
    expect(newest).to_contain_text(nurse.display_name)
    page.screenshot(path=SCREENSHOT, full_page=True)
