"""Flags (deceased, do-not-contact, opt-outs), family contacts and blocked numbers (F1.1, F1.7)."""

from __future__ import annotations

import datetime as dt

import pytest

from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.testing import make_encounter, make_patient
from careloop.followup.choices import Channel, TaskStatus
from careloop.patients import services
from careloop.patients.models import PatientContact, PhoneBlock
from careloop.patients.tests.factories import (
    make_block,
    make_contact,
    make_enrollment,
    make_plan,
    make_step,
    make_task,
)


@pytest.fixture
def patient(hospital):
    patient = make_patient(name="张三")
    make_encounter(patient, hospital.cardio)
    return patient


@pytest.fixture
def open_tasks(hospital, patient):
    """A due phone task and a pending SMS task."""
    plan = make_plan(hospital.cardio)
    enrollment = make_enrollment(plan, patient)
    phone = make_task(enrollment, make_step(plan, order=1), channel=Channel.PHONE)
    sms = make_task(
        enrollment,
        make_step(plan, order=2, title="短信", channel=Channel.SMS, day_offset=30),
        channel=Channel.SMS,
        status=TaskStatus.PENDING,
    )
    return phone, sms


def _status(task):
    task.refresh_from_db()
    return task.status


def test_deceased_patient_has_every_open_task_cancelled(client, hospital, patient, open_tasks):
    client.force_login(hospital.alice)

    response = client.post(
        f"/patients/{patient.pk}/flags/",
        {"is_deceased": "on", "deceased_on": "2026-03-05"},
        follow=True,
    )

    patient.refresh_from_db()
    assert patient.is_deceased
    assert patient.deceased_on == dt.date(2026, 3, 5)
    assert [_status(t) for t in open_tasks] == [TaskStatus.CANCELLED, TaskStatus.CANCELLED]
    assert "2 open follow-up tasks were cancelled" in response.content.decode()
    event = AuditEvent.objects.get(action=AuditAction.CHANGE_PATIENT)
    assert event.detail == {"fields": ["is_deceased", "deceased_on"], "cancelled_tasks": 2}


def test_call_opt_out_cancels_calls_but_keeps_sms(hospital, patient, open_tasks):
    change = services.set_flags(patient, call_opt_out=True, acting_user=hospital.alice)

    phone, sms = open_tasks
    assert change.cancelled_tasks == 1
    assert (_status(phone), _status(sms)) == (TaskStatus.CANCELLED, TaskStatus.PENDING)


def test_do_not_contact_cancels_everything(hospital, patient, open_tasks):
    change = services.set_flags(patient, do_not_contact=True, acting_user=hospital.alice)

    assert change.cancelled_tasks == 2


def test_flag_already_set_does_not_stop_contact_again(hospital, patient, open_tasks):
    services.set_flags(patient, sms_opt_out=True, acting_user=hospital.alice)
    phone, sms = open_tasks
    assert _status(sms) == TaskStatus.CANCELLED

    change = services.set_flags(patient, sms_opt_out=True, acting_user=hospital.alice)

    assert change.changed == []
    assert _status(phone) == TaskStatus.DUE


def test_clearing_a_flag_restarts_nothing_and_clears_the_date(hospital, patient):
    services.set_flags(
        patient, is_deceased=True, deceased_on=dt.date(2026, 3, 5), acting_user=hospital.alice
    )

    change = services.set_flags(patient, is_deceased=False, acting_user=hospital.carol)

    assert change.changed == ["is_deceased", "deceased_on"]
    assert change.patient.deceased_on is None


def test_deceased_without_a_date_keeps_a_known_date(hospital, patient):
    services.set_flags(
        patient, is_deceased=True, deceased_on=dt.date(2026, 3, 5), acting_user=hospital.alice
    )

    change = services.set_flags(patient, is_deceased=True, acting_user=hospital.alice)

    assert change.patient.deceased_on == dt.date(2026, 3, 5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"is_deceased": "on"}, "Enter the date of death."),
        ({"is_deceased": "on", "deceased_on": "2999-01-01"}, "The date of death is in the future."),
    ],
)
def test_deceased_needs_a_past_date(client, hospital, patient, data, message):
    client.force_login(hospital.alice)

    response = client.post(f"/patients/{patient.pk}/flags/", data, follow=True)

    assert message in response.content.decode()
    patient.refresh_from_db()
    assert not patient.is_deceased


def test_flags_form_unticks_a_flag(client, hospital, patient):
    services.set_flags(patient, sms_opt_out=True, acting_user=hospital.alice)
    client.force_login(hospital.alice)

    client.post(f"/patients/{patient.pk}/flags/", {"call_opt_out": "on"})

    patient.refresh_from_db()
    assert (patient.sms_opt_out, patient.call_opt_out) == (False, True)


