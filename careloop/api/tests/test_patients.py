from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.testing import make_encounter, make_patient
from careloop.patients.models import DischargeOrder, Medication, PatientContact, Surgery

from .factories import api_client

ID_NUMBER = "11010519491231002X"


@pytest.fixture
def wang(hospital):
    """A cardiology patient with a family contact and a full discharge record."""
    patient = make_patient(
        name="王建国", name_initials="wjg", phone="13912345678", id_number=ID_NUMBER
    )
    PatientContact.objects.create(
        patient=patient, name="王小明", relation="child", phone="13698765432"
    )
    encounter = make_encounter(patient, hospital.cardio, diagnosis_code="I21.0")
    Surgery.objects.create(
        encounter=encounter,
        code="36.06",
        name="经皮冠状动脉支架置入术",
        performed_at=timezone.now() - dt.timedelta(days=8),
    )
    Medication.objects.create(encounter=encounter, drug="阿司匹林肠溶片", dose="100mg")
    DischargeOrder.objects.create(encounter=encounter, text="两周后心内科门诊复查")
    return patient


def _ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def test_list_shows_own_department_with_masked_phones(hospital, wang):
    other = make_patient(name="李四")
    make_encounter(other, hospital.ortho)

    response = api_client(hospital.alice).get("/api/v1/patients/")

    assert response.status_code == 200
    assert _ids(response) == [wang.pk]
    row = response.json()["results"][0]
    assert row["phone"] == "139****5678"
    assert "id_number" not in row
    assert ID_NUMBER not in response.content.decode()


def test_hospital_wide_user_sees_every_department(hospital, wang):
    other = make_patient(name="李四")
    make_encounter(other, hospital.ortho)

    response = api_client(hospital.erin).get("/api/v1/patients/")

    assert set(_ids(response)) == {wang.pk, other.pk}


@pytest.mark.parametrize(
    "q", ["王建", "wjg", "WJ", "13912345678", "5678", "13698765432", "I21", "心肌梗死"]
)
def test_combined_search_finds_the_patient(hospital, wang, q):
    bystander = make_patient(name="赵六", name_initials="zl", phone="13500000000")
    make_encounter(bystander, hospital.cardio, diagnosis_code="K35", diagnosis_name="阑尾炎")

    response = api_client(hospital.alice).get("/api/v1/patients/", {"q": q})

    assert _ids(response) == [wang.pk]


def test_search_by_card_and_record_number(hospital, wang):
    client = api_client(hospital.alice)

    assert _ids(client.get("/api/v1/patients/", {"q": wang.card_no})) == [wang.pk]
    assert _ids(client.get("/api/v1/patients/", {"q": wang.record_no.lower()})) == [wang.pk]


def test_search_never_reaches_another_department(hospital, wang):
    response = api_client(hospital.bob).get("/api/v1/patients/", {"q": "王建国"})

    assert response.json()["count"] == 0


def test_list_rows_summarise_the_latest_encounter(hospital, wang):
    response = api_client(hospital.alice).get("/api/v1/patients/")

    row = response.json()["results"][0]
    assert row["last_department"] == "心内科"
    assert row["last_kind"] == "inpatient"
    assert row["last_diagnosis"] == "急性前壁心肌梗死"
    assert row["last_discharged_at"]


def test_filters_of_the_patient_list_screen(hospital, wang):
    vip = make_patient(vip_level=2)
    make_encounter(vip, hospital.cardio, kind="outpatient", discharged_at=None)
    client = api_client(hospital.erin)

    assert _ids(client.get("/api/v1/patients/", {"flags": "vip"})) == [vip.pk]
    assert _ids(client.get("/api/v1/patients/", {"kind": "outpatient"})) == [vip.pk]
    today = timezone.localdate()
    discharged = client.get(
        "/api/v1/patients/",
        {"department": hospital.cardio.pk, "discharged_from": today - dt.timedelta(days=5)},
    )
    assert _ids(discharged) == [wang.pk]


def test_bad_filters_are_400_with_field_messages(hospital):
    client = api_client(hospital.alice)

    bad_date = client.get("/api/v1/patients/", {"discharged_from": "yesterday"})
    other_department = client.get("/api/v1/patients/", {"department": hospital.ortho.pk})

    assert bad_date.status_code == 400
    (message,) = bad_date.json()["discharged_from"]
    assert isinstance(message, str)
    assert other_department.status_code == 400
    assert "department" in other_department.json()


