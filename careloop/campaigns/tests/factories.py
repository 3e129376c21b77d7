"""Factories of campaign rows (explicit defaults, no random data)."""

from __future__ import annotations

from typing import Any

from careloop.accounts.models import Department, User
from careloop.campaigns.choices import CampaignKind, TargetState
from careloop.campaigns.models import Campaign, CampaignTarget
from careloop.core import testing
from careloop.patients.models import Patient

ALL_DAY = [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "23:59"}]


def make_campaign(
    department: Department,
    *,
    kind: str = CampaignKind.NOTIFICATION,
    name: str = "复查提醒",
    created_by: User | None = None,
    **overrides: Any,
) -> Campaign:
    fields: dict[str, Any] = {
        "message": "{称呼}您好，这里是{科室}，请您于{日期}来院复查。",
        "windows": ALL_DAY,
        "concurrency": 5,
        "calls_per_minute": 60,
        "max_attempts": 2,
        "retry_minutes": 30,
    }
    fields.update(overrides)
    return Campaign.objects.create(
        name=name, kind=kind, department=department, created_by=created_by, **fields
    )


def make_patient_in(department: Department, **overrides: Any) -> Patient:
    patient = testing.make_patient(**overrides)
    testing.make_encounter(patient, department)
    return patient


def make_target(
    campaign: Campaign, patient: Patient | None = None, **overrides: Any
) -> CampaignTarget:
    patient = patient or make_patient_in(campaign.department)
    fields: dict[str, Any] = {"state": TargetState.PENDING}
    fields.update(overrides)
    return CampaignTarget.objects.create(campaign=campaign, patient=patient, **fields)
