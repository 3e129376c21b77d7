"""Template helpers for automated follow-up calls on the nurse's task pages."""

from __future__ import annotations

from typing import Any

from django import template

from careloop.followup import states
from careloop.followup.choices import Channel
from careloop.outreach.choices import Purpose
from careloop.outreach.models import ContactAttempt

register = template.Library()


@register.filter
def with_dialler(task: Any) -> bool:
    """Whether the automated dialler is working this step (channel "automated call", open)."""
    return (
        getattr(task, "channel", "") == Channel.IVR and getattr(task, "status", "") in states.OPEN
    )


@register.simple_tag
def automated_attempts(task: Any) -> list[ContactAttempt]:
    """The automated calls made or scheduled for a step, oldest first."""
    return list(
        ContactAttempt.objects.filter(
            task=task, channel=Channel.IVR, purpose=Purpose.FOLLOWUP
        ).order_by("created_at", "pk")
    )
