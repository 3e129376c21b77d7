"""Reads of the audit log, scoped like everything else by department (F7.6)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from careloop.accounts.models import User
from careloop.accounts.queries import department_ids
from careloop.audit.models import AuditEvent
from careloop.patients.models import Encounter, Patient


def visible_to(user: User) -> QuerySet[AuditEvent]:
    """Events a supervisor may read: by staff of their departments or about their patients.

    Hospital-wide users (administrators) read everything.
    """
    events = AuditEvent.objects.select_related("user", "patient")
    ids = department_ids(user)
    if ids is None:
        return events
    by_staff = Exists(
        User.departments.through.objects.filter(user_id=OuterRef("user_id"), department_id__in=ids)
    )
    about_patient = Exists(
        Encounter.objects.filter(patient_id=OuterRef("patient_id"), department_id__in=ids)
    ) | Exists(Patient.objects.filter(pk=OuterRef("patient_id"), registered_department_id__in=ids))
    return events.filter(by_staff | about_patient)


def day_start(day: dt.date) -> dt.datetime:
    """Local (Asia/Shanghai) midnight of ``day`` as an aware datetime."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def filter_events(events: QuerySet[AuditEvent], data: dict[str, Any]) -> QuerySet[AuditEvent]:
    """Apply the cleaned data of ``audit.forms.AuditFilterForm``."""
    if data.get("user"):
        events = events.filter(
            Q(username__icontains=data["user"]) | Q(user__display_name__icontains=data["user"])
        )
    if data.get("action"):
        events = events.filter(action=data["action"])
    if data.get("patient"):
        events = events.filter(patient_id=data["patient"])
    if data.get("date_from"):
        events = events.filter(at__gte=day_start(data["date_from"]))
    if data.get("date_to"):
        events = events.filter(at__lt=day_start(data["date_to"] + dt.timedelta(days=1)))
    return events
