"""The contact policy page and the contact blocks on the patient's page."""

from __future__ import annotations

import pytest

from careloop.audit.models import AuditEvent
from careloop.contactcenter.tests.factories import make_patient_in
from careloop.outreach import policy
from careloop.outreach.choices import BlockKind
from careloop.outreach.models import ContactBlock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english_messages")]

VALID = {
    "windows_text": "1-5 08:30-11:30\n1-5 14:00-17:30\n6 09:00-11:00",
    "holidays_text": "2026-10-01, 2026-10-02",
    "workdays_text": "2026-10-10",
    "max_per_day": "1",
    "max_per_week": "3",
    "automated_attempts": "2",
    "automated_retry_minutes": "90",
    "automated_concurrency": "20",
    "ring_timeout": "25",
}


def test_supervisor_edits_the_policy(client, hospital) -> None:
    client.force_login(hospital.carol)
    page = client.get("/outreach/policy/")
    assert "1-7 08:30-12:00" in page.content.decode()
    response = client.post("/outreach/policy/", VALID)
    assert response.status_code == 302
    saved = policy.current_policy()
    assert saved.windows == [
        {"days": [1, 2, 3, 4, 5], "from": "08:30", "to": "11:30"},
        {"days": [1, 2, 3, 4, 5], "from": "14:00", "to": "17:30"},
        {"days": [6], "from": "09:00", "to": "11:00"},
    ]
    assert saved.holidays == ["2026-10-01", "2026-10-02"] and saved.workdays == ["2026-10-10"]
    assert (saved.max_per_day, saved.max_per_week, saved.automated_attempts) == (1, 3, 2)
    assert saved.updated_by == hospital.carol


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("windows_text", "weekdays 9-5", "is not like"),
        ("windows_text", "1-5 12:00-08:00", "start before end"),
        ("windows_text", "", "This field is required"),
        ("holidays_text", "2026-13-01", "is not a date"),
        ("max_per_week", "0", "cannot be below the daily one"),
        ("ring_timeout", "5", "Between 10 and 120 seconds"),
    ],
)
def test_bad_policy_is_refused_with_the_reason_and_nothing_changes(
    client, hospital, field, value, message
) -> None:
    client.force_login(hospital.carol)
    response = client.post("/outreach/policy/", {**VALID, field: value})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert policy.current_policy().max_per_day == 2  # unchanged default


def test_nurse_reads_the_policy_but_cannot_change_it(client, hospital) -> None:
    client.force_login(hospital.alice)
    page = client.get("/outreach/policy/")
    assert page.status_code == 200 and 'id="policy-form"' not in page.content.decode()
    client.post("/outreach/policy/", VALID)
    assert policy.current_policy().max_per_day == 2


def test_consent_withdrawal_is_recorded_shown_audited_and_lifted(client, hospital) -> None:
    patient = make_patient_in(hospital.cardio)
    client.force_login(hospital.alice)
    response = client.post(
        f"/outreach/patients/{patient.pk}/blocks/",
        {"kind": "consent_withdrawn", "reason": "患者本人电话要求"},
    )
    assert response.status_code == 302
    block = ContactBlock.objects.get(patient=patient)
    assert block.kind == BlockKind.CONSENT_WITHDRAWN and block.created_by == hospital.alice
    assert not policy.may_contact(patient, "phone").allowed
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "<strong>Consent withdrawn</strong>" in page and "患者本人电话要求" in page
    assert AuditEvent.objects.filter(
        patient=patient, detail__contact_block="consent_withdrawn"
    ).exists()
    client.post(f"/outreach/blocks/{block.pk}/lift/")
    block.refresh_from_db()
    assert block.lifted_at is not None
    assert (
        "<strong>Consent withdrawn</strong>"
        not in client.get(f"/patients/{patient.pk}/").content.decode()
    )
