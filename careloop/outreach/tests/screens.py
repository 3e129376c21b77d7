"""Every outreach screen, for the shared permission test (careloop/core/screens.py)."""

from __future__ import annotations

from careloop.contactcenter.tests.factories import make_patient_in
from careloop.core.screens import Screen
from careloop.outreach.choices import BlockKind, BlockSource
from careloop.outreach.models import ContactBlock


def _block_url(department):
    block = ContactBlock.objects.create(
        patient=make_patient_in(department),
        kind=BlockKind.OPT_OUT,
        channel="ivr",
        source=BlockSource.KEYPAD,
    )
    return f"/outreach/blocks/{block.pk}/lift/"


SCREENS = [
    Screen("outreach_policy", lambda h: "/outreach/policy/", allowed="alice", denied="henry"),
    Screen("outreach_policy_edit", lambda h: "/outreach/policy/", allowed="carol", denied="henry"),
    Screen(
        "outreach_block_add",
        lambda h: f"/outreach/patients/{make_patient_in(h.cardio).pk}/blocks/",
        allowed="alice",
        denied="erin",
        other_department=lambda h: f"/outreach/patients/{make_patient_in(h.ortho).pk}/blocks/",
        method="post",
        data={"kind": "consent_withdrawn", "reason": "家属要求"},
        ok_status=302,
    ),
    Screen(
        "outreach_block_lift",
        lambda h: _block_url(h.cardio),
        allowed="alice",
        denied="erin",
        other_department=lambda h: _block_url(h.ortho),
        method="post",
        ok_status=302,
    ),
]

# Reminders (F2.6): careloop/outreach/tests/reminder_screens.py
from careloop.outreach.tests.reminder_screens import SCREENS as REMINDER_SCREENS  # noqa: E402

SCREENS += REMINDER_SCREENS
