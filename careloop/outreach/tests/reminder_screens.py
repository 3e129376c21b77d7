"""The reminder screens, for the shared permission test (listed by ``screens.py``)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from careloop.contactcenter.tests.factories import make_patient_in
from careloop.core.screens import Screen
from careloop.outreach import reminders


def _in_days(days: int) -> str:
    moment = timezone.localtime() + dt.timedelta(days=days)
    return moment.replace(hour=9, minute=30).strftime("%Y-%m-%dT%H:%M")


def _reminder_cancel_url(department) -> str:
    reminder = reminders.create_appointment_reminder(
        make_patient_in(department),
        kind="reexam",
        event_at=timezone.now() + dt.timedelta(days=5),
        place="门诊楼三楼心内科诊室",
    )
    return f"/reminders/{reminder.pk}/cancel/"


ADD_DATA = {
    "kind": "reexam",
    "event_at": _in_days(7),
    "place": "门诊楼三楼心内科诊室",
    "note": "请携带出院小结和检查报告",
}

SCREENS = [
    Screen("reminder_list", lambda h: "/reminders/", allowed="alice", denied="henry"),
    Screen("reminder_list_leader", lambda h: "/reminders/", allowed="erin"),
    Screen("reminder_export", lambda h: "/reminders/export/", allowed="carol", denied="henry"),
    Screen(
        "reminder_add",
        lambda h: f"/reminders/patients/{make_patient_in(h.cardio).pk}/add/",
        allowed="alice",
        denied="erin",
        other_department=lambda h: f"/reminders/patients/{make_patient_in(h.ortho).pk}/add/",
        method="post",
        data=ADD_DATA,
        ok_status=302,
    ),
    Screen(
        "reminder_cancel",
        lambda h: _reminder_cancel_url(h.cardio),
        allowed="carol",
        denied="erin",
        other_department=lambda h: _reminder_cancel_url(h.ortho),
        method="post",
        ok_status=302,
    ),
]
