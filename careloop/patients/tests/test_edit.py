"""Creating and editing a patient's master data (F1.1) through the form and save_patient."""

from __future__ import annotations

import datetime as dt

import pytest

from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.testing import make_encounter, make_patient
from careloop.patients import services
from careloop.patients.models import Patient

ID_NUMBER = "11010519491231002X"


def _form(**overrides):
    data = {
        "name": "欧阳娜娜",
        "sex": "U",
        "birth_date": "",
        "id_number": "",
        "phone": "+86 138 0013 8000",
        "address": "北京市东城区",
        "card_no": "",
        "record_no": "",
        "vip_level": "0",
        "tags_text": "术后, 高血压，糖尿病",
        "custom_text": "医保类型: 职工医保\n过敏史：青霉素",
    }
    data.update(overrides)
    return data


def test_nurse_creates_a_patient_in_her_department(client, hospital):
    client.force_login(hospital.alice)

    response = client.post("/patients/new/", _form(registered_department=hospital.cardio.pk))

    patient = Patient.objects.get()
    assert response.status_code == 302
    assert response.url == f"/patients/{patient.pk}/"
    assert patient.name_initials == "oynn"
    assert patient.phone == "13800138000"
    assert patient.card_no is None
    assert patient.record_no is None
    assert patient.tags == ["术后", "高血压", "糖尿病"]
    assert patient.custom_fields == {"医保类型": "职工医保", "过敏史": "青霉素"}
    # Registered in cardiology, so alice sees the patient before any encounter exists.
    assert client.get(response.url).status_code == 200
    event = AuditEvent.objects.get(action=AuditAction.CHANGE_PATIENT)
    assert event.detail["created"] is True
    assert "phone" in event.detail["fields"]


def test_department_staff_must_name_the_registering_department(client, hospital):
    client.force_login(hospital.alice)

    response = client.post("/patients/new/", _form())

    assert "This field is required." in response.content.decode()
    assert not Patient.objects.exists()


def test_nurse_cannot_register_a_patient_in_another_department(client, hospital):
    client.force_login(hospital.alice)

    response = client.post("/patients/new/", _form(registered_department=hospital.ortho.pk))

    assert "Select a valid choice." in response.content.decode()
    assert not Patient.objects.exists()


def test_hospital_wide_user_may_leave_the_department_empty(client, hospital):
    client.force_login(hospital.frank)

    assert client.post("/patients/new/", _form()).status_code == 302


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phone", "12345", "Not a valid phone number."),
        ("id_number", "1101051949123100", "An ID number has 18 characters"),
        ("id_number", "110105194912310021", "check digit is wrong"),
        ("id_number", "110105194913310021", "impossible birth date"),
        ("birth_date", "2999-01-01", "The birth date is in the future."),
        ("custom_text", "没有冒号", "Line 1 is not of the form name: value."),
    ],
)
def test_bad_values_are_reported_with_the_reason(client, hospital, field, value, message):
    client.force_login(hospital.frank)

    response = client.post("/patients/new/", _form(**{field: value}))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Patient.objects.exists()


def test_id_number_fills_birth_date_and_sex(client, hospital):
    client.force_login(hospital.frank)

    client.post("/patients/new/", _form(id_number=ID_NUMBER.lower()))

    patient = Patient.objects.get()
    assert patient.id_number == ID_NUMBER
    assert patient.birth_date == dt.date(1949, 12, 31)
    assert patient.sex == "F"


def test_birth_date_contradicting_the_id_number_is_reported(client, hospital):
    client.force_login(hospital.frank)

    response = client.post("/patients/new/", _form(id_number=ID_NUMBER, birth_date="1950-01-01"))

    assert "The birth date does not match the ID number." in response.content.decode()


def test_duplicate_card_number_is_reported(client, hospital):
    make_patient(card_no="C123")
    client.force_login(hospital.frank)

    response = client.post("/patients/new/", _form(card_no="C123"))

    assert "already exists" in response.content.decode()
    assert Patient.objects.count() == 1


def test_new_patient_form_takes_the_callers_number(client, hospital):
    client.force_login(hospital.alice)

    response = client.get("/patients/new/", {"phone": "13800138000"})

    assert response.context["form"]["phone"].value() == "13800138000"


def test_edit_keeps_initials_in_step_and_is_audited(client, hospital):
    patient = make_patient(name="张三", name_initials="zs", phone="13800138001")
    make_encounter(patient, hospital.cardio)
    client.force_login(hospital.alice)

    client.get(f"/patients/{patient.pk}/edit/")
    response = client.post(
        f"/patients/{patient.pk}/edit/",
        _form(name="李四光", phone="13800138001", registered_department=hospital.cardio.pk),
    )

    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.name_initials == "lsg"
    change = AuditEvent.objects.get(action=AuditAction.CHANGE_PATIENT)
    assert change.detail["created"] is False
    assert "name" in change.detail["fields"]
    assert "phone" not in change.detail["fields"]
    # Opening the form shows the full numbers, so it counts as viewing the record.
    view = AuditEvent.objects.get(action=AuditAction.VIEW_PATIENT)
    assert view.detail == {"screen": "edit"}


def test_edit_form_shows_existing_tags_and_custom_fields(client, hospital):
    patient = make_patient(tags=["术后"], custom_fields={"医保类型": "新农合"})
    make_encounter(patient, hospital.cardio)
    client.force_login(hospital.alice)

    form = client.get(f"/patients/{patient.pk}/edit/").context["form"]

    assert form["tags_text"].value() == "术后"
    assert form["custom_text"].value() == "医保类型: 新农合"


def test_save_patient_rejects_an_invalid_number_from_any_caller(hospital):
    patient = Patient(name="张三", phone="12345")

    with pytest.raises(ValueError, match="phone"):
        services.save_patient(patient, acting_user=hospital.alice)
    assert not Patient.objects.exists()


def test_save_patient_sets_initials_for_an_importer(hospital):
    patient = services.save_patient(Patient(name=" 王小二 "), acting_user=None)

    assert (patient.name, patient.name_initials) == ("王小二", "wxe")


def test_new_patient_form_is_prefilled_from_a_screen_pop_token_once(client, hospital):
    from careloop.contactcenter.services import make_screen_pop_token

    token = make_screen_pop_token("13912345678", user=hospital.alice)
    client.force_login(hospital.alice)

    first = client.get(f"/patients/new/?caller={token}")
    assert first.status_code == 200
    assert first.context["form"].initial["phone"] == "13912345678"
    # The token is spent: opening the link again gives an empty form, not the number.
    again = client.get(f"/patients/new/?caller={token}")
    assert again.context["form"].initial["phone"] == ""


def test_screen_pop_token_of_another_user_reveals_nothing(client, hospital):
    from careloop.contactcenter.services import make_screen_pop_token

    token = make_screen_pop_token("13912345678", user=hospital.bob)
    client.force_login(hospital.alice)
    assert client.get(f"/patients/new/?caller={token}").context["form"].initial["phone"] == ""
