"""The patient page's 提醒 card in Chromium: the form shows the fields of the chosen kind, a
nurse adds a re-examination reminder with a date-time and place, sees it listed and cancels it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from careloop.contactcenter.tests.factories import make_patient_in
from careloop.outreach.choices import ReminderKind, ReminderStatus
from careloop.outreach.models import Reminder
from careloop.patients.tests.factories import make_medication

pytestmark = [pytest.mark.django_db(transaction=True)]

PASSWORD = "Demo@2026-test"


def test_nurse_adds_and_cancels_a_reexam_reminder(page: Any, live_server: Any, hospital) -> None:
    from playwright.sync_api import expect

    hospital.alice.set_password(PASSWORD)
    hospital.alice.save()
    patient = make_patient_in(hospital.cardio)
    make_medication(patient.encounters.get(), quantity=None)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/patients/{patient.pk}/")

    card = page.locator("#reminders")
    expect(card).to_contain_text("缺少发药数量")
    form = page.locator("#reminder-form")
    # re-examination: time, place and note; no medication fields
    expect(form.locator("[name=place]")).to_be_visible()
    expect(form.locator("[name=medication]")).to_be_hidden()
    expect(form.locator("[name=note]")).to_have_value("请携带出院小结和检查报告")
    form.locator("[name=kind]").select_option(ReminderKind.MEDICATION)
    expect(form.locator("[name=medication]")).to_be_visible()
    expect(form.locator("[name=place]")).to_be_hidden()
    form.locator("[name=kind]").select_option(ReminderKind.REEXAM)

    when = (timezone.localtime() + dt.timedelta(days=7)).replace(hour=9, minute=30)
    form.locator("[name=event_at]").fill(when.strftime("%Y-%m-%dT%H:%M"))
    form.locator("[name=place]").fill("门诊楼三楼心内科诊室")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/patients/{patient.pk}/#reminders")

    reminder = Reminder.objects.get(patient=patient)
    row = page.locator(f"#reminder-{reminder.pk}")
    expect(row).to_contain_text("复查提醒")
    expect(row).to_contain_text("地点是门诊楼三楼心内科诊室，请携带出院小结和检查报告。")
    expect(row).to_contain_text("已安排")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="取消").click()
    page.wait_for_url(f"{live_server.url}/patients/{patient.pk}/#reminders")
    expect(page.locator(f"#reminder-{reminder.pk}")).to_contain_text("已取消")
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.CANCELLED
