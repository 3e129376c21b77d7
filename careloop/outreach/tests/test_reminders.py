"""Reminders (F2.6): refill dates, texts spoken naturally, flows the engine accepts, calls through
the dialler with results, retries and failures, cancellation, and the screens with their scoping.

Calls go through the real dialler and its engine-event handling with a stand-in for the engine's
command API (``dialler_fakes``); the real engine answers a reminder call end to end in
tests/telephony/test_reminder_calls.py.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from careloop.audit.models import AuditAction, AuditEvent
from careloop.contactcenter.services import handle_events
from careloop.contactcenter.tests.factories import make_patient_in
from careloop.engine.flow import load_flow, validate_flow
from careloop.engine.schedule import Calendar
from careloop.outreach import dialler, reminder_jobs, reminders
from careloop.outreach.choices import (
    AttemptState,
    BlockKind,
    BlockSource,
    Purpose,
    ReminderKind,
    ReminderStatus,
)
from careloop.outreach.models import ContactAttempt, Reminder
from careloop.outreach.policy import add_block
from careloop.outreach.tests.dialler_fakes import NOW, Events, FakeEngine, open_policy
from careloop.patients.tests.factories import make_medication

pytestmark = pytest.mark.django_db

PLACE = "门诊楼三楼心内科诊室"


def local(*args: int) -> dt.datetime:
    return timezone.make_aware(dt.datetime(*args))


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr("careloop.outreach.dialler.client", lambda: fake)
    monkeypatch.setattr("careloop.contactcenter.engine_client.client", lambda: fake)
    monkeypatch.setattr("careloop.outreach.dialler.wake", lambda: None)
    return fake


def _discharged(hospital: Any, on: dt.datetime, **patient: Any) -> Any:
    p = make_patient_in(hospital.cardio, **patient)
    encounter = p.encounters.get()
    encounter.discharged_at = on
    encounter.save(update_fields=["discharged_at"])
    return encounter


def _reexam(hospital: Any, *, event_at: dt.datetime | None = None, **kwargs: Any) -> Reminder:
    patient = kwargs.pop("patient", None) or make_patient_in(hospital.cardio)
    return reminders.create_appointment_reminder(
        patient,
        kind=ReminderKind.REEXAM,
        event_at=event_at or local(2026, 3, 11, 9, 30),
        place=PLACE,
        now=kwargs.pop("now", NOW),
        **kwargs,
    )


# --- refill computation ---------------------------------------------------------------------------


def test_refill_date_is_discharge_day_plus_whole_days_of_supply(hospital) -> None:
    encounter = _discharged(hospital, local(2026, 3, 2, 16, 0))
    med = make_medication(encounter, quantity=Decimal("30"), daily_amount=Decimal("1"))
    refill = reminders.compute_refill(med)
    assert refill.dispensed_on == dt.date(2026, 3, 2) and refill.days_supply == 30
    assert refill.run_out == dt.date(2026, 4, 1) and refill.remind_on == dt.date(2026, 3, 29)

    # 28 tablets at 3 a day last 9 whole days (⌊28 / 3⌋), reminded 5 days before
    med = make_medication(encounter, quantity=Decimal("28"), daily_amount=Decimal("3"))
    refill = reminders.compute_refill(med, days_before=5)
    assert refill.days_supply == 9 and refill.run_out == dt.date(2026, 3, 11)
    assert refill.remind_on == dt.date(2026, 3, 6)

    # insulin pens: 3 pens at 0.06 a day
    med = make_medication(encounter, quantity=Decimal("3"), daily_amount=Decimal("0.06"))
    assert reminders.compute_refill(med).days_supply == 50


def test_the_dispensing_day_is_the_local_date_of_discharge(hospital) -> None:
    # 2026-03-02 23:30 in Shanghai is 15:30 UTC: the local day counts
    encounter = _discharged(hospital, local(2026, 3, 2, 23, 30))
    med = make_medication(encounter, quantity=Decimal("7"), daily_amount=Decimal("1"))
    assert reminders.compute_refill(med).run_out == dt.date(2026, 3, 9)


@pytest.mark.parametrize(
    ("quantity", "daily", "message"),
    [
        (None, Decimal("1"), "The dispensed quantity is missing."),
        (Decimal("0"), Decimal("1"), "The dispensed quantity is zero."),
        (Decimal("30"), None, "The daily amount is missing."),
        (Decimal("30"), Decimal("0"), "The daily amount is zero."),
    ],
)
def test_missing_or_zero_data_means_no_refill_reminder_with_the_reason(
    hospital, quantity, daily, message
) -> None:
    encounter = _discharged(hospital, NOW - dt.timedelta(days=2))
    med = make_medication(encounter, quantity=quantity, daily_amount=daily)
    with pytest.raises(reminders.RefillError, match=message):
        reminders.compute_refill(med)
    report = reminders.generate_refill_reminders(NOW)
    assert report.created == 0 and report.skipped == [(med.pk, message)]
    assert not Reminder.objects.exists()


def test_no_discharge_date_no_refill(hospital) -> None:
    encounter = _discharged(hospital, None)
    med = make_medication(encounter)
    with pytest.raises(reminders.RefillError, match="no discharge date"):
        reminders.compute_refill(med)


def test_generate_refill_reminders_is_idempotent_one_per_medication(hospital) -> None:
    encounter = _discharged(hospital, local(2026, 3, 8, 10, 0))
    aspirin = make_medication(encounter, quantity=Decimal("30"), daily_amount=Decimal("1"))
    ticagrelor = make_medication(
        encounter,
        drug="替格瑞洛片",
        dose="90mg",
        frequency="bid",
        quantity=Decimal("28"),
        daily_amount=Decimal("2"),
    )
    old = _discharged(hospital, NOW - dt.timedelta(days=200))
    make_medication(old)  # not a recent discharge
    report = reminders.generate_refill_reminders(NOW)
    assert (report.created, report.existing, report.skipped) == (2, 0, [])
    report = reminders.generate_refill_reminders(NOW)
    assert (report.created, report.existing) == (0, 2)
    assert Reminder.objects.count() == 2

    reminder = Reminder.objects.get(medication=ticagrelor)
    assert reminder.kind == ReminderKind.REFILL and reminder.patient == encounter.patient
    # 2026-03-08 + 14 days = 03-22, reminded 3 days before at 10:00
    assert reminder.event_at == local(2026, 3, 22, 0, 0)
    assert reminder.due_at == local(2026, 3, 19, 10, 0)
    assert reminder.text == (
        "您出院时带的替格瑞洛片共二十八片，按每日两片服用，预计三月二十二日，星期日用完。"
        "请在用完之前到医院门诊开药，不要自行停药。"
    )
    # a cancelled refill reminder is not made again by the next run
    reminders.cancel_reminder(Reminder.objects.get(medication=aspirin), now=NOW)
    assert reminders.generate_refill_reminders(NOW).created == 0
    assert Reminder.objects.filter(medication=aspirin).count() == 1


def test_short_supply_is_reminded_now_and_a_supply_already_gone_is_reported(hospital) -> None:
    encounter = _discharged(hospital, local(2026, 3, 8, 10, 0))
    short = make_medication(encounter, quantity=Decimal("3"), daily_amount=Decimal("1"))
    gone = make_medication(
        _discharged(hospital, local(2026, 2, 1, 10, 0)),
        quantity=Decimal("7"),
        daily_amount=Decimal("1"),
    )
    report = reminders.generate_refill_reminders(NOW)
    assert report.created == 1
    assert Reminder.objects.get(medication=short).due_at == NOW
    assert report.skipped == [(gone.pk, "The supply ran out on 2026-02-08.")]


def test_refill_job_runs_for_recent_discharges(hospital) -> None:
    encounter = _discharged(hospital, timezone.now() - dt.timedelta(days=1))
    make_medication(encounter)
    assert reminder_jobs.refill_reminders_job.call_local() == 1
    assert reminder_jobs.refill_reminders_job.call_local() == 0


# --- texts ------------------------------------------------------------------------------------


def test_medication_text_speaks_dose_and_frequency(hospital) -> None:
    encounter = _discharged(hospital, NOW)
    med = make_medication(encounter, drug="阿司匹林肠溶片", dose="100mg", frequency="qd")
    assert reminders.medication_text(med) == "请按时服用阿司匹林肠溶片，每次一百毫克，每日一次。"
    med = make_medication(encounter, drug="盐酸二甲双胍片", dose="0.5g", frequency="tid")
    assert reminders.medication_text(med) == "请按时服用盐酸二甲双胍片，每次零点五克，每日三次。"
    med = make_medication(encounter, drug="头孢呋辛酯片", dose="每次2片", frequency="q12h")
    assert reminders.medication_text(med) == "请按时服用头孢呋辛酯片，每次两片，每十二小时一次。"
    assert reminders.speak_frequency("每日2次") == "每日两次"
    assert reminders.speak_dose("0.5μg") == "每次零点五微克"


def test_reexam_text_and_the_call_says_tomorrow_on_the_day_before(hospital) -> None:
    reminder = _reexam(hospital, event_at=local(2026, 11, 25, 9, 30), now=NOW)
    assert reminder.text == (
        "您的复查时间是十一月二十五日，星期三，上午九点半，地点是门诊楼三楼心内科诊室，"
        "请携带出院小结和检查报告。"
    )
    # by default the day before at 10:00
    assert reminder.due_at == local(2026, 11, 24, 10, 0)
    texts = reminders.reminder_texts(reminder)
    assert texts[1] == (
        "您的复查时间是明天，十一月二十五日，星期三，上午九点半，地点是门诊楼三楼心内科诊室，"
        "请携带出院小结和检查报告。"
    )
    assert texts[0].startswith("您的复查时间是今天，十一月二十五日")
    assert texts[2].startswith("您的复查时间是后天，十一月二十五日")


def test_exam_text_with_what_and_a_year_when_not_this_year(hospital) -> None:
    reminder = reminders.create_appointment_reminder(
        make_patient_in(hospital.cardio),
        kind=ReminderKind.EXAM,
        event_at=local(2027, 1, 5, 14, 15),
        place="体检中心二楼",
        item="年度体检",
        note="请空腹",
        now=NOW,
    )
    assert reminder.text == (
        "您预约的年度体检时间是二零二七年一月五日，星期二，下午两点十五分，地点是体检中心二楼，请空腹。"
    )
    assert reminders.reminder_texts(reminder)[1].startswith(
        "您预约的年度体检时间是明天，二零二七年一月五日"
    )


def test_appointment_reminders_refuse_bad_input(hospital) -> None:
    patient = make_patient_in(hospital.cardio)
    with pytest.raises(reminders.ReminderError, match="already passed"):
        _reexam(hospital, patient=patient, event_at=NOW - dt.timedelta(hours=1))
    with pytest.raises(reminders.ReminderError, match="before the appointment"):
        _reexam(hospital, patient=patient, due_at=local(2026, 3, 11, 10, 0))
    with pytest.raises(reminders.ReminderError, match="where"):
        reminders.create_appointment_reminder(
            patient, kind="reexam", event_at=local(2026, 3, 12, 9, 0), place=" ", now=NOW
        )
    with pytest.raises(reminders.ReminderError, match="no phone number"):
        _reexam(hospital, patient=make_patient_in(hospital.cardio, phone=""))
    # an appointment tomorrow morning asked for in the evening is called now
    late = _reexam(hospital, patient=patient, now=local(2026, 3, 10, 19, 0))
    assert late.due_at == local(2026, 3, 10, 19, 0)


# --- flows ------------------------------------------------------------------------------------


def _all_kinds(hospital: Any) -> list[Reminder]:
    encounter = _discharged(hospital, local(2026, 3, 8, 10, 0))
    med = make_medication(encounter)
    return [
        _reexam(hospital),
        reminders.create_appointment_reminder(
            encounter.patient,
            kind=ReminderKind.EXAM,
            event_at=local(2026, 3, 20, 8, 0),
            place="预防接种门诊",
            item="乙肝疫苗第二针",
            note="请携带预防接种证",
            now=NOW,
        ),
        reminders.create_medication_reminder(med, due_at=NOW, now=NOW),
        reminders.create_refill_reminder(med, now=NOW)[0],
    ]


def test_every_reminder_flow_passes_the_engines_validator(hospital) -> None:
    for reminder in _all_kinds(hospital):
        flow = reminders.reminder_flow(reminder, hospital="市第一人民医院")
        assert validate_flow(flow) == [], reminder.kind
        load_flow(flow)  # the engine loads it as it would for a call
        nodes = flow["nodes"]
        assert "市第一人民医院" in nodes["greet"]["say"]
        assert nodes["ask"]["say"] == "重听请按1，收到请按2。"
        assert nodes["ask"]["options"]["1"] == "repeat"
        assert nodes["ask"]["options"]["2"]["set"] == {"outreach_result": "confirmed"}
        assert nodes["repeat"]["next"] == "ask_again" and "1" not in nodes["ask_again"]["options"]
        assert nodes["heard"]["vars"] == {"outreach_result": "listened"}
        assert nodes["thanks"]["type"] == "hangup"
        spoken = [str(n.get("vars", {}).get("reminder_text", "")) for n in nodes.values()]
        assert any(reminder.text == text for text in spoken)


def test_the_flow_picks_today_tomorrow_or_the_plain_date_when_the_call_is_made(hospital) -> None:
    reminder = _reexam(hospital, event_at=local(2026, 11, 25, 9, 30))
    flow = reminders.reminder_flow(reminder)
    calendars = {name: Calendar.from_dict(raw) for name, raw in flow["calendars"].items()}

    def said_on(moment: dt.datetime) -> str:
        node = flow["nodes"]["when"]
        while node["type"] == "time":
            calendar = calendars[node["calendar"]]
            name = node["holiday"] if calendar.is_holiday(moment) else node["closed"]
            node = flow["nodes"][name]
        return node["vars"]["reminder_text"]

    assert said_on(local(2026, 11, 24, 10, 0)).startswith("您的复查时间是明天，")
    assert said_on(local(2026, 11, 25, 8, 0)).startswith("您的复查时间是今天，")
    assert said_on(local(2026, 11, 23, 19, 0)).startswith("您的复查时间是后天，")
    assert said_on(local(2026, 11, 20, 10, 0)) == reminder.text


def test_user_text_cannot_inject_templates(hospital) -> None:
    reminder = reminders.create_appointment_reminder(
        make_patient_in(hospital.cardio),
        kind=ReminderKind.REEXAM,
        event_at=local(2026, 3, 12, 9, 0),
        place="{{caller}}三楼",
        now=NOW,
    )
    assert "{{caller}}" not in str(reminders.reminder_flow(reminder))


# --- calls and results ------------------------------------------------------------------------


def _call(reminder: Reminder, engine: FakeEngine, now: dt.datetime = NOW) -> ContactAttempt:
    """Schedule the reminder's call and let the dialler dial it."""
    reminders.schedule_due_reminders(now)
    assert dialler.dispatch(now=now) == 1
    attempt = ContactAttempt.objects.get(reminder=reminder, state=AttemptState.DIALING)
    assert engine.originated[-1]["app_data"] == {"outreach_attempt": attempt.pk}
    return attempt


