"""Calls in these tests are placed at whatever time the suite runs: the contact policy's quiet
hours (careloop.outreach.policy) are lifted unless a test puts them back (``REAL_CONTACT_HOURS``)."""

from __future__ import annotations

import pytest

from careloop.outreach import policy

REAL_CONTACT_HOURS = policy.next_contact_time


@pytest.fixture(autouse=True)
def contact_hours_all_day(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "next_contact_time", lambda now, rules=None: now)
