"""Template helpers of the follow-up screens."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.utils.html import format_html

from careloop.followup.choices import TaskStatus

register = template.Library()


@register.filter
def status_label(value: str) -> str:
    try:
        return str(TaskStatus(value).label)
    except ValueError:
        return value


@register.simple_tag
def status_badge(value: str) -> str:
    """The coloured badge of a task state (classes from careloop.css)."""
    return format_html('<span class="badge {}">{}</span>', value, status_label(value))


@register.filter
def percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value}%"


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key) if mapping else None
