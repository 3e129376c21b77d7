"""Enrolment (F2.2): rules, windows, idempotency, opt-outs, withdrawal."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation
from django.utils.translation import gettext

from careloop.core import testing
from careloop.followup import services, states
from careloop.followup.choices import Channel, EnrollmentStatus, TaskStatus, Trigger
from careloop.followup.models import Enrollment, Task
from careloop.followup.tests.factories import (
    NOW,
    TODAY,
    at,
    days,
    make_discharge,
    make_plan,
)
from careloop.patients.choices import EncounterKind
from careloop.patients.models import Surgery

pytestmark = pytest.mark.django_db


def enrolled_encounters(plan) -> set[int]:
    return set(Enrollment.objects.filter(plan=plan).values_list("encounter_id", flat=True))


def test_auto_enrol_takes_discharges_of_the_plans_department_only(hospital):
    plan = make_plan(hospital.cardio)
    cardio_stay = make_discharge(hospital.cardio, discharged_on=TODAY - days(1))
    make_discharge(hospital.ortho, discharged_on=TODAY - days(1))

    assert services.auto_enrol(now=NOW) == 1
    assert enrolled_encounters(plan) == {cardio_stay.pk}


def test_auto_enrol_matches_diagnosis_prefixes(hospital):
    plan = make_plan(hospital.cardio, rules={"diagnosis_prefixes": ["I21", "i25"]})
    infarct = make_discharge(hospital.cardio, discharged_on=TODAY, diagnosis_code="I21.0")
    chronic = make_discharge(hospital.cardio, discharged_on=TODAY, diagnosis_code="I25.1")
    make_discharge(hospital.cardio, discharged_on=TODAY, diagnosis_code="I50.9")

    services.auto_enrol(now=NOW)

    assert enrolled_encounters(plan) == {infarct.pk, chronic.pk}


def test_auto_enrol_matches_surgery_codes_on_a_discharge_plan(hospital):
    plan = make_plan(hospital.cardio, rules={"surgery_codes": ["36.0"]})
    stented = make_discharge(hospital.cardio, discharged_on=TODAY)
    Surgery.objects.create(
        encounter=stented, code="36.06", name="冠脉支架置入", performed_at=at(TODAY - days(3))
    )
    other = make_discharge(hospital.cardio, discharged_on=TODAY)
    Surgery.objects.create(
        encounter=other, code="37.22", name="左心导管", performed_at=at(TODAY - days(3))
    )
    make_discharge(hospital.cardio, discharged_on=TODAY)

    services.auto_enrol(now=NOW)

    assert enrolled_encounters(plan) == {stented.pk}


def test_surgery_plan_is_anchored_on_the_operation_date(hospital):
    plan = make_plan(
        hospital.ortho,
        trigger=Trigger.SURGERY,
        rules={"surgery_codes": ["81.5"]},
        steps=[{"day_offset": 7, "title": "术后7天"}],
    )
    stay = testing.make_encounter(
        testing.make_patient(),
        hospital.ortho,
        started_at=at(TODAY - days(5)),
        discharged_at=None,
        diagnosis_code="M16.1",
    )
    Surgery.objects.create(
        encounter=stay, code="81.51", name="全髋关节置换", performed_at=at(TODAY - days(4), 23)
    )

    services.auto_enrol(now=NOW)

    enrollment = Enrollment.objects.get(plan=plan)
    assert enrollment.anchor_date == TODAY - days(4)
    assert enrollment.tasks.get().target_date == TODAY + days(3)


def test_outpatient_plan_is_anchored_on_the_visit(hospital):
    plan = make_plan(
        hospital.cardio, trigger=Trigger.OUTPATIENT, steps=[{"day_offset": 7, "title": "复诊后7天"}]
    )
    visit = testing.make_encounter(
        testing.make_patient(),
        hospital.cardio,
        kind=EncounterKind.OUTPATIENT,
        started_at=at(TODAY - days(2)),
        discharged_at=None,
    )
    make_discharge(hospital.cardio, discharged_on=TODAY - days(2))

    services.auto_enrol(now=NOW)

    assert enrolled_encounters(plan) == {visit.pk}
    assert Enrollment.objects.get(plan=plan).anchor_date == TODAY - days(2)


def test_auto_enrol_checks_the_age_on_the_anchor_date(hospital):
    plan = make_plan(hospital.cardio, rules={"min_age": 18, "max_age": 65})
    discharge_day = TODAY - days(1)
    turned_18_on_discharge = make_discharge(
        hospital.cardio,
        discharged_on=discharge_day,
        patient=testing.make_patient(
            birth_date=discharge_day.replace(year=discharge_day.year - 18)
        ),
    )
    turns_18_tomorrow = make_discharge(
        hospital.cardio,
        discharged_on=discharge_day,
        patient=testing.make_patient(
            birth_date=discharge_day.replace(year=discharge_day.year - 18) + days(1)
        ),
    )
    aged_65 = make_discharge(
        hospital.cardio,
        discharged_on=discharge_day,
        patient=testing.make_patient(birth_date=dt.date(discharge_day.year - 66, 12, 31)),
    )
    make_discharge(
        hospital.cardio,
        discharged_on=discharge_day,
        patient=testing.make_patient(birth_date=dt.date(discharge_day.year - 70, 1, 1)),
    )
    make_discharge(
        hospital.cardio, discharged_on=discharge_day, patient=testing.make_patient(birth_date=None)
    )

    services.auto_enrol(now=NOW)

    enrolled = enrolled_encounters(plan)
    assert turned_18_on_discharge.pk in enrolled
    assert turns_18_tomorrow.pk not in enrolled
    assert aged_65.pk in enrolled
    assert len(enrolled) == 2


def test_tasks_get_target_date_and_window_from_the_steps(hospital):
    plan = make_plan(
        hospital.cardio,
        steps=[
            {"day_offset": 3, "title": "3天", "window_before": 1, "window_after": 2},
            {"day_offset": 30, "title": "30天", "window_before": 5, "window_after": 7},
        ],
    )
    make_discharge(hospital.cardio, discharged_on=TODAY - days(2))

    services.auto_enrol(now=NOW)

    first, second = Task.objects.filter(plan=plan).order_by("target_date")
    anchor = TODAY - days(2)
    assert (first.target_date, first.window_start, first.deadline) == (
        anchor + days(3),
        anchor + days(2),
        anchor + days(5),
    )
    assert (second.target_date, second.window_start, second.deadline) == (
        anchor + days(30),
        anchor + days(25),
        anchor + days(37),
    )
    assert first.status == TaskStatus.DUE
    assert second.status == TaskStatus.PENDING
    assert {first.department_id, second.department_id} == {hospital.cardio.pk}


def test_discharge_after_midnight_shanghai_is_anchored_on_the_local_date(hospital):
    plan = make_plan(hospital.cardio)
    stay = make_discharge(hospital.cardio, discharged_on=TODAY - days(1))
    stay.discharged_at = at(TODAY - days(1), 0)  # 00:00 Shanghai is the previous day in UTC
    stay.save(update_fields=["discharged_at"])

    services.auto_enrol(now=NOW)

    assert Enrollment.objects.get(plan=plan).anchor_date == TODAY - days(1)


def test_auto_enrol_twice_creates_nothing_new(hospital):
    plan = make_plan(hospital.cardio)
    for n in range(3):
        make_discharge(hospital.cardio, discharged_on=TODAY - days(n))

    assert services.auto_enrol(now=NOW) == 3
    rows = sorted(Task.objects.filter(plan=plan).values_list("pk", "enrollment_id", "step_id"))

    assert services.auto_enrol(now=NOW) == 0
    assert (
        sorted(Task.objects.filter(plan=plan).values_list("pk", "enrollment_id", "step_id")) == rows
    )
    assert Enrollment.objects.filter(plan=plan).count() == 3


def test_enrol_is_idempotent_per_plan_and_encounter(hospital):
    plan = make_plan(hospital.cardio)
    stay = make_discharge(hospital.cardio, discharged_on=TODAY)

    first = services.enrol(plan, stay.patient, anchor_date=TODAY, encounter=stay, now=NOW)
    again = services.enrol(plan, stay.patient, anchor_date=TODAY, encounter=stay, now=NOW)

    assert first.pk == again.pk
    assert Task.objects.filter(enrollment=first).count() == 2


def test_auto_enrol_ignores_inactive_and_manual_plans_and_old_discharges(hospital):
    make_plan(hospital.cardio, name="停用", is_active=False)
    make_plan(hospital.cardio, name="手动", auto_enrol=False)
    make_plan(hospital.cardio, name="入组", trigger=Trigger.ENROLMENT)
    active = make_plan(hospital.cardio, name="在用")  # last deadline: day 33
    recent = make_discharge(hospital.cardio, discharged_on=TODAY - days(33))
    make_discharge(hospital.cardio, discharged_on=TODAY - days(34))

    services.auto_enrol(now=NOW)

    assert set(Enrollment.objects.values_list("plan_id", "encounter_id")) == {
        (active.pk, recent.pk)
    }


def test_step_whose_window_closed_before_enrolment_is_cancelled_with_reason(hospital):
    plan = make_plan(hospital.cardio)  # day 3 (deadline day 6) and day 30
    make_discharge(hospital.cardio, discharged_on=TODAY - days(10))

    services.auto_enrol(now=NOW)

    early, late = Task.objects.filter(plan=plan).order_by("target_date")
    assert early.status == TaskStatus.CANCELLED
    assert early.end_reason
    assert late.status == TaskStatus.PENDING


@pytest.mark.parametrize("flag", ["is_deceased", "do_not_contact", "call_opt_out"])
def test_patients_who_must_not_be_called_are_not_enrolled(hospital, flag):
    plan = make_plan(hospital.cardio)
    make_discharge(
        hospital.cardio, discharged_on=TODAY, patient=testing.make_patient(**{flag: True})
    )

    assert services.auto_enrol(now=NOW) == 0
    assert not Enrollment.objects.filter(plan=plan).exists()


def test_manual_enrolment_of_a_deceased_patient_is_refused_with_a_reason(hospital):
    plan = make_plan(hospital.cardio)
    patient = testing.make_patient(is_deceased=True)

    with translation.override("en"), pytest.raises(services.FollowupError, match="deceased"):
        services.enrol(plan, patient, anchor_date=TODAY, now=NOW)


def test_channel_opt_outs_drop_only_the_steps_of_that_channel(hospital):
    plan = make_plan(
        hospital.cardio,
        steps=[
            {"day_offset": 3, "title": "电话", "channel": Channel.PHONE},
            {"day_offset": 7, "title": "短信", "channel": Channel.SMS},
            {"day_offset": 14, "title": "语音", "channel": Channel.IVR},
            {"day_offset": 30, "title": "网页", "channel": Channel.WEB},
        ],
    )
    sms_out = make_discharge(
        hospital.cardio, discharged_on=TODAY, patient=testing.make_patient(sms_opt_out=True)
    )
    call_out = make_discharge(
        hospital.cardio, discharged_on=TODAY, patient=testing.make_patient(call_opt_out=True)
    )

    services.auto_enrol(now=NOW)

    def channels(stay):
        return set(
            Task.objects.filter(enrollment__encounter=stay).values_list("channel", flat=True)
        )

    assert channels(sms_out) == {Channel.PHONE, Channel.IVR, Channel.WEB}
    assert channels(call_out) == {Channel.SMS, Channel.WEB}
    assert Enrollment.objects.filter(plan=plan).count() == 2


def test_manual_enrolment_without_encounter_is_anchored_on_the_given_date(hospital):
    plan = make_plan(hospital.cardio, trigger=Trigger.ENROLMENT)
    patient = testing.make_patient()

    enrollment = services.enrol(
        plan, patient, anchor_date=TODAY, acting_user=hospital.dave, now=NOW
    )

    assert enrollment.enrolled_by == hospital.dave
    assert sorted(enrollment.tasks.values_list("target_date", flat=True)) == [
        TODAY + days(3),
        TODAY + days(30),
    ]
    assert services.enrol(plan, patient, anchor_date=TODAY, now=NOW).pk == enrollment.pk


def test_withdraw_cancels_open_tasks_with_the_reason_and_keeps_done_ones(hospital):
    plan = make_plan(hospital.cardio)
    stay = make_discharge(hospital.cardio, discharged_on=TODAY - days(3))
    enrollment = services.enrol(
        plan, stay.patient, anchor_date=TODAY - days(3), encounter=stay, now=NOW
    )
    first = enrollment.tasks.order_by("target_date").first()
    services.record_outcome(first, outcome="reached", acting_user=hospital.alice, now=NOW)

    services.withdraw(enrollment, reason="转外院治疗", acting_user=hospital.carol, now=NOW)

    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.WITHDRAWN
    assert enrollment.end_reason == "转外院治疗"
    statuses = dict(enrollment.tasks.values_list("step__day_offset", "status"))
    assert statuses == {3: TaskStatus.DONE, 30: TaskStatus.CANCELLED}
    assert enrollment.tasks.get(step__day_offset=30).end_reason == "转外院治疗"


def test_withdraw_needs_a_reason(hospital):
    plan = make_plan(hospital.cardio)
    enrollment = services.enrol(plan, testing.make_patient(), anchor_date=TODAY, now=NOW)

    with pytest.raises(services.FollowupError):
        services.withdraw(enrollment, reason="  ", acting_user=hospital.carol)
    assert enrollment.tasks.filter(status__in=states.OPEN).count() == 2


def test_stop_contact_for_a_deceased_patient_cancels_every_open_task(hospital):
    plan = make_plan(hospital.cardio)
    patient = testing.make_patient()
    enrollment = services.enrol(plan, patient, anchor_date=TODAY, now=NOW)
    patient.is_deceased = True
    patient.save(update_fields=["is_deceased"])

    assert services.stop_contact(patient, reason="is_deceased", now=NOW) == 2

    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.WITHDRAWN
    assert set(enrollment.tasks.values_list("status", flat=True)) == {TaskStatus.CANCELLED}
    assert enrollment.tasks.first().end_reason == gettext("Patient deceased")


def test_stop_contact_after_an_sms_opt_out_cancels_only_sms_tasks(hospital):
    plan = make_plan(
        hospital.cardio,
        steps=[
            {"day_offset": 3, "title": "电话", "channel": Channel.PHONE},
            {"day_offset": 7, "title": "短信", "channel": Channel.SMS},
        ],
    )
    patient = testing.make_patient()
    enrollment = services.enrol(plan, patient, anchor_date=TODAY, now=NOW)
    patient.sms_opt_out = True
    patient.save(update_fields=["sms_opt_out"])

    assert services.stop_contact(patient, reason="sms_opt_out", now=NOW) == 1

    statuses = dict(enrollment.tasks.values_list("channel", "status"))
    assert statuses == {Channel.PHONE: TaskStatus.PENDING, Channel.SMS: TaskStatus.CANCELLED}
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.ACTIVE


def test_setting_a_patient_flag_through_the_patients_service_cancels_tasks(hospital):
    from careloop.patients.services import set_flags

    plan = make_plan(hospital.cardio)
    patient = testing.make_patient()
    enrollment = services.enrol(plan, patient, anchor_date=TODAY, now=NOW)

    set_flags(patient, do_not_contact=True, acting_user=hospital.carol)

    assert not enrollment.tasks.filter(status__in=states.OPEN).exists()