def test_list_is_paginated(hospital):
    for _ in range(3):
        make_encounter(make_patient(), hospital.cardio)

    response = api_client(hospital.alice).get("/api/v1/patients/", {"page_size": 2})

    body = response.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]


def test_detail_has_contacts_and_encounters_masked_and_is_audited(hospital, wang):
    response = api_client(hospital.alice).get(f"/api/v1/patients/{wang.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["phone"] == "139****5678"
    assert body["id_number"] == "110105********002X"
    assert body["contacts"] == [
        {
            "id": wang.contacts.get().pk,
            "name": "王小明",
            "relation": "child",
            "phone": "136****5432",
            "is_primary": False,
        }
    ]
    (encounter,) = body["encounters"]
    assert encounter["department"]["code"] == "CARD"
    assert encounter["surgeries"][0]["code"] == "36.06"
    assert encounter["medications"][0]["drug"] == "阿司匹林肠溶片"
    assert encounter["orders"][0]["text"] == "两周后心内科门诊复查"
    assert "card_pin_hash" not in body
    content = response.content.decode()
    assert "13912345678" not in content and "13698765432" not in content
    event = AuditEvent.objects.get(action=AuditAction.VIEW_PATIENT)
    assert (event.user, event.patient) == (hospital.alice, wang)


def test_other_departments_patient_is_404_and_not_audited(hospital, wang):
    response = api_client(hospital.bob).get(f"/api/v1/patients/{wang.pk}/")

    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.VIEW_PATIENT).exists()


def test_reveal_returns_full_numbers_and_audits_each_one(hospital, wang):
    response = api_client(hospital.alice).post(f"/api/v1/patients/{wang.pk}/reveal/")

    assert response.status_code == 200
    assert response.json() == {
        "phone": "13912345678",
        "contacts": [{"id": wang.contacts.get().pk, "phone": "13698765432"}],
        "id_number": ID_NUMBER,
    }
    events = AuditEvent.objects.filter(patient=wang, user=hospital.alice)
    assert sorted(events.values_list("action", "object_type")) == [
        (AuditAction.REVEAL_ID, "Patient"),
        (AuditAction.REVEAL_PHONE, "Patient"),
        (AuditAction.REVEAL_PHONE, "PatientContact"),
    ]


def test_reveal_only_the_phone(hospital, wang):
    response = api_client(hospital.alice).post(
        f"/api/v1/patients/{wang.pk}/reveal/", {"numbers": ["phone"]}, format="json"
    )

    assert set(response.json()) == {"phone", "contacts"}
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {AuditAction.REVEAL_PHONE}


def test_reveal_rejects_unknown_fields(hospital, wang):
    response = api_client(hospital.alice).post(
        f"/api/v1/patients/{wang.pk}/reveal/", {"numbers": ["address"]}, format="json"
    )

    assert response.status_code == 400
    assert "numbers" in response.json()
    assert not AuditEvent.objects.exists()


def test_leader_may_read_but_not_reveal(hospital, wang):
    client = api_client(hospital.erin)

    assert client.get(f"/api/v1/patients/{wang.pk}/").status_code == 200
    assert client.post(f"/api/v1/patients/{wang.pk}/reveal/").status_code == 403
    assert not AuditEvent.objects.filter(action=AuditAction.REVEAL_PHONE).exists()


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_list_queries_do_not_grow_with_rows(hospital):
    client = api_client(hospital.alice)
    make_encounter(make_patient(), hospital.cardio)
    few = _count_queries(client, "/api/v1/patients/?q=张")
    for _ in range(10):
        make_encounter(make_patient(), hospital.cardio)

    assert _count_queries(client, "/api/v1/patients/?q=张") == few


def test_detail_queries_do_not_grow_with_encounters(hospital, wang):
    client = api_client(hospital.alice)
    few = _count_queries(client, f"/api/v1/patients/{wang.pk}/")
    for _ in range(5):
        encounter = make_encounter(wang, hospital.cardio)
        Medication.objects.create(encounter=encounter, drug="美托洛尔")
        DischargeOrder.objects.create(encounter=encounter, text="低盐饮食")
        PatientContact.objects.create(patient=wang, phone=f"1370000{encounter.pk:04d}")

    assert _count_queries(client, f"/api/v1/patients/{wang.pk}/") == few