def _events(at: dt.datetime) -> Events:
    events = Events()
    events.clock = at
    return events


def _answered(
    attempt: ContactAttempt, variables: dict[str, Any], capture: Any, at: dt.datetime = NOW
) -> None:
    with capture(execute=True):
        handle_events(_events(at).answered(attempt.leg_id, attempt.pk, variables))


def _unanswered(attempt: ContactAttempt, result: str, capture: Any, at: dt.datetime = NOW) -> None:
    with capture(execute=True):
        handle_events(_events(at).unanswered(attempt.leg_id, attempt.pk, result))


def test_due_reminders_are_scheduled_once_with_their_flow(hospital, engine) -> None:
    open_policy()
    reminder = _reexam(hospital, event_at=local(2026, 3, 12, 9, 30))
    assert reminder.due_at == local(2026, 3, 11, 10, 0)
    assert reminders.schedule_due_reminders(NOW) == 0  # not due yet
    later = local(2026, 3, 11, 10, 0)
    assert reminders.schedule_due_reminders(later) == 1
    assert reminders.schedule_due_reminders(later) == 0  # a call is already scheduled
    attempt = ContactAttempt.objects.get(reminder=reminder)
    assert attempt.purpose == Purpose.REMINDER and attempt.state == AttemptState.SCHEDULED
    assert attempt.patient == reminder.patient and attempt.attempt_no == 1
    assert attempt.not_before == later
    assert attempt.data["flow"]["id"] == f"reminder-{reminder.pk}"
    assert attempt.data["flow_variables"] == {"patient_name": "张先生", "reminder_id": reminder.pk}
    assert dialler.dispatch(now=later) == 1
    [sent] = engine.originated
    assert sent["flow"]["nodes"]["text_1"]["vars"]["reminder_text"].startswith(
        "您的复查时间是明天，三月十二日，星期四，上午九点半"
    )


