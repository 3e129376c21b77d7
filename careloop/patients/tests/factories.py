"""Factories for patient-side rows and the follow-up rows the patient page reads.

Plain functions with explicit defaults; no random data. The follow-up rows are created directly
through the models (the timeline reads them that way too), not through follow-up services.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from careloop.accounts.models import Department, User
from careloop.followup.choices import Channel, Outcome, TaskStatus
from careloop.followup.models import Enrollment, FollowUpRecord, Plan, PlanStep, Task
from careloop.patients.choices import BlockKind, Relation
from careloop.patients.models import (
    DischargeOrder,
    Encounter,
    Medication,
    Patient,
    PatientContact,
    PhoneBlock,
    Surgery,
)
from careloop.surveys.choices import ResponseChannel
from careloop.surveys.models import Questionnaire, QuestionnaireVersion, Response

_seq = itertools.count(1)

# Fixed instants (aware, UTC) so timelines sort the same way in every run.
T0 = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)


def at(days: float) -> dt.datetime:
    """``T0`` plus ``days`` days."""
    return T0 + dt.timedelta(days=days)


def make_contact(patient: Patient, **overrides: Any) -> PatientContact:
    fields: dict[str, Any] = {
        "name": "张小明",
        "relation": Relation.CHILD,
        "phone": f"1390013{next(_seq):04d}",
    }
    fields.update(overrides)
    return PatientContact.objects.create(patient=patient, **fields)


def make_surgery(encounter: Encounter, **overrides: Any) -> Surgery:
    fields: dict[str, Any] = {
        "code": "36.06",
        "name": "冠状动脉支架置入术",
        "performed_at": encounter.started_at + dt.timedelta(days=1),
        "surgeon_name": "王主任",
    }
    fields.update(overrides)
    return Surgery.objects.create(encounter=encounter, **fields)


def make_medication(encounter: Encounter, **overrides: Any) -> Medication:
    fields: dict[str, Any] = {
        "drug": "阿司匹林肠溶片",
        "dose": "100mg",
        "frequency": "qd",
        "route": "口服",
        "quantity": Decimal("30"),
        "unit": "片",
        "daily_amount": Decimal("1"),
    }
    fields.update(overrides)
    return Medication.objects.create(encounter=encounter, **fields)


def make_order(encounter: Encounter, text: str = "两周后心内科门诊复查") -> DischargeOrder:
    return DischargeOrder.objects.create(encounter=encounter, text=text)


def make_block(phone: str = "13700137000", **overrides: Any) -> PhoneBlock:
    fields: dict[str, Any] = {"kind": BlockKind.INBOUND, "reason": "骚扰电话"}
    fields.update(overrides)
    return PhoneBlock.objects.create(phone=phone, **fields)


def make_plan(department: Department, **overrides: Any) -> Plan:
    fields: dict[str, Any] = {"name": "心梗出院随访", "auto_enrol": False}
    fields.update(overrides)
    return Plan.objects.create(department=department, **fields)


def make_step(plan: Plan, **overrides: Any) -> PlanStep:
    fields: dict[str, Any] = {"order": 1, "title": "出院第7天", "day_offset": 7}
    fields.update(overrides)
    return PlanStep.objects.create(plan=plan, **fields)


def make_enrollment(plan: Plan, patient: Patient, **overrides: Any) -> Enrollment:
    fields: dict[str, Any] = {"anchor_date": dt.date(2026, 3, 1)}
    fields.update(overrides)
    return Enrollment.objects.create(plan=plan, patient=patient, **fields)


def make_task(enrollment: Enrollment, step: PlanStep, **overrides: Any) -> Task:
    target = enrollment.anchor_date + dt.timedelta(days=step.day_offset)
    fields: dict[str, Any] = {
        "patient": enrollment.patient,
        "plan": enrollment.plan,
        "department": enrollment.plan.department,
        "channel": Channel.PHONE,
        "status": TaskStatus.DUE,
        "target_date": target,
        "window_start": target - dt.timedelta(days=1),
        "deadline": target + dt.timedelta(days=3),
    }
    fields.update(overrides)
    return Task.objects.create(enrollment=enrollment, step=step, **fields)


def make_record(
    task: Task, *, recorded_at: dt.datetime | None = None, **overrides: Any
) -> FollowUpRecord:
    fields: dict[str, Any] = {"outcome": Outcome.REACHED, "channel": Channel.PHONE}
    fields.update(overrides)
    record = FollowUpRecord.objects.create(task=task, **fields)
    if recorded_at is not None:  # auto_now_add ignores a value given to create()
        FollowUpRecord.objects.filter(pk=record.pk).update(recorded_at=recorded_at)
        record.recorded_at = recorded_at
    return record


def make_response(
    patient: Patient,
    *,
    title: str = "出院满意度调查",
    submitted_at: dt.datetime | None = None,
    submitted_by: User | None = None,
) -> Response:
    n = next(_seq)
    questionnaire = Questionnaire.objects.create(code=f"q{n}", title=title)
    version = QuestionnaireVersion.objects.create(
        questionnaire=questionnaire, number=1, definition={"questions": []}, published_at=T0
    )
    response = Response.objects.create(
        version=version,
        patient=patient,
        channel=ResponseChannel.AGENT,
        answers={},
        submitted_by=submitted_by,
    )
    if submitted_at is not None:
        Response.objects.filter(pk=response.pk).update(submitted_at=submitted_at)
        response.submitted_at = submitted_at
    return response
