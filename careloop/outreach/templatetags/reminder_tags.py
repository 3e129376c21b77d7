"""The patient page's 提醒 card (``outreach/_reminders.html``)."""

from __future__ import annotations

from typing import Any

from django import template

from careloop.outreach import reminder_queries, reminders
from careloop.outreach.reminder_forms import ReminderForm

register = template.Library()


@register.simple_tag
def reminder_card(patient: Any) -> dict[str, Any]:
    """The patient's reminders, the add form and the medications without a refill date."""
    return {
        "reminders": list(reminder_queries.patient_reminders(patient)[:50]),
        "form": ReminderForm(patient=patient),
        "refill_problems": reminders.refill_problems(patient),
    }
