"""Automated follow-up calls: due steps are called, keypad answers land in the response model."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from careloop.alerts.models import Alert
from careloop.contactcenter.models import Recording
from careloop.contactcenter.services import handle_events
from careloop.followup import services as followup
from careloop.followup import states
from careloop.followup.choices import Channel, Outcome
from careloop.followup.models import FollowUpRecord
from careloop.outreach import automated, dialler
from careloop.outreach.choices import AttemptState
from careloop.outreach.models import ContactAttempt
from careloop.outreach.tests.dialler_fakes import (
    NOW,
    Events,
    FakeEngine,
    make_ivr_task,
    open_policy,
)
from careloop.surveys.choices import ResponseChannel

pytestmark = pytest.mark.django_db


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr("careloop.outreach.dialler.client", lambda: fake)
    monkeypatch.setattr("careloop.contactcenter.engine_client.client", lambda: fake)
    monkeypatch.setattr("careloop.outreach.dialler.wake", lambda: None)
    return fake


def call(
    task: Any,
    events: Events,
    *,
    answered: dict[str, Any] | None = None,
    result: str = "no_answer",
    now: dt.datetime = NOW,
    capture: Any,
) -> ContactAttempt:
    """Dial the task's due attempt and play the engine's events for it."""
    assert dialler.dispatch(now=now) == 1
    attempt = ContactAttempt.objects.get(task=task, state=AttemptState.DIALING)
    events.clock = now
    batch = (
        events.answered(attempt.leg_id, attempt.pk, answered)
        if answered is not None
        else events.unanswered(attempt.leg_id, attempt.pk, result)
    )
    with capture(execute=True):
        handle_events(batch)
    attempt.refresh_from_db()
    return attempt


def test_due_automated_steps_get_one_call_scheduled(hospital, engine) -> None:
    open_policy()
    task = make_ivr_task(hospital.cardio)
    assert task.channel == Channel.IVR and task.status == states.DUE
    assert automated.schedule_due_tasks(now=NOW) == 1
    assert automated.schedule_due_tasks(now=NOW) == 0  # one at a time
    attempt = ContactAttempt.objects.get(task=task)
    assert attempt.purpose == "followup" and attempt.channel == Channel.IVR
    assert attempt.data["flow_variables"] == {"patient_name": "张先生", "task_id": task.pk}
    flow = attempt.data["flow"]
    assert flow["format"] == "careloop-flow/1" and "心内科" in flow["nodes"]["greet"]["say"]
    assert "q_temperature" in flow["nodes"] and "q_medication" in flow["nodes"]


def test_nurse_steps_and_steps_not_yet_due_are_not_called(hospital, engine) -> None:
    from careloop.followup.tests.factories import make_task

    open_policy()
    make_task(hospital.cardio, now=NOW)  # channel phone
    task = make_ivr_task(hospital.cardio)
    assert automated.schedule_due_tasks(now=NOW - dt.timedelta(days=5)) == 0
    assert automated.schedule_due_tasks(now=NOW) == 1
    assert ContactAttempt.objects.get().task == task


def test_keypad_answers_land_in_the_response_and_raise_the_fever_alert(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    task = make_ivr_task(hospital.cardio)
    automated.schedule_due_tasks(now=NOW)
    events = Events()
    attempt = call(
        task,
        events,
        capture=django_capture_on_commit_callbacks,
        answered={
            "consent": "1",
            "a_temperature": "386",
            "a_medication": "1",
            "outreach_result": "completed",
        },
    )
    with django_capture_on_commit_callbacks(execute=True):
        handle_events(
            [
                events.make(
                    "recording.finished",
                    attempt.leg_id,
                    recording_id="rec9",
                    path="/x/rec9.ogg",
                    duration=40.0,
                    mode="both",
                    partial=False,
                )
            ]
        )
    assert attempt.result == "completed"
    task.refresh_from_db()
    assert task.status == states.DONE and task.channel == Channel.IVR
    record = FollowUpRecord.objects.get(task=task)
    assert record.outcome == Outcome.REACHED and record.channel == Channel.IVR
    assert record.recorded_by is None
    assert record.response.channel == ResponseChannel.IVR
    assert record.response.answers == {"temperature": 38.6, "medication": True}
    assert attempt.data["followup_record"] == record.pk
    assert Recording.objects.get(recording_id="rec9").followup_record == record
    alert = Alert.objects.get(patient=task.patient)
    assert alert.question_key == "temperature" and alert.task == task


def test_required_question_left_unanswered_goes_to_a_nurse_with_the_keypad_answers(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    task = make_ivr_task(hospital.cardio)
    automated.schedule_due_tasks(now=NOW)
    call(
        task,
        Events(),
        capture=django_capture_on_commit_callbacks,
        answered={"a_temperature": "365", "outreach_result": "completed"},
    )
    task.refresh_from_db()
    assert task.status in states.OPEN and task.channel == Channel.PHONE
    record = FollowUpRecord.objects.get(task=task)
    assert record.channel == Channel.IVR and record.response is None
    assert "36.5" in record.note and "是否按时服药" in record.note


def test_completing_the_step_by_phone_cancels_the_scheduled_call(hospital, engine) -> None:
    open_policy()
    task = make_ivr_task(hospital.cardio)
    automated.schedule_due_tasks(now=NOW)
    followup.record_outcome(
        task,
        outcome=Outcome.REACHED,
        answers={"temperature": 36.6, "medication": True},
        acting_user=hospital.alice,
        now=NOW,
    )
    attempt = ContactAttempt.objects.get(task=task)
    assert attempt.state == AttemptState.CANCELLED
    assert dialler.dispatch(now=NOW) == 0 and not engine.originated


def test_a_step_finished_set_based_is_cancelled_before_dialling(hospital, engine) -> None:
    from careloop.followup.models import Task

    open_policy()
    task = make_ivr_task(hospital.cardio)
    automated.schedule_due_tasks(now=NOW)
    Task.objects.filter(pk=task.pk).update(status=states.CANCELLED, completed_at=timezone.now())
    assert dialler.dispatch(now=NOW) == 0
    assert ContactAttempt.objects.get(task=task).state == AttemptState.CANCELLED


def test_the_task_page_and_list_say_the_step_is_with_the_dialler(
    hospital, engine, client, django_capture_on_commit_callbacks
) -> None:
    from careloop.followup.tests.factories import make_team

    open_policy()
    team = make_team(hospital.cardio, members=[hospital.alice])
    task = make_ivr_task(hospital.cardio, team=team, assignment="even")
    automated.schedule_due_tasks(now=NOW)
    call(task, Events(), result="busy", capture=django_capture_on_commit_callbacks)
    client.force_login(hospital.alice)
    page = client.get(f"/followup/tasks/{task.pk}/").content.decode()
    assert 'id="automated-calls"' in page and "busy" in page
    listing = client.get("/followup/tasks/?status=").content.decode()
    assert f'href="/followup/tasks/{task.pk}/"' in listing
    assert "with the automated dialler" in listing or "自动外呼进行中" in listing
    from careloop.outreach.templatetags.automated_tags import with_dialler

    task.refresh_from_db()
    assert with_dialler(task) is True


def test_a_step_is_not_called_again_while_its_last_result_is_being_handled(
    hospital, engine
) -> None:
    """The call ended (committed) but its result handler runs after commit: in between the minute
    job must not see "no call pending" and dial the patient a second time."""
    open_policy()
    task = make_ivr_task(hospital.cardio)
    ended = ContactAttempt.objects.create(
        patient=task.patient,
        channel=Channel.IVR,
        purpose="followup",
        task=task,
        state=AttemptState.ENDED,
        result="completed",
        started_at=NOW - dt.timedelta(minutes=1),
        ended_at=NOW,
    )
    assert automated.schedule_due_tasks(now=NOW) == 0
    dialler.mark_handled(ended.pk)
    ended.refresh_from_db()
    assert "handled" in ended.data
    assert automated.schedule_due_tasks(now=NOW) == 1
