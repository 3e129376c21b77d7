"""Reads of the outreach app."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from careloop.outreach import policy
from careloop.outreach.models import ContactBlock, ContactPolicy
from careloop.patients.models import Patient


@dataclass(frozen=True)
class ContactStatus:
    blocks: list[ContactBlock]
    today: int
    week: int
    policy: ContactPolicy


def contact_status(patient: Patient, now: dt.datetime | None = None) -> ContactStatus:
    now = now or timezone.now()
    local = timezone.localtime(now)
    day_start = timezone.make_aware(dt.datetime.combine(local.date(), dt.time.min))
    counted = policy.counted_contacts(patient)
    return ContactStatus(
        blocks=policy.active_blocks(patient),
        today=counted.filter(started_at__gte=day_start).count(),
        week=counted.filter(started_at__gt=now - dt.timedelta(days=7)).count(),
        policy=policy.current_policy(),
    )
