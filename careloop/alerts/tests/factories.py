"""Factories of the alerts app's tests: explicit defaults, no random data."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from django.utils import timezone

from careloop.accounts.models import Department, User
from careloop.alerts.choices import Severity
from careloop.alerts.models import Alert, AlertRule
from careloop.alerts.services import evaluate_response
from careloop.core import testing
from careloop.followup.choices import Outcome
from careloop.followup.models import Task
from careloop.followup.services import record_outcome
from careloop.followup.tests.factories import make_plan, make_task
from careloop.patients.models import Patient
from careloop.surveys.models import Questionnaire, Response
from careloop.surveys.tests.factories import latest_version
from careloop.surveys.tests.factories import make_questionnaire as make_survey

#: A fixed "now": 2026-03-10 09:00 in Shanghai.
NOW = timezone.make_aware(dt.datetime(2026, 3, 10, 9, 0))

DEFINITION: dict[str, Any] = {
    "questions": [
        {
            "key": "temperature",
            "type": "number",
            "text": "体温是多少？",
            "required": True,
            "min": 35,
            "max": 42,
            "unit": "°C",
        },
        {
            "key": "wound_bleeding",
            "type": "yes_no",
            "text": "伤口有没有渗血？",
            "required": True,
            "labels": {"yes": "有", "no": "没有"},
            "alert": "yes",
        },
        {
            "key": "pain",
            "type": "rating",
            "text": "疼痛评分",
            "required": False,
            "scale": {"min": 0, "max": 10},
        },
        {
            "key": "bleeding",
            "type": "multiple",
            "text": "有没有以下出血？",
            "required": False,
            "options": [
                {"value": "gums", "label": "牙龈出血"},
                {"value": "black_stool", "label": "黑便"},
            ],
        },
        {
            "key": "mood",
            "type": "single",
            "text": "心情怎么样？",
            "required": False,
            "options": [
                {"value": "good", "label": "不错"},
                {"value": "low", "label": "低落", "alert": True},
            ],
        },
        {"key": "note", "type": "text", "text": "其他不适", "required": False},
        {"key": "visit", "type": "date", "text": "复查日期", "required": False},
    ]
}

NORMAL = {"temperature": 36.8, "wound_bleeding": False}


def make_questionnaire(department: Department | None = None, **overrides: Any) -> Questionnaire:
    return make_survey(
        definition=copy.deepcopy(DEFINITION), department=department, title="术后随访", **overrides
    )


def make_rule(
    questionnaire: Questionnaire | None = None,
    *,
    key: str = "temperature",
    operator: str = "gt",
    value: Any = 38.5,
    severity: str = Severity.HIGH,
    ack_hours: int = 4,
    escalation_hours: int = 0,
    message: str = "发热：{answer}",
) -> AlertRule:
    return AlertRule.objects.create(
        questionnaire=questionnaire,
        question_key=key,
        operator=operator,
        value=value,
        severity=severity,
        ack_hours=ack_hours,
        escalation_hours=escalation_hours,
        message=message,
    )


def answered_task(
    department: Department,
    answers: dict[str, Any],
    *,
    doctor: User | None = None,
    nurse: User | None = None,
    questionnaire: Questionnaire | None = None,
    now: dt.datetime = NOW,
) -> tuple[Task, Response]:
    """A follow-up task of ``department`` reached by ``nurse`` with ``answers`` recorded."""
    questionnaire = questionnaire or make_questionnaire(department)
    plan = make_plan(
        department,
        name=f"随访-{department.code}",
        steps=[{"day_offset": 3, "title": "3天", "questionnaire": questionnaire}],
    )
    task = make_task(department, plan=plan, now=now, assignee=nurse)
    if doctor is not None:
        encounter = task.enrollment.encounter
        encounter.attending_doctor = doctor
        encounter.save(update_fields=["attending_doctor"])
    record = record_outcome(
        task, outcome=Outcome.REACHED, answers=answers, acting_user=nurse, now=now
    )
    assert record.response is not None
    Response.objects.filter(pk=record.response.pk).update(submitted_at=now)
    record.response.refresh_from_db()
    return task, record.response


def make_alert(
    department: Department,
    *,
    doctor: User | None = None,
    nurse: User | None = None,
    now: dt.datetime = NOW,
) -> Alert:
    """One open alert (wound bleeding, from the questionnaire's own flag) of ``department``."""
    _task, response = answered_task(
        department,
        {"temperature": 36.8, "wound_bleeding": True},
        doctor=doctor,
        nurse=nurse,
        now=now,
    )
    (alert,) = evaluate_response(response, now=now)
    return alert


def response_for(
    patient: Patient | None = None,
    answers: dict[str, Any] | None = None,
    *,
    questionnaire: Questionnaire | None = None,
    now: dt.datetime = NOW,
) -> Response:
    """A response outside any follow-up task (e.g. a web questionnaire)."""
    from careloop.surveys.tests.factories import make_response

    questionnaire = questionnaire or make_questionnaire()
    patient = patient or testing.make_patient()
    response = make_response(latest_version(questionnaire), patient, answers=answers or NORMAL)
    Response.objects.filter(pk=response.pk).update(submitted_at=now)
    response.refresh_from_db()
    return response
