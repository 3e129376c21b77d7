"""The patient page (F1.5): masking and audited reveal (F7.8), department gate, timeline."""

from __future__ import annotations

import pytest

from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.testing import make_encounter, make_patient
from careloop.followup.choices import EnrollmentStatus, Outcome, TaskStatus
from careloop.patients import queries
from careloop.patients.choices import EncounterKind
from careloop.patients.tests.factories import (
    at,
    make_contact,
    make_enrollment,
    make_medication,
    make_order,
    make_plan,
    make_record,
    make_response,
    make_step,
    make_surgery,
    make_task,
)

ID_NUMBER = "11010519491231002X"


@pytest.fixture
def patient(hospital):
    patient = make_patient(name="张三", phone="13812345678", id_number=ID_NUMBER)
    make_encounter(patient, hospital.cardio)
    return patient


def test_page_shows_masked_numbers_and_audits_the_view(client, hospital, patient):
    client.force_login(hospital.alice)

    page = client.get(f"/patients/{patient.pk}/").content.decode()

    assert "138****5678" in page
    assert "110105********002X" in page
    assert "13812345678" not in page
    assert ID_NUMBER not in page
    event = AuditEvent.objects.get(action=AuditAction.VIEW_PATIENT)
    assert (event.user, event.patient, event.detail) == (
        hospital.alice,
        patient,
        {"screen": "detail"},
    )


def test_every_view_is_audited(client, hospital, patient):
    client.force_login(hospital.alice)
    client.get(f"/patients/{patient.pk}/")
    client.force_login(hospital.erin)
    client.get(f"/patients/{patient.pk}/")

    assert list(
        AuditEvent.objects.filter(action=AuditAction.VIEW_PATIENT)
        .order_by("id")
        .values_list("username", flat=True)
    ) == ["alice", "erin"]


def test_reveal_phone_returns_the_number_and_is_audited(client, hospital, patient):
    client.force_login(hospital.alice)

    response = client.post(f"/patients/{patient.pk}/reveal/phone/", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "13812345678" in response.content.decode()
    event = AuditEvent.objects.get(action=AuditAction.REVEAL_PHONE)
    assert (event.user, event.patient) == (hospital.alice, patient)
    assert "13812345678" not in str(event.detail)


def test_reveal_id_number_is_audited_as_such(client, hospital, patient):
    client.force_login(hospital.dave)

    response = client.post(f"/patients/{patient.pk}/reveal/id_number/")

    assert ID_NUMBER in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.REVEAL_ID, user=hospital.dave).count() == 1


def test_reveal_family_phone(client, hospital, patient):
    contact = make_contact(patient, phone="13900001234")
    client.force_login(hospital.alice)

    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "139****1234" in page
    assert "13900001234" not in page

    response = client.post(f"/patients/{patient.pk}/reveal/contact-{contact.pk}/")

    assert "13900001234" in response.content.decode()
    event = AuditEvent.objects.get(action=AuditAction.REVEAL_PHONE)
    assert (event.object_type, event.object_id) == ("PatientContact", str(contact.pk))


def test_reveal_of_another_patients_contact_or_unknown_field_is_404(client, hospital, patient):
    other = make_patient()
    make_encounter(other, hospital.cardio)
    foreign = make_contact(other)
    client.force_login(hospital.alice)

    assert client.post(f"/patients/{patient.pk}/reveal/contact-{foreign.pk}/").status_code == 404
    assert client.post(f"/patients/{patient.pk}/reveal/address/").status_code == 404
    assert client.post(f"/patients/{patient.pk}/reveal/contact-x/").status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.REVEAL_PHONE).exists()


def test_reveal_needs_post(client, hospital, patient):
    client.force_login(hospital.alice)

    assert client.get(f"/patients/{patient.pk}/reveal/phone/").status_code == 405


def test_user_without_reveal_permission_sees_no_reveal_button(client, hospital, patient):
    client.force_login(hospital.erin)

    page = client.get(f"/patients/{patient.pk}/").content.decode()

    assert "138****5678" in page
    assert "/reveal/" not in page
    assert client.post(f"/patients/{patient.pk}/reveal/phone/").status_code == 403


def test_another_departments_patient_is_404_and_not_audited(client, hospital, patient):
    client.force_login(hospital.bob)

    assert client.get(f"/patients/{patient.pk}/").status_code == 404
    assert client.post(f"/patients/{patient.pk}/reveal/phone/").status_code == 404
    assert not AuditEvent.objects.exists()


def test_patient_seen_in_two_departments_is_visible_to_both(client, hospital, patient):
    make_encounter(patient, hospital.ortho)
    client.force_login(hospital.bob)

    assert client.get(f"/patients/{patient.pk}/").status_code == 200