def test_reminder_job_schedules_due_calls(hospital, engine) -> None:
    open_policy()
    patient = make_patient_in(hospital.cardio)
    soon = timezone.now() + dt.timedelta(hours=3)
    reminder = reminders.create_appointment_reminder(
        patient, kind=ReminderKind.REEXAM, event_at=soon, place=PLACE
    )
    assert reminder.due_at <= timezone.now()
    assert reminder_jobs.reminder_calls_job.call_local() == 1
    assert ContactAttempt.objects.filter(reminder=reminder).count() == 1


@pytest.mark.parametrize(
    ("variables", "label"),
    [
        ({"outreach_result": "confirmed", "reminder_key": "2"}, "pressed 2 (received)"),
        ({"outreach_result": "listened"}, "listened to the end"),
    ],
)
def test_pressing_2_or_listening_to_the_end_delivers(
    hospital, engine, django_capture_on_commit_callbacks, variables, label
) -> None:
    open_policy()
    reminder = _reexam(hospital, due_at=NOW)
    attempt = _call(reminder, engine)
    _answered(attempt, variables, django_capture_on_commit_callbacks)
    attempt.refresh_from_db()
    reminder.refresh_from_db()
    assert attempt.state == AttemptState.ENDED and attempt.answered_at is not None
    assert reminder.status == ReminderStatus.DELIVERED and reminder.result == label
    assert reminder.completed_at == NOW
    assert ContactAttempt.objects.filter(reminder=reminder).count() == 1


