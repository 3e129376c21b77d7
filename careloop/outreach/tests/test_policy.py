"""The one contact policy: quiet hours, caps, do-not-contact, consent, opt-outs, death."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from careloop.core.testing import make_patient
from careloop.followup.choices import Channel, TaskStatus
from careloop.followup.tests.factories import make_task
from careloop.outreach import policy
from careloop.outreach.choices import AttemptState, BlockKind, BlockSource, Purpose
from careloop.outreach.models import ContactAttempt

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english_messages")]


def local(*args: int) -> dt.datetime:
    return timezone.make_aware(dt.datetime(*args))


WEDNESDAY_10 = local(2026, 11, 25, 10, 0)


def made(patient, at: dt.datetime, *, state=AttemptState.ENDED, purpose=Purpose.FOLLOWUP):
    return ContactAttempt.objects.create(
        patient=patient,
        channel=Channel.IVR,
        purpose=purpose,
        state=state,
        started_at=at if state != AttemptState.SCHEDULED else None,
        created_at=at,
    )


def test_inside_contact_hours_is_allowed() -> None:
    assert policy.may_contact(make_patient(), Channel.IVR, now=WEDNESDAY_10).allowed


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        (local(2026, 11, 25, 7, 0), local(2026, 11, 25, 8, 30)),  # early morning
        (local(2026, 11, 25, 12, 30), local(2026, 11, 25, 14, 0)),  # lunch break
        (local(2026, 11, 25, 21, 0), local(2026, 11, 26, 8, 30)),  # night
    ],
)
def test_quiet_hours_refuse_until_the_next_opening(moment, opening) -> None:
    decision = policy.may_contact(make_patient(), Channel.PHONE, now=moment)
    assert not decision.allowed and decision.reason == "quiet_hours"
    assert decision.retry_at == opening and not decision.permanent
    assert "Outside contact hours" in decision.message


def test_holidays_are_quiet_and_make_up_workdays_follow_monday() -> None:
    rules = policy.current_policy()
    rules.windows = [{"days": [1, 2, 3, 4, 5], "from": "09:00", "to": "17:00"}]
    rules.holidays = ["2026-11-25"]
    rules.workdays = ["2026-11-28"]  # a Saturday worked in exchange (调休)
    rules.save()
    decision = policy.may_contact(make_patient(), Channel.IVR, now=WEDNESDAY_10)
    assert decision.reason == "quiet_hours"
    assert decision.retry_at == local(2026, 11, 26, 9, 0)
    assert policy.in_contact_hours(local(2026, 11, 28, 10, 0))
    assert not policy.in_contact_hours(local(2026, 11, 29, 10, 0))


def test_daily_cap_counts_contacts_made_today_only() -> None:
    patient = make_patient()
    made(patient, local(2026, 11, 24, 15, 0))  # yesterday
    made(patient, local(2026, 11, 25, 8, 40))
    made(patient, local(2026, 11, 25, 9, 0), state=AttemptState.SCHEDULED)  # not made yet
    made(patient, local(2026, 11, 25, 9, 10), state=AttemptState.CANCELLED)
    assert policy.may_contact(patient, Channel.IVR, now=WEDNESDAY_10).allowed
    made(patient, local(2026, 11, 25, 9, 30), state=AttemptState.DIALING)
    decision = policy.may_contact(patient, Channel.IVR, now=WEDNESDAY_10)
    assert decision.reason == "daily_cap"
    assert decision.retry_at == local(2026, 11, 26, 8, 30)
    assert "2 times today" in decision.message


def test_weekly_cap_is_a_rolling_seven_days() -> None:
    patient = make_patient()
    for day in (19, 20, 21, 22, 23):
        made(patient, local(2026, 11, day, 9, 0))
    decision = policy.may_contact(patient, Channel.PHONE, now=WEDNESDAY_10)
    assert decision.reason == "weekly_cap"
    # The oldest of the five leaves the window 7 days later (26th, 09:00), in contact hours.
    assert decision.retry_at == local(2026, 11, 26, 9, 0)


def test_abnormal_result_calls_are_not_capped_but_keep_quiet_hours() -> None:
    patient = make_patient()
    made(patient, local(2026, 11, 25, 8, 40))
    made(patient, local(2026, 11, 25, 9, 0))
    assert not policy.may_contact(patient, Channel.PHONE, now=WEDNESDAY_10).allowed
    assert policy.may_contact(
        patient, Channel.PHONE, now=WEDNESDAY_10, purpose=Purpose.ALERT
    ).allowed
    night = policy.may_contact(
        patient, Channel.PHONE, now=local(2026, 11, 25, 23, 0), purpose=Purpose.ALERT
    )
    assert night.reason == "quiet_hours"


@pytest.mark.parametrize(
    ("flags", "channel", "reason"),
    [
        ({"is_deceased": True}, Channel.PHONE, "deceased"),
        ({"do_not_contact": True}, Channel.SMS, "do_not_contact"),
        ({"call_opt_out": True}, Channel.IVR, "opted_out"),
        ({"sms_opt_out": True}, Channel.SMS, "opted_out"),
    ],
)
def test_patient_flags_refuse_for_good(flags, channel, reason) -> None:
    decision = policy.may_contact(make_patient(**flags), channel, now=WEDNESDAY_10)
    assert decision.reason == reason and decision.permanent


def test_sms_opt_out_does_not_stop_calls() -> None:
    assert policy.may_contact(
        make_patient(sms_opt_out=True), Channel.PHONE, now=WEDNESDAY_10
    ).allowed


def test_keypad_opt_out_stops_automated_calls_only_and_cancels_scheduled_ones() -> None:
    patient = make_patient()
    scheduled_ivr = made(patient, WEDNESDAY_10, state=AttemptState.SCHEDULED)
    scheduled_phone = ContactAttempt.objects.create(
        patient=patient, channel=Channel.PHONE, purpose=Purpose.FOLLOWUP
    )
    policy.add_block(patient, BlockKind.OPT_OUT, channel=Channel.IVR, source=BlockSource.KEYPAD)
    assert policy.may_contact(patient, Channel.IVR, now=WEDNESDAY_10).reason == "opted_out"
    assert policy.may_contact(patient, Channel.PHONE, now=WEDNESDAY_10).allowed
    scheduled_ivr.refresh_from_db()
    scheduled_phone.refresh_from_db()
    assert scheduled_ivr.state == AttemptState.CANCELLED
    assert scheduled_phone.state == AttemptState.SCHEDULED


def test_withdrawn_consent_stops_everything_including_open_tasks(hospital) -> None:
    task = make_task(hospital.cardio)
    patient = task.patient
    block = policy.add_block(
        patient, BlockKind.CONSENT_WITHDRAWN, source=BlockSource.STAFF, user=hospital.alice
    )
    decision = policy.may_contact(patient, Channel.WEB, now=WEDNESDAY_10)
    assert decision.reason == "consent_withdrawn" and decision.permanent
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    policy.lift_block(block)
    assert policy.may_contact(patient, Channel.WEB, now=WEDNESDAY_10).allowed


def test_begin_contact_records_the_contact_or_refuses_with_the_reason() -> None:
    patient = make_patient()
    first = policy.begin_contact(patient, Channel.PHONE, purpose=Purpose.FOLLOWUP, now=WEDNESDAY_10)
    assert first.state == AttemptState.DIALING and first.started_at == WEDNESDAY_10
    policy.end_contact(first, result="answered", now=WEDNESDAY_10)
    policy.begin_contact(patient, Channel.PHONE, purpose=Purpose.FOLLOWUP, now=WEDNESDAY_10)
    with pytest.raises(policy.ContactRefused) as refused:
        policy.begin_contact(patient, Channel.PHONE, purpose=Purpose.FOLLOWUP, now=WEDNESDAY_10)
    assert refused.value.decision.reason == "daily_cap"
    assert ContactAttempt.objects.filter(patient=patient).count() == 2


def test_a_scheduled_attempt_does_not_count_against_itself() -> None:
    patient = make_patient()
    made(patient, local(2026, 11, 25, 8, 40))
    attempt = made(patient, WEDNESDAY_10, state=AttemptState.SCHEDULED)
    started = policy.begin_contact(
        patient, Channel.IVR, purpose=Purpose.FOLLOWUP, now=WEDNESDAY_10, attempt=attempt
    )
    assert started.pk == attempt.pk and started.state == AttemptState.DIALING


def test_finishing_a_step_cancels_its_other_scheduled_contacts(hospital) -> None:
    from careloop.followup.services import record_outcome

    task = make_task(hospital.cardio, assignee=hospital.alice)
    pending = ContactAttempt.objects.create(
        patient=task.patient, channel=Channel.IVR, purpose=Purpose.FOLLOWUP, task=task
    )
    record_outcome(task, outcome="reached", acting_user=hospital.alice)
    pending.refresh_from_db()
    assert pending.state == AttemptState.CANCELLED
    assert "finished" in pending.reason


def test_set_based_finishes_are_caught_before_dialling(hospital) -> None:
    from careloop.followup.models import Task

    task = make_task(hospital.cardio)
    pending = ContactAttempt.objects.create(
        patient=task.patient, channel=Channel.IVR, purpose=Purpose.FOLLOWUP, task=task
    )
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.CANCELLED)  # no signal
    assert policy.cancel_finished_tasks_attempts() == 1
    pending.refresh_from_db()
    assert pending.state == AttemptState.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_two_contacts_started_at_once_cannot_both_pass_the_cap() -> None:
    patient = make_patient()
    made(patient, local(2026, 11, 25, 8, 40))

    def start() -> str:
        from django.db import close_old_connections

        close_old_connections()
        try:
            policy.begin_contact(patient, Channel.IVR, purpose=Purpose.FOLLOWUP, now=WEDNESDAY_10)
            return "started"
        except policy.ContactRefused:
            return "refused"
        except Exception as exc:  # SQLite: database is locked under contention
            return type(exc).__name__
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _i: start(), range(4)))
    assert results.count("started") == 1
    assert ContactAttempt.objects.filter(patient=patient, state=AttemptState.DIALING).count() == 1
