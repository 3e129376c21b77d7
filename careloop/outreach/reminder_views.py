"""Reminder screens (F2.6): the department's reminders list with its Excel export, and the
patient page's 提醒 card (list, add a re-examination / exam / medication reminder, cancel)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.audit import services as audit
from careloop.audit.models import AuditAction
from careloop.core.export import Column, export_filtered_list
from careloop.outreach import reminder_queries as queries
from careloop.outreach import reminders
from careloop.outreach.choices import ReminderKind
from careloop.outreach.reminder_forms import CancelForm, ReminderFilterForm, ReminderForm
from careloop.patients.queries import get_visible_patient

PAGE_SIZE = 50
EXPORT_MAX_ROWS = 50_000


def _filtered(request: AuthedRequest):  # type: ignore[no-untyped-def]
    form = ReminderFilterForm(request.GET or None)
    rows = queries.reminders_visible_to(request.user).order_by("-due_at", "-pk")
    if form.is_bound:
        rows = queries.filter_reminders(rows, form.cleaned_data) if form.is_valid() else rows.none()
    return form, rows


@permission_required("outreach.view_reminder")
def reminder_list(request: AuthedRequest) -> HttpResponse:
    form, rows = _filtered(request)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "outreach/reminders.html",
        {"form": form, "page": page, "query": query.urlencode(), "now": timezone.now()},
    )


EXPORT_COLUMNS = [
    Column(gettext_lazy("Reminder ID"), "pk", 10),
    Column(gettext_lazy("Patient ID"), "patient_id", 10),
    Column(gettext_lazy("Patient"), "patient.name", 12),
    Column(gettext_lazy("Kind"), "get_kind_display", 16),
    Column(gettext_lazy("Remind at"), "due_at", 18),
    Column(gettext_lazy("Appointment / run-out"), "event_at", 18),
    Column(gettext_lazy("Place"), "place", 24),
    Column(gettext_lazy("Text spoken"), "text", 60),
    Column(gettext_lazy("Status"), "get_status_display", 10),
    Column(gettext_lazy("Result"), "result", 30),
    Column(gettext_lazy("Completed"), "completed_at", 18),
]


@permission_required("outreach.view_reminder")
def reminder_export(request: AuthedRequest) -> HttpResponse:
    form, rows = _filtered(request)
    list_url = f"{reverse('reminders:list')}?{request.GET.urlencode()}"
    if form.is_bound and not form.is_valid():
        return redirect(list_url)
    return export_filtered_list(
        request,
        rows,
        EXPORT_COLUMNS,
        name="reminders",
        list_url=list_url,
        too_many=_(
            "%(count)d reminders match; an export holds at most %(max)d. Narrow the filters."
        ),
        max_rows=EXPORT_MAX_ROWS,
    )


def _patient_url(patient_id: int) -> str:
    return reverse("patients:detail", args=[patient_id]) + "#reminders"


@require_POST
@permission_required("outreach.add_reminder")
def reminder_add(request: AuthedRequest, patient_id: int) -> HttpResponse:
    patient = get_visible_patient(request.user, patient_id)
    form = ReminderForm(request.POST, patient=patient)
    if not form.is_valid():
        messages.error(
            request,
            " ".join(str(e) for errors in form.errors.values() for e in errors),
        )
        return redirect(_patient_url(patient.pk))
    data = form.cleaned_data
    more: list[Any] = []
    try:
        if data["kind"] == ReminderKind.MEDICATION:
            reminder, *more = reminders.create_medication_reminders(
                data["medication"],
                due_at=data["due_at"],
                days=data.get("days") or 1,
                user=request.user,
            )
        else:
            reminder = reminders.create_appointment_reminder(
                patient,
                kind=data["kind"],
                event_at=data["event_at"],
                place=data["place"],
                item=data.get("item") or "",
                note=data.get("note") or "",
                due_at=data.get("due_at"),
                user=request.user,
            )
    except reminders.ReminderError as exc:
        messages.error(request, str(exc))
        return redirect(_patient_url(patient.pk))
    audit.record(
        AuditAction.CHANGE_PATIENT,
        user=request.user,
        patient=patient,
        obj=reminder,
        detail={"reminder": reminder.kind, "action": "add"},
        request=request,
    )
    if data["kind"] == ReminderKind.MEDICATION and more:
        messages.success(
            request,
            _("%(n)s reminders added: called every day at %(time)s from %(day)s.")
            % {
                "n": len(more) + 1,
                "time": timezone.localtime(reminder.due_at).strftime("%H:%M"),
                "day": timezone.localtime(reminder.due_at).strftime("%Y-%m-%d"),
            },
        )
    else:
        messages.success(
            request,
            _("Reminder added: it will be called at %(time)s.")
            % {"time": timezone.localtime(reminder.due_at).strftime("%Y-%m-%d %H:%M")},
        )
    return redirect(_patient_url(patient.pk))


@require_POST
@permission_required("outreach.change_reminder")
def reminder_cancel(request: AuthedRequest, pk: int) -> HttpResponse:
    reminder = queries.get_visible_reminder(request.user, pk)
    form = CancelForm(request.POST)
    reason = form.cleaned_data.get("reason", "") if form.is_valid() else ""
    if reminders.cancel_reminder(reminder, user=request.user, reason=reason):
        audit.record(
            AuditAction.CHANGE_PATIENT,
            user=request.user,
            patient=reminder.patient,
            obj=reminder,
            detail={"reminder": reminder.kind, "action": "cancel"},
            request=request,
        )
        messages.success(request, _("Reminder cancelled."))
    else:
        messages.error(request, _("This reminder is no longer scheduled."))
    target = request.POST.get("next", "")
    if target == "list":
        return redirect("reminders:list")
    return redirect(_patient_url(reminder.patient_id))
