"""The patient list: filters, masking, pagination, query count and the Excel export."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
from django.utils import timezone

from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.testing import make_encounter, make_patient
from careloop.patients.choices import EncounterKind

SHANGHAI_MIDNIGHT_MARCH_10 = timezone.make_aware(dt.datetime(2026, 3, 10, 0, 0))


@pytest.fixture
def ward(hospital):
    """Cardiology: an inpatient discharged just after midnight 10 March (Shanghai), an outpatient,
    a deceased inpatient discharged 1 April; orthopaedics: one inpatient."""
    early = make_patient(name="早出院", phone="13800000001")
    make_encounter(
        early,
        hospital.cardio,
        discharged_at=SHANGHAI_MIDNIGHT_MARCH_10 + dt.timedelta(minutes=30),
    )
    visit = make_patient(name="门诊", phone="13800000002", vip_level=2)
    make_encounter(
        visit,
        hospital.cardio,
        kind=EncounterKind.OUTPATIENT,
        started_at=SHANGHAI_MIDNIGHT_MARCH_10,
        discharged_at=None,
    )
    gone = make_patient(name="已故", phone="13800000003", is_deceased=True)
    make_encounter(
        gone, hospital.cardio, discharged_at=timezone.make_aware(dt.datetime(2026, 4, 1, 10, 0))
    )
    ortho = make_patient(name="骨科", phone="13800000004")
    make_encounter(ortho, hospital.ortho, discharged_at=SHANGHAI_MIDNIGHT_MARCH_10)
    return {"early": early, "visit": visit, "gone": gone, "ortho": ortho}


def listed(client, **params):
    response = client.get("/patients/", params)
    assert response.status_code == 200
    return sorted(p.name for p in response.context["page"])


def test_nurse_lists_only_her_departments_patients(client, hospital, ward):
    client.force_login(hospital.alice)
    assert listed(client) == ["已故", "早出院", "门诊"]
    client.force_login(hospital.bob)
    assert listed(client) == ["骨科"]


def test_filters_by_department_kind_discharge_dates_and_flags(client, hospital, ward):
    client.force_login(hospital.erin)

    assert listed(client, department=hospital.ortho.pk) == ["骨科"]
    assert listed(client, kind="outpatient") == ["门诊"]
    assert listed(client, discharged_from="2026-03-10", discharged_to="2026-03-10") == [
        "早出院",
        "骨科",
    ]
    assert listed(client, discharged_from="2026-03-11") == ["已故"]
    assert listed(client, discharged_to="2026-03-09") == []
    assert listed(client, flags="deceased") == ["已故"]
    assert listed(client, flags="vip") == ["门诊"]
    assert listed(client, department=hospital.cardio.pk, kind="inpatient", flags="deceased") == [
        "已故"
    ]


def test_department_filter_offers_only_visible_departments(client, hospital):
    client.force_login(hospital.alice)

    response = client.get("/patients/", {"department": hospital.ortho.pk})

    assert "department" in response.context["form"].errors
    assert response.context["page"].paginator.count == 0


def test_bad_filter_input_is_reported(client, hospital, ward):
    client.force_login(hospital.alice)

    response = client.get(
        "/patients/",
        {"discharged_from": "2026-04-02", "discharged_to": "2026-04-01", "flags": "nonsense"},
    )

    page = response.content.decode()
    assert "The end date is before the start date." in page
    assert "Select a valid choice." in page
    assert response.context["page"].paginator.count == 0


def test_list_shows_masked_phones_only(client, hospital, ward):
    client.force_login(hospital.alice)

    page = client.get("/patients/").content.decode()

    assert "138****0001" in page
    assert "13800000001" not in page


def test_list_is_paginated_by_fifty(client, hospital):
    for n in range(51):
        make_encounter(make_patient(name=f"病人{n:02d}"), hospital.cardio)
    client.force_login(hospital.alice)

    first = client.get("/patients/").context["page"]
    second = client.get("/patients/", {"page": 2}).context["page"]

    assert len(first) == 50
    assert len(second) == 1
    assert first.paginator.count == 51


def test_list_query_count_does_not_grow_with_rows(client, hospital, django_assert_max_num_queries):
    for n in range(30):
        patient = make_patient(name=f"病人{n:02d}")
        make_encounter(patient, hospital.cardio)
        make_encounter(patient, hospital.cardio, kind=EncounterKind.OUTPATIENT)
    client.force_login(hospital.alice)
    client.get("/patients/")

    # session, user, 2× permissions, 2× department ids, department choices ×2, count, rows
    with django_assert_max_num_queries(10):
        response = client.get("/patients/", {"q": "病人", "department": hospital.cardio.pk})

    assert len(response.context["page"]) == 30


def test_htmx_search_returns_only_the_results(client, hospital, ward):
    client.force_login(hospital.alice)

    response = client.get(
        "/patients/",
        {"q": "早"},
        headers={"HX-Request": "true", "HX-Target": "patient-results"},
    )

    page = response.content.decode()
    assert "<html" not in page
    assert "早出院" in page
    assert "门诊" not in page


def _sheet_rows(response):
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    return [tuple(c.value for c in row) for row in sheet.iter_rows()]


def test_export_has_the_filtered_rows_with_masked_phones_and_is_audited(client, hospital, ward):
    client.force_login(hospital.alice)

    response = client.get("/patients/export/", {"kind": "inpatient"})

    assert response.status_code == 200
    assert "filename*=UTF-8" in response["Content-Disposition"]
    rows = _sheet_rows(response)
    assert rows[0][:5] == ("Patient ID", "Name", "Sex", "Birth date", "Phone")
    by_name = {row[1]: row for row in rows[1:]}
    assert sorted(by_name) == ["已故", "早出院"]  # not the outpatient, not orthopaedics
    early = by_name["早出院"]
    assert early[4] == "138****0001"
    assert early[7] == "心内科"
    assert early[8] == "Inpatient stay"
    assert early[9] == dt.datetime(2026, 3, 10, 0, 30)  # Shanghai time in the sheet
    assert by_name["已故"][11] == "Deceased"
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert event.user == hospital.alice
    assert event.detail == {"list": "patients", "rows": 2}


def test_export_with_bad_filters_goes_back_to_the_list(client, hospital, ward):
    client.force_login(hospital.alice)

    response = client.get("/patients/export/", {"discharged_from": "not-a-date"})

    assert response.status_code == 302
    assert response.url.startswith("/patients/?discharged_from=not-a-date")
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()


def test_too_large_export_is_refused_with_a_message(client, hospital, ward, monkeypatch):
    monkeypatch.setattr("careloop.patients.views.EXPORT_MAX_ROWS", 2)
    client.force_login(hospital.alice)

    response = client.get("/patients/export/", follow=True)

    assert "3 patients match; an export holds at most 2." in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()
