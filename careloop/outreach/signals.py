"""Keeping contacts in step with the follow-up they serve."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from careloop.followup import states
from careloop.followup.models import Task
from careloop.outreach.choices import AttemptState
from careloop.outreach.models import ContactAttempt


def task_saved(sender: type[Task], instance: Task, **kwargs: Any) -> None:
    """A step finished on any channel: cancel every other contact still scheduled for it.
    (Set-based changes are caught by ``policy.cancel_finished_tasks_attempts`` before dialling.)"""
    if instance.status in states.FINAL:
        ContactAttempt.objects.filter(task=instance, state=AttemptState.SCHEDULED).update(
            state=AttemptState.CANCELLED, reason=_("The follow-up step is finished.")
        )