def test_unanswered_calls_are_retried_per_the_policy_then_fail_with_a_reason(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy(automated_attempts=3, automated_retry_minutes=60)
    reminder = _reexam(hospital, event_at=local(2026, 3, 12, 9, 30), due_at=NOW)
    clock = NOW
    for n, result in enumerate(["no_answer", "busy"], start=1):
        attempt = _call(reminder, engine, clock)
        assert attempt.attempt_no == n
        _unanswered(attempt, result, django_capture_on_commit_callbacks, clock)
        reminder.refresh_from_db()
        assert reminder.status == ReminderStatus.SCHEDULED
        assert reminder.result.startswith(f"Call {n}: ")
        [retry] = ContactAttempt.objects.filter(reminder=reminder, state=AttemptState.SCHEDULED)
        assert retry.attempt_no == n + 1 and retry.not_before == clock + dt.timedelta(minutes=60)
        clock = retry.not_before
        assert dialler.dispatch(now=clock - dt.timedelta(minutes=1)) == 0  # not before its time
    attempt = ContactAttempt.objects.get(reminder=reminder, state=AttemptState.SCHEDULED)
    assert dialler.dispatch(now=clock) == 1
    attempt.refresh_from_db()
    # answered, but hung up before the end of the text
    _answered(attempt, {}, django_capture_on_commit_callbacks, clock)
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.FAILED
    assert (
        reminder.result
        == "Not delivered after 3 automated calls (last: answered, not listened to)."
    )
    assert not ContactAttempt.objects.filter(reminder=reminder, state=AttemptState.SCHEDULED)


def test_an_unreachable_number_fails_at_once(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    reminder = _reexam(hospital, due_at=NOW)
    _unanswered(_call(reminder, engine), "unreachable", django_capture_on_commit_callbacks)
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.FAILED
    assert "check the number" in reminder.result
    assert ContactAttempt.objects.filter(reminder=reminder).count() == 1


def test_no_retry_after_the_appointment_has_begun(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy(automated_retry_minutes=120)
    reminder = _reexam(hospital, event_at=NOW + dt.timedelta(minutes=90), due_at=NOW)
    _unanswered(_call(reminder, engine), "no_answer", django_capture_on_commit_callbacks)
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.FAILED
    assert reminder.result == "Not delivered before the appointment (last call: no answer)."


def test_the_policy_refusing_for_good_fails_the_reminder(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    reminder = _reexam(hospital, due_at=NOW)
    reminder.patient.is_deceased = True
    reminder.patient.save(update_fields=["is_deceased"])
    reminders.schedule_due_reminders(NOW)
    with django_capture_on_commit_callbacks(execute=True):
        assert dialler.dispatch(now=NOW) == 0
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.FAILED
    assert reminder.result == "The patient is deceased."
    assert engine.originated == []


def test_quiet_hours_only_postpone_the_call(hospital, engine) -> None:
    open_policy()
    evening = local(2026, 3, 10, 21, 0)
    reminder = _reexam(hospital, due_at=evening, now=evening)
    reminders.schedule_due_reminders(evening)
    assert dialler.dispatch(now=evening) == 0
    attempt = ContactAttempt.objects.get(reminder=reminder)
    assert attempt.state == AttemptState.SCHEDULED
    assert attempt.not_before == local(2026, 3, 11, 8, 30)
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.SCHEDULED


def test_cancelling_cancels_the_scheduled_call_and_ignores_late_results(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    reminder = _reexam(hospital, due_at=NOW)
    reminders.schedule_due_reminders(NOW)
    assert reminders.cancel_reminder(reminder, reason="患者已改约", now=NOW)
    assert not reminders.cancel_reminder(reminder, now=NOW)
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.CANCELLED and reminder.result == "患者已改约"
    attempt = ContactAttempt.objects.get(reminder=reminder)
    assert attempt.state == AttemptState.CANCELLED and attempt.reason == "患者已改约"
    assert dialler.dispatch(now=NOW) == 0
    assert reminders.schedule_due_reminders(NOW) == 0

    # a call already ringing when the reminder is cancelled ends without changing it
    other = _reexam(hospital, due_at=NOW)
    ringing = _call(other, engine)
    reminders.cancel_reminder(other, now=NOW)
    _answered(ringing, {"outreach_result": "confirmed"}, django_capture_on_commit_callbacks)
    other.refresh_from_db()
    assert other.status == ReminderStatus.CANCELLED


def test_a_contact_block_cancelling_the_call_fails_the_reminder(hospital, engine) -> None:
    open_policy()
    reminder = _reexam(hospital, due_at=NOW)
    reminders.schedule_due_reminders(NOW)
    add_block(
        reminder.patient,
        BlockKind.OPT_OUT,
        channel="ivr",
        source=BlockSource.STAFF,
        reason="不接自动电话",
        now=NOW,
    )
    assert reminders.schedule_due_reminders(NOW) == 0
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.FAILED and reminder.result == "不接自动电话"


def test_appointments_that_have_begun_are_given_up(hospital, engine) -> None:
    open_policy()
    reminder = _reexam(
        hospital, event_at=local(2026, 3, 10, 21, 0), due_at=local(2026, 3, 10, 20, 30)
    )
    later = local(2026, 3, 10, 20, 30)
    reminders.schedule_due_reminders(later)  # quiet hours: the call waits for tomorrow
    assert dialler.dispatch(now=later) == 0
    reminders.schedule_due_reminders(local(2026, 3, 10, 21, 0))
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.FAILED
    assert reminder.result == "The appointment time passed before the reminder was delivered."
    assert ContactAttempt.objects.get(reminder=reminder).state == AttemptState.CANCELLED


def test_a_refill_reminder_is_given_up_the_day_after_the_supply_ran_out(hospital, engine) -> None:
    open_policy()
    encounter = _discharged(hospital, local(2026, 3, 8, 10, 0))
    med = make_medication(encounter, quantity=Decimal("5"), daily_amount=Decimal("1"))
    reminder, _created = reminders.create_refill_reminder(med, now=NOW)
    assert reminder.event_at == local(2026, 3, 13, 0, 0)
    assert reminder.due_at == local(2026, 3, 10, 10, 0)
    reminders.schedule_due_reminders(local(2026, 3, 13, 23, 0))  # the run-out day: still useful
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.SCHEDULED
    reminders.schedule_due_reminders(local(2026, 3, 14, 0, 0))
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.FAILED
    assert reminder.result == "The supply ran out before the reminder was delivered."
    assert ContactAttempt.objects.get(reminder=reminder).state == AttemptState.CANCELLED


def test_a_lost_result_is_handled_by_the_next_run(hospital, engine) -> None:
    open_policy()
    reminder = _reexam(hospital, due_at=NOW)
    attempt = _call(reminder, engine)
    # the call ended but the handler never ran (e.g. the process died after the commit)
    ContactAttempt.objects.filter(pk=attempt.pk).update(
        state=AttemptState.ENDED, result="confirmed", ended_at=NOW
    )
    reminders.schedule_due_reminders(NOW)
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.DELIVERED


# --- screens ----------------------------------------------------------------------------------


def _form(**overrides: Any) -> dict[str, Any]:
    moment = timezone.localtime() + dt.timedelta(days=7)
    data = {
        "kind": "reexam",
        "event_at": moment.replace(hour=9, minute=30).strftime("%Y-%m-%dT%H:%M"),
        "place": PLACE,
        "note": "请携带出院小结和检查报告",
    }
    data.update(overrides)
    return data


def test_patient_page_lists_reminders_and_adds_a_reexam(hospital, client) -> None:
    patient = make_patient_in(hospital.cardio)
    encounter = patient.encounters.get()
    make_medication(encounter, drug="呋塞米片", quantity=None)
    client.force_login(hospital.alice)
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert 'id="reminders"' in page and 'id="reminder-form"' in page
    assert "No reminders." in page
    assert "呋塞米片 (The dispensed quantity is missing.)" in page

    response = client.post(f"/reminders/patients/{patient.pk}/add/", _form())
    assert response.status_code == 302 and response.url == f"/patients/{patient.pk}/#reminders"
    reminder = Reminder.objects.get(patient=patient)
    assert reminder.kind == ReminderKind.REEXAM and reminder.place == PLACE
    assert reminder.created_by == hospital.alice
    event = timezone.localtime(reminder.event_at)
    assert (event.hour, event.minute) == (9, 30)
    assert timezone.localtime(reminder.due_at).date() == event.date() - dt.timedelta(days=1)
    assert AuditEvent.objects.filter(
        action=AuditAction.CHANGE_PATIENT, patient=patient, detail__reminder="reexam"
    ).exists()
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert reminder.text in page and f"/reminders/{reminder.pk}/cancel/" in page


def test_adding_with_errors_says_why_and_creates_nothing(hospital, client) -> None:
    patient = make_patient_in(hospital.cardio)
    client.force_login(hospital.alice)
    past = (timezone.localtime() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        f"/reminders/patients/{patient.pk}/add/", _form(event_at=past), follow=True
    )
    assert "The appointment time has already passed." in response.content.decode()
    response = client.post(f"/reminders/patients/{patient.pk}/add/", _form(place=""), follow=True)
    assert "Say where the patient should go." in response.content.decode()
    response = client.post(
        f"/reminders/patients/{patient.pk}/add/", _form(kind="medication"), follow=True
    )
    assert "Choose the medication." in response.content.decode()
    assert not Reminder.objects.exists()


def test_adding_a_medication_and_an_exam_reminder(hospital, client) -> None:
    patient = make_patient_in(hospital.cardio)
    med = make_medication(patient.encounters.get())
    client.force_login(hospital.carol)
    when = (timezone.localtime() + dt.timedelta(days=1)).replace(hour=8, minute=30)
    client.post(
        f"/reminders/patients/{patient.pk}/add/",
        _form(kind="medication", medication=med.pk, due_at=when.strftime("%Y-%m-%dT%H:%M")),
    )
    client.post(
        f"/reminders/patients/{patient.pk}/add/",
        _form(kind="exam", item="乙肝疫苗第二针", place="预防接种门诊", note="请携带预防接种证"),
    )
    medication, exam = Reminder.objects.order_by("pk")
    assert medication.kind == ReminderKind.MEDICATION and medication.medication == med
    assert medication.text == "请按时服用阿司匹林肠溶片，每次一百毫克，每日一次。"
    assert exam.kind == ReminderKind.EXAM and exam.text.startswith("您预约的乙肝疫苗第二针时间是")
    assert exam.text.endswith("地点是预防接种门诊，请携带预防接种证。")


def test_medication_reminders_every_day_for_a_week(hospital, client) -> None:
    patient = make_patient_in(hospital.cardio)
    med = make_medication(patient.encounters.get(), drug="替格瑞洛片", dose="90mg", frequency="bid")
    client.force_login(hospital.alice)
    first = (timezone.localtime() + dt.timedelta(days=1)).replace(hour=8, minute=0)
    response = client.post(
        f"/reminders/patients/{patient.pk}/add/",
        _form(
            kind="medication",
            medication=med.pk,
            days=7,
            due_at=first.strftime("%Y-%m-%dT%H:%M"),
            place="",
            event_at="",
        ),
        follow=True,
    )
    assert "7 reminders added: called every day at 08:00" in response.content.decode()
    made = list(Reminder.objects.filter(patient=patient).order_by("due_at"))
    assert len(made) == 7
    assert {r.text for r in made} == {"请按时服用替格瑞洛片，每次九十毫克，每日两次。"}
    days = [timezone.localtime(r.due_at) for r in made]
    assert [d.date() for d in days] == [first.date() + dt.timedelta(days=n) for n in range(7)]
    assert {(d.hour, d.minute) for d in days} == {(8, 0)}
    with pytest.raises(reminders.ReminderError, match="1 to 30 days"):
        reminders.create_medication_reminders(med, due_at=timezone.now(), days=31)
    with pytest.raises(reminders.ReminderError, match="already passed"):
        reminders.create_medication_reminders(med, due_at=timezone.now() - dt.timedelta(hours=1))


def test_cancel_from_the_patient_page(hospital, client) -> None:
    reminder = _reexam(hospital, event_at=timezone.now() + dt.timedelta(days=3), now=timezone.now())
    client.force_login(hospital.alice)
    response = client.post(f"/reminders/{reminder.pk}/cancel/")
    assert response.status_code == 302
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.CANCELLED and reminder.result == "Reminder cancelled."
    response = client.post(f"/reminders/{reminder.pk}/cancel/", follow=True)
    assert "This reminder is no longer scheduled." in response.content.decode()


def test_reminder_list_is_scoped_to_the_departments_and_filters(hospital, client) -> None:
    now = timezone.now()
    cardio = _reexam(hospital, event_at=now + dt.timedelta(days=3), now=now)
    ortho_patient = make_patient_in(hospital.ortho)
    ortho = reminders.create_appointment_reminder(
        ortho_patient,
        kind=ReminderKind.EXAM,
        event_at=now + dt.timedelta(days=10),
        place="体检中心",
    )
    client.force_login(hospital.alice)
    page = client.get("/reminders/").content.decode()
    assert f'id="reminder-{cardio.pk}"' in page and f'id="reminder-{ortho.pk}"' not in page
    client.force_login(hospital.bob)
    page = client.get("/reminders/").content.decode()
    assert f'id="reminder-{ortho.pk}"' in page and f'id="reminder-{cardio.pk}"' not in page
    assert client.post(f"/reminders/{cardio.pk}/cancel/").status_code == 404

    client.force_login(hospital.erin)  # hospital-wide, read-only
    page = client.get("/reminders/").content.decode()
    assert f'id="reminder-{cardio.pk}"' in page and f'id="reminder-{ortho.pk}"' in page
    assert "/cancel/" not in page
    page = client.get("/reminders/", {"kind": "exam"}).content.decode()
    assert f'id="reminder-{ortho.pk}"' in page and f'id="reminder-{cardio.pk}"' not in page
    reminders.cancel_reminder(cardio)
    page = client.get("/reminders/", {"status": "cancelled"}).content.decode()
    assert f'id="reminder-{cardio.pk}"' in page and f'id="reminder-{ortho.pk}"' not in page
    day = timezone.localtime(ortho.due_at).date().isoformat()
    page = client.get("/reminders/", {"date_from": day, "date_to": day}).content.decode()
    assert f'id="reminder-{ortho.pk}"' in page and f'id="reminder-{cardio.pk}"' not in page
    page = client.get("/reminders/", {"date_from": "2026-03-10", "date_to": "2026-03-01"})
    assert "The first day is after the last day." in page.content.decode()


def test_export_is_scoped_filtered_and_audited(hospital, client) -> None:
    now = timezone.now()
    cardio = _reexam(hospital, event_at=now + dt.timedelta(days=3), now=now)
    reminders.create_appointment_reminder(
        make_patient_in(hospital.ortho),
        kind=ReminderKind.EXAM,
        event_at=now + dt.timedelta(days=10),
        place="体检中心",
    )
    client.force_login(hospital.carol)
    response = client.get("/reminders/export/", {"kind": "reexam"})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.values)
    assert rows[0][0] == "Reminder ID" and len(rows) == 2
    assert rows[1][0] == cardio.pk and rows[1][7] == cardio.text
    assert AuditEvent.objects.filter(
        action=AuditAction.EXPORT, user=hospital.carol, detail__list="reminders", detail__rows=1
    ).exists()
