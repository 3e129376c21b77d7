"""Factories of the follow-up app's tests: explicit defaults, no random data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from careloop.accounts.models import Department, User
from careloop.core import testing
from careloop.followup.choices import Assignment, Channel, Trigger
from careloop.followup.models import Plan, PlanStep, Task, Team
from careloop.patients.models import Encounter, Patient
from careloop.surveys.models import Questionnaire, QuestionnaireVersion

#: A fixed "now" for tests that move the clock: 2026-03-10 09:00 in Shanghai.
NOW = timezone.make_aware(dt.datetime(2026, 3, 10, 9, 0))
TODAY = timezone.localdate(NOW)

FEVER_DEFINITION: dict[str, Any] = {
    "questions": [
        {
            "key": "temperature",
            "type": "number",
            "text": "您现在的体温是多少?",
            "required": True,
            "min": 34,
            "max": 43,
            "unit": "°C",
        },
        {"key": "medication", "type": "yes_no", "text": "是否按时服药?", "required": True},
        {"key": "remarks", "type": "text", "text": "其他不适"},
    ]
}


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    """An aware datetime on ``day`` at ``hour`` o'clock, Shanghai time."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def make_questionnaire(
    *, code: str = "fever", definition: dict[str, Any] | None = None, published: bool = True
) -> Questionnaire:
    questionnaire = Questionnaire.objects.create(code=code, title="出院随访问卷")
    QuestionnaireVersion.objects.create(
        questionnaire=questionnaire,
        number=1,
        definition=definition or FEVER_DEFINITION,
        published_at=timezone.now() if published else None,
    )
    return questionnaire


def make_team(
    department: Department,
    *,
    members: Sequence[User] = (),
    supervisor: User | None = None,
    name: str = "心内随访组",
) -> Team:
    team = Team.objects.create(name=name, department=department, supervisor=supervisor)
    team.members.set(members)
    return team


def make_plan(
    department: Department,
    *,
    name: str = "心梗出院随访",
    steps: Sequence[dict[str, Any]] | None = None,
    trigger: str = Trigger.DISCHARGE,
    rules: dict[str, Any] | None = None,
    team: Team | None = None,
    assignment: str = Assignment.POOL,
    **overrides: Any,
) -> Plan:
    """A plan with steps; by default day 3 (±1/3 days) and day 30 (±1/3 days), by phone."""
    plan = Plan.objects.create(
        name=name,
        department=department,
        trigger=trigger,
        rules=rules or {},
        team=team,
        assignment=assignment,
        **overrides,
    )
    for order, step in enumerate(
        steps or [{"day_offset": 3, "title": "出院3天"}, {"day_offset": 30, "title": "出院30天"}],
        start=1,
    ):
        make_step(plan, order=order, **step)
    return plan


def make_step(
    plan: Plan,
    *,
    order: int,
    day_offset: int,
    title: str = "",
    window_before: int = 1,
    window_after: int = 3,
    channel: str = Channel.PHONE,
    questionnaire: Questionnaire | None = None,
    script: str = "",
) -> PlanStep:
    return PlanStep.objects.create(
        plan=plan,
        order=order,
        title=title or f"第{day_offset}天",
        day_offset=day_offset,
        window_before=window_before,
        window_after=window_after,
        channel=channel,
        questionnaire=questionnaire,
        script=script,
    )


def make_discharge(
    department: Department,
    *,
    discharged_on: dt.date,
    patient: Patient | None = None,
    diagnosis_code: str = "I21.0",
    **overrides: Any,
) -> Encounter:
    """An inpatient stay of ``department`` discharged on ``discharged_on`` at 10:00."""
    patient = patient or testing.make_patient()
    return testing.make_encounter(
        patient,
        department,
        started_at=at(discharged_on - days(7)),
        discharged_at=at(discharged_on, 10),
        diagnosis_code=diagnosis_code,
        **overrides,
    )


def make_task(
    department: Department,
    *,
    assignee: User | None = None,
    discharged_on: dt.date | None = None,
    plan: Plan | None = None,
    now: dt.datetime | None = None,
) -> Task:
    """One open task of a fresh one-step plan (day 3) enrolled through ``services.enrol``."""
    from careloop.followup import services

    now = now or timezone.now()
    today = timezone.localdate(now)
    plan = plan or make_plan(
        department, name=f"单次随访-{department.code}", steps=[{"day_offset": 3, "title": "3天"}]
    )
    encounter = make_discharge(department, discharged_on=discharged_on or today - days(3))
    enrollment = services.enrol(
        plan,
        encounter.patient,
        anchor_date=timezone.localdate(encounter.discharged_at),
        encounter=encounter,
        now=now,
    )
    task = enrollment.tasks.get()
    if assignee is not None:
        task.assignee = assignee
        task.save(update_fields=["assignee"])
    return task
