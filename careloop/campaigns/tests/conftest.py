"""Fixtures of the campaign tests."""

from __future__ import annotations

import pytest

from careloop.outreach.models import ContactPolicy

ALL_DAY = [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "23:59"}]


@pytest.fixture
def open_all_day(db: None) -> ContactPolicy:
    """The hospital's contact hours all day, generous caps: tests do not depend on the clock."""
    policy, _created = ContactPolicy.objects.update_or_create(
        pk=1, defaults={"windows": ALL_DAY, "max_per_day": 10, "max_per_week": 20}
    )
    return policy