def test_page_lists_encounters_with_surgeries_medication_and_orders(client, hospital, patient):
    encounter = patient.encounters.get()
    make_surgery(encounter, name="冠状动脉支架置入术")
    make_medication(encounter, drug="阿司匹林肠溶片")
    make_order(encounter, "两周后心内科门诊复查")
    client.force_login(hospital.alice)

    page = client.get(f"/patients/{patient.pk}/").content.decode()

    for text in (
        "急性前壁心肌梗死",
        "冠状动脉支架置入术",
        "阿司匹林肠溶片",
        "两周后心内科门诊复查",
    ):
        assert text in page


# --- timeline ------------------------------------------------------------------------------------


@pytest.fixture
def history(hospital):
    """A patient with a stay (and surgery), a clinic visit, a plan, two contacts and a web answer."""
    patient = make_patient(name="王五")
    stay = make_encounter(
        patient,
        hospital.cardio,
        started_at=at(0),
        discharged_at=at(6),
        diagnosis_code="I21.0",
        diagnosis_name="急性前壁心肌梗死",
    )
    make_surgery(stay, name="冠状动脉支架置入术", performed_at=at(1))
    make_encounter(
        patient,
        hospital.cardio,
        kind=EncounterKind.OUTPATIENT,
        started_at=at(20),
        discharged_at=None,
        diagnosis_name="复诊",
    )
    plan = make_plan(hospital.cardio, name="心梗出院随访")
    enrollment = make_enrollment(plan, patient, encounter=stay)
    type(enrollment).objects.filter(pk=enrollment.pk).update(enrolled_at=at(6.5))
    step = make_step(plan, title="出院第7天")
    task = make_task(enrollment, step, status=TaskStatus.DONE)
    make_record(task, outcome=Outcome.NO_ANSWER, recorded_at=at(13), recorded_by=hospital.alice)
    answered = make_response(patient, title="心梗随访问卷", submitted_by=hospital.alice)
    reached = make_record(
        task,
        outcome=Outcome.REACHED,
        recorded_at=at(14),
        recorded_by=hospital.alice,
        response=answered,
        note="恢复良好",
    )
    web = make_response(patient, title="出院满意度调查", submitted_at=at(15))
    return {"patient": patient, "answered": answered, "reached": reached, "web": web}


def test_timeline_has_everything_newest_first(hospital, history):
    entries = queries.timeline(history["patient"])

    assert [(e.kind, e.when) for e in entries] == [
        ("visit", at(20)),
        ("response", at(15)),
        ("followup", at(14)),
        ("followup", at(13)),
        ("enrolment", at(6.5)),
        ("discharge", at(6)),
        ("surgery", at(1)),
        ("admission", at(0)),
    ]


def test_timeline_entries_say_what_happened(hospital, history):
    entries = {(e.kind, e.when): e for e in queries.timeline(history["patient"])}

    reached = entries[("followup", at(14))]
    assert reached.title == "Follow-up 出院第7天: Reached"
    assert reached.detail == "Nurse phone call by 李爱丽 · 恢复良好"
    assert reached.url == f"/surveys/responses/{history['answered'].pk}/"
    assert entries[("followup", at(13))].title == "Follow-up 出院第7天: No answer"
    assert entries[("followup", at(13))].url == ""
    assert entries[("discharge", at(6))].title == "Discharged from 心内科"
    assert entries[("discharge", at(6))].detail == "I21.0 急性前壁心肌梗死"
    assert entries[("surgery", at(1))].title == "Surgery: 冠状动脉支架置入术"
    assert entries[("enrolment", at(6.5))].title == "Enrolled in follow-up plan 心梗出院随访"
    assert entries[("visit", at(20))].title == "Outpatient visit, 心内科"
    web = entries[("response", at(15))]
    assert web.title == "Questionnaire answered: 出院满意度调查"
    assert web.url == f"/surveys/responses/{history['web'].pk}/"


def test_response_of_a_followup_contact_is_not_listed_twice(hospital, history):
    kinds = [e.kind for e in queries.timeline(history["patient"])]

    assert kinds.count("response") == 1


def test_ended_enrolment_appears_with_its_reason(hospital, history):
    enrollment = history["patient"].enrollments.get()
    type(enrollment).objects.filter(pk=enrollment.pk).update(
        status=EnrollmentStatus.WITHDRAWN, ended_at=at(30), end_reason="患者要求退出"
    )

    first = queries.timeline(history["patient"])[0]

    assert first.kind == "enrolment_end"
    assert first.title == "Follow-up plan 心梗出院随访 ended: Withdrawn"
    assert first.detail == "患者要求退出"


def test_patient_page_shows_the_timeline(client, hospital, history):
    client.force_login(hospital.alice)

    page = client.get(f"/patients/{history['patient'].pk}/").content.decode()

    assert "Follow-up 出院第7天: Reached" in page
    assert f'href="/surveys/responses/{history["answered"].pk}/"' in page
    assert page.index("Outpatient visit, 心内科") < page.index("Admitted to 心内科")
