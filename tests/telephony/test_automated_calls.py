"""Automated follow-up calls end to end (issue 4 items 4, 5, 10): the dialler places real calls
through the engine to SIPp patients, whose phones press keys (RFC 4733, typed ahead of the
prompts); the engine's webhooks reach the application (Django's live server) and the answers
land in the same response model the nurses use."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone
from rtp_pcap import Key, Silence, Tone, write_rtp_pcap

from careloop.alerts.models import Alert
from careloop.contactcenter.choices import CallState
from careloop.contactcenter.models import Call, Recording
from careloop.followup import states
from careloop.followup.choices import Channel, Outcome
from careloop.followup.models import FollowUpRecord, Task
from careloop.outreach import automated, dialler
from careloop.outreach.choices import AttemptState, BlockKind, BlockSource
from careloop.outreach.models import ContactAttempt, ContactBlock
from careloop.outreach.tests.dialler_fakes import make_ivr_task, open_policy
from careloop.surveys.choices import ResponseChannel
from tests.telephony.conftest import wait_until

pytestmark = [pytest.mark.telephony, pytest.mark.django_db(transaction=True)]

ALL_DAY = [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "23:59"}]


def _keys(tmp_path: Path, name: str, digits: str, *, talk_ms: int = 20000) -> str:
    """A patient's RTP: a moment of silence, the keys (typed ahead of the prompts), then voice."""
    pcap = tmp_path / f"{name}.pcap"
    write_rtp_pcap(pcap, [Silence(1500), *[Key(d) for d in digits], Tone(440, talk_ms, level=0.2)])
    return str(pcap)


def _task(task_id: int) -> Task:
    return Task.objects.get(pk=task_id)


def _ended(task_id: int, count: int = 1) -> list[ContactAttempt] | None:
    done = list(ContactAttempt.objects.filter(task_id=task_id, state=AttemptState.ENDED))
    return done if len(done) >= count else None


def test_patient_answers_by_keypad_and_a_fever_raises_an_alert(
    hospital, tmp_path, engine_factory, patient_phone
) -> None:
    engine_factory()
    open_policy(windows=ALL_DAY)
    phone = patient_phone(subs={"PCAP": _keys(tmp_path, "fever", "1386#1"), "BYE_TIMEOUT": "40000"})
    task = make_ivr_task(hospital.cardio, now=timezone.now())
    assert automated.schedule_due_tasks() == 1
    assert dialler.dispatch() == 1

    [attempt] = wait_until(lambda: _ended(task.pk), timeout=35, what="the automated call to end")
    assert attempt.result == "completed", attempt.data
    assert attempt.data["variables"]["a_temperature"] == "386"
    wait_until(lambda: _task(task.pk).status == states.DONE, timeout=10, what="the step done")
    record = FollowUpRecord.objects.get(task=task)
    assert record.outcome == Outcome.REACHED and record.channel == Channel.IVR
    assert record.response.channel == ResponseChannel.IVR
    assert record.response.answers == {"temperature": 38.6, "medication": True}
    alert = wait_until(
        lambda: Alert.objects.filter(patient=task.patient).first(), timeout=10, what="the alert"
    )
    assert alert.question_key == "temperature"
    call = Call.objects.get(pk=attempt.call_id)
    assert call.agent is None and call.state == CallState.ENDED and call.answered_at
    recording = wait_until(
        lambda: Recording.objects.filter(call=call).first(), timeout=15, what="the recording"
    )
    assert Path(recording.path).is_file() and recording.duration > 2
    assert recording.followup_record == record
    code, output = phone.wait(20)
    assert code == 0, output


def test_pressing_9_stops_automated_calls_and_gives_the_step_to_a_nurse(
    hospital, tmp_path, engine_factory, patient_phone
) -> None:
    engine_factory()
    open_policy(windows=ALL_DAY)
    phone = patient_phone(subs={"PCAP": _keys(tmp_path, "optout", "9"), "BYE_TIMEOUT": "30000"})
    task = make_ivr_task(hospital.cardio, now=timezone.now())
    automated.schedule_due_tasks()
    assert dialler.dispatch() == 1

    [attempt] = wait_until(lambda: _ended(task.pk), timeout=30, what="the automated call to end")
    assert attempt.result == "opted_out"
    wait_until(lambda: _task(task.pk).channel == Channel.PHONE, timeout=10, what="the handover")
    block = ContactBlock.objects.get(patient=task.patient)
    assert (block.kind, block.channel, block.source) == (
        BlockKind.OPT_OUT,
        Channel.IVR,
        BlockSource.KEYPAD,
    )
    task.refresh_from_db()
    assert task.channel == Channel.PHONE and task.status in states.OPEN
    assert automated.schedule_due_tasks() == 0
    assert dialler.dispatch() == 0
    assert ContactAttempt.objects.filter(task=task).count() == 1
    code, output = phone.wait(20)
    assert code == 0, output


