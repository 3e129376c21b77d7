from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from careloop.accounts.choices import Role
from careloop.accounts.decorators import AuthedRequest
from careloop.accounts.models import User
from careloop.accounts.queries import department_filter
from careloop.followup.choices import TaskStatus
from careloop.followup.models import Task

_WORKABLE = [TaskStatus.DUE, TaskStatus.OVERDUE]
_OPEN = [TaskStatus.PENDING, TaskStatus.DUE, TaskStatus.OVERDUE]
# Roles that look after a department's work rather than (only) their own queue.
_OVERSEERS = {Role.SUPERVISOR, Role.LEADER, Role.ADMIN, Role.DOCTOR}


def _today_bounds() -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time.min))
    return start, start + dt.timedelta(days=1)


def _my_counts(user: User) -> dict[str, int]:
    start, end = _today_bounds()
    counts = Task.objects.filter(assignee=user).aggregate(
        due=Count("id", filter=Q(status=TaskStatus.DUE)),
        overdue=Count("id", filter=Q(status=TaskStatus.OVERDUE)),
        callbacks=Count(
            "id", filter=Q(status__in=_OPEN, next_attempt_at__gte=start, next_attempt_at__lt=end)
        ),
        done_today=Count("id", filter=Q(status=TaskStatus.DONE, completed_at__gte=start)),
    )
    counts["pool"] = Task.objects.filter(
        department_filter(user), assignee__isnull=True, status__in=_WORKABLE
    ).count()
    return counts


def _department_counts(user: User) -> list[dict[str, Any]]:
    start, _ = _today_bounds()
    rows = (
        Task.objects.filter(department_filter(user))
        .filter(Q(status__in=_OPEN) | Q(completed_at__gte=start))
        .values("department_id", "department__name")
        .annotate(
            due=Count("id", filter=Q(status=TaskStatus.DUE)),
            overdue=Count("id", filter=Q(status=TaskStatus.OVERDUE)),
            pending=Count("id", filter=Q(status=TaskStatus.PENDING)),
            unassigned=Count("id", filter=Q(status__in=_WORKABLE, assignee__isnull=True)),
            done_today=Count("id", filter=Q(status=TaskStatus.DONE, completed_at__gte=start)),
        )
        .order_by("department__name")
    )
    return [dict(row) for row in rows]


@login_required
def home(request: AuthedRequest) -> HttpResponse:
    """The start page: a nurse's own queue, a supervisor's or leader's departments (F2.4, F7.2)."""
    user = request.user
    context: dict[str, Any] = {}
    if user.has_perm("followup.work_task"):
        context["my"] = _my_counts(user)
    if user.role in _OVERSEERS:
        rows = _department_counts(user)
        context["departments"] = rows
        context["totals"] = {
            key: sum(row[key] for row in rows)
            for key in ("due", "overdue", "pending", "unassigned", "done_today")
        }
    return render(request, "core/home.html", context)


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
