"""Reads of reminders behind the department gate: a user sees the reminders of the patients they
may see (``patients.queries.visible_to``: treated or registered in one of their departments)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from careloop.accounts.models import User
from careloop.accounts.queries import department_ids
from careloop.outreach.models import Reminder
from careloop.patients.queries import visible_to


def reminders_visible_to(user: User) -> QuerySet[Reminder]:
    reminders = Reminder.objects.select_related("patient", "medication", "created_by")
    if department_ids(user) is None:
        return reminders
    return reminders.filter(patient__in=visible_to(user).values("pk"))


def get_visible_reminder(user: User, pk: int) -> Reminder:
    """The reminder, or 404 when it does not exist *or* its patient belongs to another department."""
    try:
        return reminders_visible_to(user).get(pk=pk)
    except (Reminder.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such reminder") from exc


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def filter_reminders(reminders: QuerySet[Reminder], data: dict[str, Any]) -> QuerySet[Reminder]:
    """Kind, status and a range of local days on the time the reminder is due."""
    if data.get("kind"):
        reminders = reminders.filter(kind=data["kind"])
    if data.get("status"):
        reminders = reminders.filter(status=data["status"])
    if data.get("date_from"):
        reminders = reminders.filter(due_at__gte=_day_start(data["date_from"]))
    if data.get("date_to"):
        reminders = reminders.filter(due_at__lt=_day_start(data["date_to"] + dt.timedelta(days=1)))
    return reminders


def patient_reminders(patient: Any) -> QuerySet[Reminder]:
    """A patient's reminders, the coming ones first, then the rest newest first."""
    return (
        Reminder.objects.filter(patient=patient)
        .select_related("medication", "created_by")
        .order_by("-due_at", "-pk")
    )