def test_busy_then_no_answer_are_retried_then_the_step_goes_to_a_nurse(
    hospital, engine_factory, patient_phone
) -> None:
    engine_factory()
    open_policy(windows=ALL_DAY, automated_attempts=2, automated_retry_minutes=0, ring_timeout=3)
    task = make_ivr_task(hospital.cardio, now=timezone.now())
    automated.schedule_due_tasks()

    busy = patient_phone(scenario="uas_reject.xml", subs={"CODE": "486", "REASON": "Busy Here"})
    assert dialler.dispatch() == 1
    [first] = wait_until(lambda: _ended(task.pk), timeout=15, what="the busy call")
    assert first.result == "busy"
    busy.wait(10)
    retry = wait_until(
        lambda: ContactAttempt.objects.filter(task=task, state=AttemptState.SCHEDULED).first(),
        timeout=10,
        what="the retry",
    )
    assert retry.attempt_no == 2

    silent = patient_phone(scenario="uas_noanswer.xml", subs={})
    assert dialler.dispatch() == 1
    done = wait_until(lambda: _ended(task.pk, 2), timeout=20, what="the unanswered call")
    assert sorted(a.result for a in done) == ["busy", "no_answer"]
    wait_until(lambda: _task(task.pk).channel == Channel.PHONE, timeout=10, what="the handover")
    silent.wait(10)
    task.refresh_from_db()
    assert task.channel == Channel.PHONE and task.status in states.OPEN
    assert [
        r.outcome for r in FollowUpRecord.objects.filter(task=task).order_by("recorded_at")
    ] == [
        Outcome.BUSY,
        Outcome.NO_ANSWER,
    ]
    assert not ContactAttempt.objects.filter(task=task, state=AttemptState.SCHEDULED).exists()


def test_quiet_hours_a_due_step_is_not_dialled_and_waits_for_the_opening(hospital) -> None:
    now = timezone.now()
    local = timezone.localtime(now)
    # contact hours: a one-hour window starting two hours from now, every day
    start = (local + dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    end = start + dt.timedelta(hours=1)
    if end.date() != start.date():
        start, end = start.replace(hour=22), start.replace(hour=23)
    days = [1, 2, 3, 4, 5, 6, 7]
    open_policy(
        windows=[{"days": days, "from": start.strftime("%H:%M"), "to": end.strftime("%H:%M")}]
    )
    task = make_ivr_task(hospital.cardio, now=now)
    assert automated.schedule_due_tasks(now=now) == 1
    assert dialler.dispatch(now=now) == 0
    attempt = ContactAttempt.objects.get(task=task)
    assert attempt.state == AttemptState.SCHEDULED and attempt.started_at is None
    assert timezone.localtime(attempt.not_before).strftime("%H:%M") == start.strftime("%H:%M")
    assert attempt.not_before > now and attempt.reason
    assert not Call.objects.exists()


def test_pressing_0_puts_the_patient_through_to_a_nurse_of_the_team(
    hospital, tmp_path, engine_factory, patient_phone, nurse_phone
) -> None:
    from careloop.contactcenter.engine_client import client
    from careloop.contactcenter.tests.factories import make_agent_phone
    from careloop.followup.tests.factories import make_team

    engine_factory()
    open_policy(windows=ALL_DAY)
    nurse = nurse_phone("alice", tone_hz=700)
    make_agent_phone(hospital.alice, uri=nurse.uri)
    team = make_team(hospital.cardio, members=[hospital.alice])
    phone = patient_phone(subs={"PCAP": _keys(tmp_path, "nurse", "0"), "BYE_TIMEOUT": "40000"})
    task = make_ivr_task(hospital.cardio, team=team, now=timezone.now())
    task.assignee = None
    task.save(update_fields=["assignee"])
    automated.schedule_due_tasks()
    assert dialler.dispatch() == 1

    call = wait_until(
        lambda: (
            Call.objects.filter(task=task, state=CallState.TALKING).exclude(bridge_id="").first()
        ),
        timeout=25,
        what="the patient bridged to the nurse",
    )
    assert call.agent == hospital.alice and call.agent_leg_id and call.agent_answered_at
    wait_until(lambda: _task(task.pk).assignee_id == hospital.alice.pk, timeout=5, what="task")
    assert _task(task.pk).channel == Channel.PHONE
    client().hangup(call.agent_leg_id)  # the nurse hangs up: the patient's leg follows

    [attempt] = wait_until(lambda: _ended(task.pk), timeout=15, what="the call to end")
    assert attempt.result == "to_nurse"
    assert attempt.data["handover"]["answered_by"] == hospital.alice.pk
    recording = wait_until(
        lambda: Recording.objects.filter(call=call).first(), timeout=15, what="the recording"
    )
    assert recording.duration > 1
    assert not FollowUpRecord.objects.filter(task=task).exists()  # the nurse records it
    code, output = phone.wait(20)
    assert code == 0, output
