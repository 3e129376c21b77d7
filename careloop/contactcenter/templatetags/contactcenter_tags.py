"""Template tags for pages of other apps that show calls."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import QuerySet

from careloop.contactcenter import queries
from careloop.contactcenter.models import Call
from careloop.contactcenter.queries import calls_of_task
from careloop.followup.models import Task

register = template.Library()


@register.simple_tag
def task_calls(task: Task) -> QuerySet[Call]:
    """The calls made for a follow-up task, newest first, with their recordings."""
    return calls_of_task(task)


@register.filter
def share(value: float | None) -> str:
    """0.825 → "82.5%"; None → "—"."""
    return "—" if value is None else f"{value * 100:.1f}%"


@register.filter
def rating_average(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


@register.filter
def can_view_ratings(user: Any) -> bool:
    """Whether the satisfaction report is for this user (supervisors, leaders, administrators)."""
    return queries.can_view_ratings(user)
