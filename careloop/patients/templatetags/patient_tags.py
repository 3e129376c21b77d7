"""Masking filters for templates (F7.8): numbers are shown masked unless revealed."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone

from careloop.core.formats import mask_id_number, mask_phone

register = template.Library()


@register.filter
def masked_phone(value: str | None) -> str:
    return mask_phone(value)


@register.filter
def masked_id(value: str | None) -> str:
    return mask_id_number(value)


@register.filter
def age(birth_date: dt.date | None) -> int | str:
    """Age in whole years today (Asia/Shanghai), or '' when the birth date is unknown."""
    if not birth_date:
        return ""
    today = timezone.localdate()
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )
