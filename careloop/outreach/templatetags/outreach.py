"""Template helpers of the outreach app."""

from __future__ import annotations

from typing import Any

from django import template

from careloop.outreach import queries

register = template.Library()


@register.simple_tag
def contact_status(patient: Any) -> queries.ContactStatus:
    """Blocks and contact counts of a patient, for the contact preferences card."""
    return queries.contact_status(patient)