def test_leader_cannot_change_flags(client, hospital, patient):
    client.force_login(hospital.erin)

    assert (
        client.post(f"/patients/{patient.pk}/flags/", {"do_not_contact": "on"}).status_code == 403
    )
    patient.refresh_from_db()
    assert not patient.do_not_contact


# --- contacts ------------------------------------------------------------------------------------


def test_add_family_contact_normalises_the_number(client, hospital, patient):
    client.force_login(hospital.alice)

    response = client.post(
        f"/patients/{patient.pk}/contacts/add/",
        {"name": "张小明", "relation": "child", "phone": "0086 139 0013 9001", "is_primary": "on"},
    )

    assert response.status_code == 302
    contact = PatientContact.objects.get()
    assert (contact.phone, contact.relation, contact.is_primary) == ("13900139001", "child", True)
    event = AuditEvent.objects.get(action=AuditAction.CHANGE_PATIENT)
    assert event.detail == {"contact": "added"}


def test_only_one_contact_is_primary(hospital, patient):
    first = make_contact(patient, is_primary=True)

    services.add_contact(patient, phone="13900139002", is_primary=True, acting_user=hospital.alice)

    first.refresh_from_db()
    assert not first.is_primary
    assert patient.contacts.filter(is_primary=True).count() == 1


@pytest.mark.parametrize(
    ("phone", "message"),
    [("12345", "Not a valid phone number."), ("13900139003", "already a contact")],
)
def test_bad_or_duplicate_contact_is_reported(client, hospital, patient, phone, message):
    make_contact(patient, phone="13900139003")
    client.force_login(hospital.alice)

    response = client.post(
        f"/patients/{patient.pk}/contacts/add/",
        {"relation": "spouse", "phone": phone},
        follow=True,
    )

    assert message in response.content.decode()
    assert patient.contacts.count() == 1


def test_remove_contact(client, hospital, patient):
    contact = make_contact(patient)
    client.force_login(hospital.alice)

    client.post(f"/patients/{patient.pk}/contacts/{contact.pk}/delete/")

    assert not PatientContact.objects.exists()
    assert AuditEvent.objects.get(action=AuditAction.CHANGE_PATIENT).detail == {
        "contact": "removed"
    }


def test_contact_of_another_patient_cannot_be_removed_through_this_one(client, hospital, patient):
    other = make_patient()
    make_encounter(other, hospital.cardio)
    contact = make_contact(other)
    client.force_login(hospital.alice)

    assert client.post(f"/patients/{patient.pk}/contacts/{contact.pk}/delete/").status_code == 404
    assert PatientContact.objects.filter(pk=contact.pk).exists()


# --- blocked numbers (F1.7) ----------------------------------------------------------------------


def test_supervisor_blocks_a_number(client, hospital):
    client.force_login(hospital.carol)

    client.post(
        "/patients/blocks/add/",
        {"phone": "+86 137 0013 7000", "kind": "never_dial", "reason": "投诉"},
    )

    block = PhoneBlock.objects.get()
    assert (block.phone, block.kind, block.created_by) == (
        "13700137000",
        "never_dial",
        hospital.carol,
    )
    page = client.get("/patients/blocks/").content.decode()
    assert "137****7000" in page
    assert "13700137000" not in page


@pytest.mark.parametrize(
    ("phone", "message"),
    [("999", "Not a valid phone number."), ("13700137000", "already on the list")],
)
def test_bad_or_duplicate_block_is_reported(client, hospital, phone, message):
    make_block("13700137000", kind="inbound")
    client.force_login(hospital.carol)

    response = client.post(
        "/patients/blocks/add/", {"phone": phone, "kind": "inbound"}, follow=True
    )

    assert message in response.content.decode()
    assert PhoneBlock.objects.count() == 1


def test_same_number_may_be_blocked_both_ways(hospital):
    make_block("13700137000", kind="inbound")

    services.block_phone(phone="13700137000", kind="never_dial", acting_user=hospital.carol)

    assert PhoneBlock.objects.count() == 2


def test_block_list_search_and_removal(client, hospital):
    keep = make_block("13700137000")
    drop = make_block("13600136000")
    client.force_login(hospital.carol)

    page = client.get("/patients/blocks/", {"q": "1370"}).context["page"]
    assert [b.pk for b in page] == [keep.pk]

    client.post(f"/patients/blocks/{drop.pk}/delete/")
    assert list(PhoneBlock.objects.values_list("pk", flat=True)) == [keep.pk]


def test_nurse_cannot_see_the_block_list(client, hospital):
    client.force_login(hospital.alice)

    assert client.get("/patients/blocks/").status_code == 403
    assert "/patients/blocks/" not in client.get("/").content.decode()  # no menu entry either
