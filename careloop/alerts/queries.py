"""Reads of alerts, the department gate and who may do what.

Alerts are scoped by their department (the follow-up task's, else the questionnaire's or the
patient's latest encounter's); another department's alert is a 404.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.accounts.models import User
from careloop.accounts.queries import department_filter
from careloop.alerts.choices import OPEN_STATES, SEVERITY_RANK, AlertState
from careloop.alerts.models import Alert, AlertRule, Evaluation
from careloop.patients.models import Patient
from careloop.patients.queries import TimelineEntry

# Roles grant these in accounts/roles.py (doctors advise and keep the rules; everyone who sees tasks sees alerts).
VIEW_PERMS = ("alerts.view_alert",)
ADVISE_PERMS = ("alerts.advise_alert",)
RULE_PERMS = ("alerts.change_alertrule",)


def _any(user: User, perms: tuple[str, ...]) -> bool:
    return any(user.has_perm(perm) for perm in perms)


def can_view(user: User) -> bool:
    return _any(user, VIEW_PERMS)


def can_advise(user: User) -> bool:
    return _any(user, ADVISE_PERMS)


def can_edit_rules(user: User) -> bool:
    return _any(user, RULE_PERMS)


# --- the gate ------------------------------------------------------------------------------------


def alerts_visible_to(user: User) -> QuerySet[Alert]:
    return Alert.objects.filter(department_filter(user))


def get_visible_alert(user: User, pk: int) -> Alert:
    """The alert, or 404 when it does not exist *or* belongs to another department."""
    try:
        return (
            alerts_visible_to(user)
            .select_related(
                "patient",
                "department",
                "response__version__questionnaire",
                "task__plan",
                "rule",
                "assigned_doctor",
                "acknowledged_by",
                "closed_by",
                "escalated_to",
            )
            .get(pk=pk)
        )
    except Alert.DoesNotExist as exc:
        raise Http404("No such alert") from exc


# --- the list ------------------------------------------------------------------------------------

VIEWS = ("active", "open", "escalated", "closed", "all")


def period(data: dict[str, Any], now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The period of the list as aware datetimes: ``date_from`` 00:00 to ``date_to`` 24:00."""
    today = timezone.localdate(now)
    start = data.get("date_from") or today - dt.timedelta(days=29)
    end = data.get("date_to") or today
    tz = timezone.get_current_timezone()
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def _scoped(user: User, data: dict[str, Any], now: dt.datetime) -> QuerySet[Alert]:
    start, end = period(data, now)
    alerts = alerts_visible_to(user).filter(raised_at__gte=start, raised_at__lt=end)
    if data.get("severity"):
        alerts = alerts.filter(severity=data["severity"])
    if data.get("department"):
        alerts = alerts.filter(department=data["department"])
    if data.get("patient"):
        alerts = alerts.filter(patient_id=data["patient"])
    return alerts


def alert_list(user: User, data: dict[str, Any], now: dt.datetime) -> QuerySet[Alert]:
    alerts = _scoped(user, data, now)
    view = data.get("view") or "active"
    if view == "active":
        alerts = alerts.filter(state__in=OPEN_STATES)
    elif view == "open":
        alerts = alerts.filter(state=AlertState.OPEN)
    elif view == "escalated":
        alerts = alerts.filter(escalated_at__isnull=False).exclude(state=AlertState.CLOSED)
    elif view == "closed":
        alerts = alerts.filter(state=AlertState.CLOSED)
    state_rank = Case(
        *(When(state=state, then=Value(rank)) for rank, state in enumerate(AlertState.values)),
        output_field=IntegerField(),
    )
    severity_rank = Case(
        *(When(severity=sev, then=Value(rank)) for sev, rank in SEVERITY_RANK.items()),
        output_field=IntegerField(),
    )
    return (
        alerts.select_related("patient", "department", "assigned_doctor")
        .annotate(state_rank=state_rank, severity_rank=severity_rank)
        .order_by("state_rank", "severity_rank", "deadline", "id")
    )


@dataclass(frozen=True)
class Summary:
    counts: dict[str, int]
    escalated: int
    responses: int
    with_alerts: int

    @property
    def rate(self) -> Decimal | None:
        """Abnormal-answer rate: responses with at least one alert ÷ responses, in percent."""
        if not self.responses:
            return None
        return (Decimal(100 * self.with_alerts) / self.responses).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP
        )


def summary(user: User, data: dict[str, Any], now: dt.datetime) -> Summary:
    """Counts per state and the abnormal-answer rate for the filtered period and department."""
    alerts = _scoped(user, data, now)
    counts = dict.fromkeys(AlertState.values, 0)
    for row in alerts.values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    escalated = alerts.filter(escalated_at__isnull=False).exclude(state=AlertState.CLOSED).count()
    start, end = period(data, now)
    evaluations = Evaluation.objects.filter(
        department_filter(user), submitted_at__gte=start, submitted_at__lt=end
    )
    if data.get("department"):
        evaluations = evaluations.filter(department=data["department"])
    if data.get("patient"):
        evaluations = evaluations.filter(response__patient_id=data["patient"])
    totals = evaluations.aggregate(n=Count("id"), hit=Count("id", filter=Q(alert_count__gt=0)))
    return Summary(counts, escalated, totals["n"], totals["hit"])


# --- the detail ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    at: dt.datetime
    label: str
    by: str
    text: str = ""


def timeline(alert: Alert) -> list[Event]:
    """Every transition of the alert, oldest first, from its timestamps and advice."""
    events = [Event(alert.raised_at, _("Raised"), "", alert.message)]
    if alert.escalated_at:
        events.append(Event(alert.escalated_at, _("Escalated"), str(alert.escalated_to or "")))
    if alert.acknowledged_at:
        events.append(
            Event(alert.acknowledged_at, _("Acknowledged"), str(alert.acknowledged_by or ""))
        )
    for advice in alert.advices.select_related("by", "task"):
        events.append(
            Event(
                advice.at,
                _("Advice by %(channel)s") % {"channel": advice.get_channel_display()},
                str(advice.by or ""),
                advice.text,
            )
        )
    if alert.closed_at:
        events.append(
            Event(alert.closed_at, _("Closed"), str(alert.closed_by or ""), alert.close_note)
        )
    return sorted(events, key=lambda e: e.at)


def rules() -> QuerySet[AlertRule]:
    return AlertRule.objects.select_related("questionnaire").annotate(n_alerts=Count("alerts"))


def timeline_entries(patient: Patient, user: User | None = None) -> list[TimelineEntry]:
    """The patient's alerts and the advice given, for ``patients.queries.timeline`` (F1.5).

    With ``user`` only the alerts of their departments are listed.
    """
    alerts = Alert.objects.filter(patient=patient)
    if user is not None:
        alerts = alerts.filter(department_filter(user))
    entries = []
    for alert in alerts.prefetch_related("advices"):
        url = f"/alerts/{alert.pk}/"
        entries.append(
            TimelineEntry(
                alert.raised_at,
                "alert",
                _("Abnormal answer: %(message)s") % {"message": alert.message},
                f"{alert.get_severity_display()} · {alert.get_state_display()}",
                url,
            )
        )
        for advice in alert.advices.all():
            entries.append(
                TimelineEntry(
                    advice.at,
                    "advice",
                    _("Doctor's advice (%(channel)s)") % {"channel": advice.get_channel_display()},
                    advice.text[:200],
                    url,
                )
            )
    return entries
