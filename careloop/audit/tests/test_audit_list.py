"""The audit log screen (F7.6): filters, department scope, export."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
from django.utils import timezone

from careloop.audit import services as audit
from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.testing import make_encounter, make_patient


def _event(action, *, user, patient=None, when=None, detail=None):
    event = audit.record(action, user=user, patient=patient, detail=detail)
    if when is not None:  # ``at`` is auto_now_add
        AuditEvent.objects.filter(pk=event.pk).update(at=when)
    return event


def _rows(response):
    return [
        tuple(cell.value for cell in row)
        for row in openpyxl.load_workbook(io.BytesIO(response.content)).active.iter_rows()
    ]


def test_supervisor_sees_events_of_own_staff_and_patients_only(client, hospital):
    cardio_patient = make_patient(name="李四")
    make_encounter(cardio_patient, hospital.cardio)
    ortho_patient = make_patient(name="王五")
    make_encounter(ortho_patient, hospital.ortho)
    _event(AuditAction.VIEW_PATIENT, user=hospital.alice, patient=cardio_patient)
    _event(AuditAction.VIEW_PATIENT, user=hospital.bob, patient=ortho_patient)
    _event(AuditAction.VIEW_PATIENT, user=hospital.erin, patient=cardio_patient)
    client.force_login(hospital.carol)

    events = list(client.get("/audit/").context["page"])

    assert {(e.username, e.patient_id) for e in events} == {
        ("alice", cardio_patient.pk),
        ("erin", cardio_patient.pk),
    }


def test_administrator_sees_every_event(client, hospital):
    _event(AuditAction.LOGIN, user=hospital.alice)
    _event(AuditAction.LOGIN, user=hospital.bob)
    client.force_login(hospital.frank)

    assert client.get("/audit/").context["page"].paginator.count == 2


def test_filters_by_user_action_patient_and_dates(client, hospital):
    patient = make_patient()
    make_encounter(patient, hospital.cardio)
    march = timezone.make_aware(dt.datetime(2026, 3, 10, 9, 0))
    april = timezone.make_aware(dt.datetime(2026, 4, 10, 23, 30))  # late evening, Shanghai time
    _event(AuditAction.VIEW_PATIENT, user=hospital.alice, patient=patient, when=march)
    _event(AuditAction.REVEAL_PHONE, user=hospital.alice, patient=patient, when=april)
    _event(AuditAction.LOGIN, user=hospital.dave, when=april)
    client.force_login(hospital.frank)

    def found(query):
        page = client.get(f"/audit/?{query}").context["page"]
        return sorted((e.username, e.action) for e in page)

    assert found("user=dav") == [("dave", "login")]
    assert found("action=reveal_phone") == [("alice", "reveal_phone")]
    assert found(f"patient={patient.pk}") == [("alice", "reveal_phone"), ("alice", "view_patient")]
    assert found("date_from=2026-04-10&date_to=2026-04-10") == [
        ("alice", "reveal_phone"),
        ("dave", "login"),
    ]
    assert found("date_to=2026-03-31") == [("alice", "view_patient")]


def test_bad_filters_are_reported_not_ignored(client, hospital):
    _event(AuditAction.LOGIN, user=hospital.alice)
    client.force_login(hospital.frank)

    response = client.get("/audit/?patient=abc&date_from=2026-04-02&date_to=2026-04-01")

    page = response.content.decode()
    assert "Enter a whole number." in page
    assert "The end date is before the start date." in page
    assert response.context["page"].paginator.count == 0


def test_list_is_paginated(client, hospital):
    for _ in range(51):
        _event(AuditAction.LOGIN, user=hospital.alice)
    client.force_login(hospital.frank)

    first = client.get("/audit/").context["page"]
    second = client.get("/audit/?page=2").context["page"]

    assert len(first) == 50
    assert len(second) == 1


def test_export_has_the_filtered_rows_and_is_itself_audited(client, hospital):
    _event(AuditAction.LOGIN, user=hospital.alice, detail={"n": 1})
    _event(AuditAction.LOGIN_FAILED, user=hospital.alice)
    client.force_login(hospital.carol)

    response = client.get("/audit/export/?action=login")

    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    rows = _rows(response)
    assert rows[0][:3] == ("Time", "User name", "Action")
    assert len(rows) == 2
    assert rows[1][1:3] == ("alice", "Logged in")
    assert rows[1][7] == "n=1"
    export = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert export.user == hospital.carol
    assert export.detail == {"list": "audit", "rows": 1}
