"""The contact ladder: automated calls → retries → a nurse → unreached with both counts."""

from __future__ import annotations

import datetime as dt

import pytest

from careloop.contactcenter.models import AgentPhone, Call
from careloop.contactcenter.services import handle_events
from careloop.followup import services as followup
from careloop.followup import states
from careloop.followup.choices import Channel, Outcome
from careloop.followup.models import FollowUpRecord, Notification
from careloop.followup.tests.factories import make_team
from careloop.outreach import automated, dialler
from careloop.outreach.choices import AttemptState, BlockKind, BlockSource
from careloop.outreach.models import ContactAttempt, ContactBlock
from careloop.outreach.tests.dialler_fakes import (
    NOW,
    Events,
    FakeEngine,
    make_ivr_task,
    open_policy,
)
from careloop.outreach.tests.test_automated import call

pytestmark = pytest.mark.django_db


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr("careloop.outreach.dialler.client", lambda: fake)
    monkeypatch.setattr("careloop.contactcenter.engine_client.client", lambda: fake)
    monkeypatch.setattr("careloop.outreach.dialler.wake", lambda: None)
    return fake


def test_busy_and_no_answer_retry_then_a_nurse_then_unreached(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy(automated_attempts=3, automated_retry_minutes=60)
    team = make_team(hospital.cardio, members=[hospital.alice])
    task = make_ivr_task(hospital.cardio, team=team, assignment="pool", max_attempts=2)
    automated.schedule_due_tasks(now=NOW)
    events = Events()
    now = NOW
    for number, result in enumerate(["busy", "no_answer", "busy"], start=1):
        attempt = call(
            task, events, result=result, now=now, capture=django_capture_on_commit_callbacks
        )
        assert attempt.result == result and attempt.attempt_no == number
        task.refresh_from_db()
        if number < 3:
            nxt = ContactAttempt.objects.get(task=task, state=AttemptState.SCHEDULED)
            assert nxt.not_before == now + dt.timedelta(minutes=60)
            assert dialler.dispatch(now=now + dt.timedelta(minutes=30)) == 0  # not yet
            now = nxt.not_before
            assert task.channel == Channel.IVR
    # three automated calls used up: the step is a nurse's (pool plan → stays in the pool)
    assert task.channel == Channel.PHONE and task.status in states.OPEN and task.assignee is None
    assert not ContactAttempt.objects.filter(task=task, state=AttemptState.SCHEDULED).exists()
    assert automated.schedule_due_tasks(now=now) == 0  # no longer automated
    records = FollowUpRecord.objects.filter(task=task).order_by("recorded_at")
    assert [(r.channel, r.outcome) for r in records] == [
        (Channel.IVR, Outcome.BUSY),
        (Channel.IVR, Outcome.NO_ANSWER),
        (Channel.IVR, Outcome.BUSY),
    ]
    assert task.attempts == 0  # the nurse has all her attempts
    followup.record_outcome(task, outcome=Outcome.NO_ANSWER, acting_user=hospital.alice, now=now)
    task.refresh_from_db()
    assert task.status in states.OPEN and task.assignee == hospital.alice
    followup.record_outcome(task, outcome=Outcome.NO_ANSWER, acting_user=hospital.alice, now=now)
    task.refresh_from_db()
    assert task.status == states.UNREACHED
    assert "3" in task.end_reason and "2" in task.end_reason


def test_handover_assigns_by_the_plans_even_distribution_and_notifies(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy(automated_attempts=1)
    team = make_team(hospital.cardio, members=[hospital.alice, hospital.carol])
    task = make_ivr_task(hospital.cardio, team=team, assignment="even")
    task.assignee = None
    task.save(update_fields=["assignee"])
    automated.schedule_due_tasks(now=NOW)
    call(task, Events(), result="no_answer", capture=django_capture_on_commit_callbacks)
    task.refresh_from_db()
    assert task.channel == Channel.PHONE and task.assignee in (hospital.alice, hospital.carol)
    assert Notification.objects.filter(user=task.assignee, task=task).exists()


def test_pressing_9_opts_out_of_automated_calls_and_hands_the_step_to_a_nurse(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    task = make_ivr_task(hospital.cardio)
    automated.schedule_due_tasks(now=NOW)
    call(
        task,
        Events(),
        answered={"consent": "9", "outreach_result": "opted_out"},
        capture=django_capture_on_commit_callbacks,
    )
    block = ContactBlock.objects.get(patient=task.patient)
    assert block.kind == BlockKind.OPT_OUT and block.channel == Channel.IVR
    assert block.source == BlockSource.KEYPAD
    task.refresh_from_db()
    assert task.channel == Channel.PHONE and task.status in states.OPEN
    assert automated.schedule_due_tasks(now=NOW) == 0
    # another automated contact for the patient is refused by the policy
    other = dialler.schedule(task.patient, purpose="call", flow={}, variables={}, not_before=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        assert dialler.dispatch(now=NOW) == 0
    other.refresh_from_db()
    assert other.state == AttemptState.BLOCKED


@pytest.mark.parametrize(
    ("variables", "outcome", "words"),
    [
        ({"consent": "2", "outreach_result": "no_consent"}, Outcome.CALL_BACK, "2"),
        ({"consent": "1", "outreach_result": "to_nurse"}, Outcome.CALL_BACK, "0"),
    ],
)
def test_not_now_and_no_free_nurse_go_to_a_nurse_with_a_note(
    hospital, engine, django_capture_on_commit_callbacks, variables, outcome, words
) -> None:
    open_policy()
    task = make_ivr_task(hospital.cardio)
    automated.schedule_due_tasks(now=NOW)
    call(task, Events(), answered=variables, capture=django_capture_on_commit_callbacks)
    task.refresh_from_db()
    assert task.channel == Channel.PHONE
    record = FollowUpRecord.objects.get(task=task)
    assert record.outcome == outcome and words in record.note


def test_an_unreachable_number_goes_to_a_nurse_to_check_it(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    task = make_ivr_task(hospital.cardio)
    automated.schedule_due_tasks(now=NOW)
    call(task, Events(), result="unreachable", capture=django_capture_on_commit_callbacks)
    task.refresh_from_db()
    assert task.channel == Channel.PHONE and task.status in states.OPEN
    assert FollowUpRecord.objects.get(task=task).outcome == Outcome.WRONG_NUMBER


def test_a_patient_who_must_not_be_called_is_cancelled_not_handed_over(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    task = make_ivr_task(hospital.cardio)
    automated.schedule_due_tasks(now=NOW)
    task.patient.call_opt_out = True
    task.patient.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert dialler.dispatch(now=NOW) == 0
    task.refresh_from_db()
    assert task.status == states.CANCELLED and task.end_reason


def test_pressing_0_rings_a_nurse_of_the_team_and_bridges_her_in(
    hospital, engine, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    AgentPhone.objects.create(
        user=hospital.alice, kind="fixed", sip_username="a1", uri="sip:alice@127.0.0.1:5999"
    )
    team = make_team(hospital.cardio, members=[hospital.alice])
    task = make_ivr_task(hospital.cardio, team=team)
    automated.schedule_due_tasks(now=NOW)
    assert dialler.dispatch(now=NOW) == 1
    attempt = ContactAttempt.objects.get(task=task, state=AttemptState.DIALING)
    events = Events()
    leg = attempt.leg_id
    with django_capture_on_commit_callbacks(execute=True):
        handle_events(
            [
                events.make(
                    "call.created",
                    leg,
                    direction="outbound",
                    app_data={"outreach_attempt": attempt.pk},
                ),
                events.make("call.answered", leg, codec="PCMA"),
                events.make(
                    "call.routed",
                    leg,
                    target={"queue": "followup"},
                    variables={"outreach_result": "to_nurse"},
                ),
            ]
        )
    [(_kind, ring)] = [c for c in engine.commands if c[0] == "originate"]
    assert ring["to"] == "sip:alice@127.0.0.1:5999"
    assert ring["app_data"]["outreach_handover"] == attempt.pk
    nurse_leg = ring["call_id"]
    with django_capture_on_commit_callbacks(execute=True):
        handle_events(
            [
                events.make(
                    "call.created", nurse_leg, direction="outbound", app_data=ring["app_data"]
                ),
                events.make("call.answered", nurse_leg, codec="PCMA"),
                events.make(
                    "flow.finished",
                    leg,
                    flow_id="f",
                    flow_version=1,
                    outcome="routed",
                    node="route",
                    variables={"outreach_result": "to_nurse"},
                ),
            ]
        )
    assert ("bridge", [leg, nurse_leg]) in engine.commands
    call_row = Call.objects.get(pk=attempt.call_id)
    assert call_row.agent == hospital.alice and call_row.agent_leg_id == nurse_leg
    task.refresh_from_db()
    assert task.channel == Channel.PHONE and task.assignee == hospital.alice
    with django_capture_on_commit_callbacks(execute=True):
        handle_events(
            [
                events.make("call.ended", nurse_leg, cause="remote_hangup", hangup_by="remote"),
                events.make("call.ended", leg, cause="bridge_ended", hangup_by="local"),
            ]
        )
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.ENDED and attempt.result == "to_nurse"
    # the nurse talked to the patient: she records the outcome, nothing automatic is added
    assert not FollowUpRecord.objects.filter(task=task).exists()
