"""The dialler: scheduling, the policy at dialling time, concurrency, engine events."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from careloop.contactcenter.choices import CallState
from careloop.contactcenter.models import Call, CallEvent, Recording
from careloop.contactcenter.services import handle_events
from careloop.core import testing
from careloop.followup.choices import Channel
from careloop.outreach import dialler
from careloop.outreach.choices import AttemptState, BlockKind, BlockSource, Purpose
from careloop.outreach.models import ContactAttempt
from careloop.outreach.policy import add_block
from careloop.outreach.tests.dialler_fakes import NOW, Events, FakeEngine, open_policy

pytestmark = pytest.mark.django_db

FLOW = {
    "format": "careloop-flow/1",
    "id": "t",
    "version": 1,
    "start": "bye",
    "nodes": {"bye": {"type": "hangup", "say": "再见"}},
}


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr("careloop.outreach.dialler.client", lambda: fake)
    monkeypatch.setattr("careloop.contactcenter.engine_client.client", lambda: fake)
    monkeypatch.setattr("careloop.outreach.dialler.wake", lambda: None)
    return fake


@pytest.fixture
def results() -> list[Any]:
    seen: list[Any] = []
    dialler.register_result_handler(
        "call", lambda attempt: seen.append((attempt.pk, attempt.state, attempt.result))
    )
    yield seen
    dialler._handlers.pop("call", None)


def _schedule(patient: Any = None, **kwargs: Any) -> ContactAttempt:
    patient = patient or testing.make_patient()
    return dialler.schedule(
        patient,
        purpose=Purpose.CALL,
        flow=FLOW,
        variables={"x": 1},
        not_before=kwargs.pop("not_before", NOW),
        **kwargs,
    )


def test_schedule_then_dispatch_originates_with_flow_variables_and_app_data(
    hospital, engine, settings
) -> None:
    open_policy(ring_timeout=25)
    settings.CC_PATIENT_DIAL = "sip:{number}@127.0.0.1:5999"
    attempt = _schedule(data={"campaign_target": 7})
    assert attempt.state == AttemptState.SCHEDULED and attempt.data["campaign_target"] == 7
    assert dialler.dispatch(now=NOW) == 1
    [sent] = engine.originated
    assert sent["to"] == f"sip:{attempt.patient.phone}@127.0.0.1:5999"
    assert sent["flow"] == FLOW and sent["variables"] == {"x": 1}
    assert sent["app_data"] == {"outreach_attempt": attempt.pk} and sent["ring_timeout"] == 25
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.DIALING and attempt.started_at == NOW
    assert attempt.leg_id == sent["call_id"]
    call = Call.objects.get(pk=attempt.call_id)
    assert call.agent is None and call.patient_leg_id == attempt.leg_id
    assert dialler.dispatch(now=NOW) == 0  # nothing else is due


def test_not_yet_due_and_priority_order(hospital, engine) -> None:
    open_policy(automated_concurrency=1)
    later = _schedule(not_before=NOW + dt.timedelta(minutes=5))
    low = _schedule(priority=0)
    high = _schedule(priority=5)
    assert dialler.dispatch(now=NOW) == 1
    assert engine.originated[0]["app_data"] == {"outreach_attempt": high.pk}
    later.refresh_from_db()
    low.refresh_from_db()
    assert later.state == low.state == AttemptState.SCHEDULED


def test_never_more_calls_than_the_policy_allows_at_once(
    hospital, engine, results, django_capture_on_commit_callbacks
) -> None:
    open_policy(automated_concurrency=2)
    attempts = [_schedule() for _ in range(5)]
    assert dialler.dispatch(now=NOW) == 2
    assert dialler.dispatch(now=NOW) == 0
    assert ContactAttempt.objects.filter(state=AttemptState.DIALING).count() == 2
    first = ContactAttempt.objects.filter(state=AttemptState.DIALING).order_by("pk").first()
    events = Events()
    with django_capture_on_commit_callbacks(execute=True):
        handle_events(events.unanswered(first.leg_id, first.pk, "busy"))
    assert results == [(first.pk, AttemptState.ENDED, "busy")]
    assert dialler.dispatch(now=NOW) == 1  # a place was freed
    assert ContactAttempt.objects.filter(state=AttemptState.SCHEDULED).count() == 2
    assert len(attempts) == 5


def test_a_campaign_keeps_to_its_own_lower_limit(hospital, engine) -> None:
    open_policy(automated_concurrency=10)
    for _ in range(4):
        _schedule(data={"campaign": 3, "concurrency": 1}, priority=1)
    other = _schedule()
    assert dialler.dispatch(now=NOW) == 2
    dialling = ContactAttempt.objects.filter(state=AttemptState.DIALING)
    assert {a.pk for a in dialling} >= {other.pk}
    assert dialling.filter(data__campaign=3).count() == 1


def test_quiet_hours_reschedule_to_the_next_opening_with_the_reason(hospital, engine) -> None:
    open_policy()
    night = timezone.make_aware(dt.datetime(2026, 3, 10, 22, 0))
    attempt = _schedule(not_before=night)
    assert dialler.dispatch(now=night) == 0
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.SCHEDULED and attempt.started_at is None
    assert attempt.not_before == timezone.make_aware(dt.datetime(2026, 3, 11, 8, 30))
    assert attempt.reason and not engine.originated


def test_daily_cap_moves_the_attempt_to_the_next_day(hospital, engine) -> None:
    open_policy(max_per_day=1)
    patient = testing.make_patient()
    _schedule(patient)
    second = _schedule(patient)
    assert dialler.dispatch(now=NOW) == 1
    second.refresh_from_db()
    assert second.state == AttemptState.SCHEDULED
    assert second.not_before == timezone.make_aware(dt.datetime(2026, 3, 11, 8, 30))


def test_permanent_refusal_blocks_and_tells_the_purpose(
    hospital, engine, results, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    patient = testing.make_patient()
    attempt = _schedule(patient)
    patient.do_not_contact = True
    patient.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert dialler.dispatch(now=NOW) == 0
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.BLOCKED and attempt.reason
    assert results == [(attempt.pk, AttemptState.BLOCKED, "")]
    assert not engine.originated


def test_an_opt_out_block_cancels_scheduled_automated_calls(hospital, engine) -> None:
    open_policy()
    patient = testing.make_patient()
    attempt = _schedule(patient)
    add_block(patient, BlockKind.OPT_OUT, channel=Channel.IVR, source=BlockSource.KEYPAD)
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.CANCELLED
    assert dialler.dispatch(now=NOW) == 0


def test_engine_unreachable_puts_the_attempt_back(hospital, engine, caplog) -> None:
    open_policy()
    attempt = _schedule()
    engine.down = True
    assert dialler.dispatch(now=NOW) == 0
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.SCHEDULED and attempt.started_at is None
    assert attempt.not_before == NOW + dialler.ENGINE_RETRY and attempt.call_id is None
    assert "unreachable" in attempt.reason
    assert attempt.patient.phone not in caplog.text and attempt.patient.name not in caplog.text
    assert not Call.objects.exists()
    engine.down = False
    assert dialler.dispatch(now=NOW + dialler.ENGINE_RETRY) == 1


def test_answered_call_stores_variables_without_numbers_and_records(
    hospital, engine, results, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    attempt = _schedule()
    dialler.dispatch(now=NOW)
    attempt.refresh_from_db()
    events = Events()
    batch = events.answered(
        attempt.leg_id, attempt.pk, {"outreach_result": "completed", "a_q": "1"}
    )
    batch.append(
        events.make(
            "recording.finished",
            attempt.leg_id,
            recording_id="rec1",
            path="/data/recordings/rec1.ogg",
            duration=12.5,
            mode="both",
            partial=False,
        )
    )
    with django_capture_on_commit_callbacks(execute=True):
        handle_events(batch)
        handle_events(batch)  # the engine sent the batch again
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.ENDED and attempt.result == "completed"
    assert attempt.data["variables"]["a_q"] == "1"
    assert "caller" not in attempt.data["variables"] and "callee" not in attempt.data["variables"]
    assert results == [(attempt.pk, AttemptState.ENDED, "completed")]
    assert ("record", attempt.leg_id) in engine.commands
    call = Call.objects.get(pk=attempt.call_id)
    assert call.state == CallState.ENDED and call.answered_at and call.dial_result == "answered"
    assert Recording.objects.get().call == call
    assert CallEvent.objects.filter(call=call).count() == len(batch)


def test_events_of_other_calls_are_left_to_the_contact_center(hospital, engine) -> None:
    from careloop.outreach.events import handle_event

    events = Events()
    assert handle_event(events.make("call.answered", "ffff000011112222", codec="PCMA")) is False
    assert (
        handle_event(
            events.make("call.created", "ffff000011112223", direction="inbound", app_data={})
        )
        is False
    )


def test_reconcile_ends_calls_the_engine_lost(
    hospital, engine, results, django_capture_on_commit_callbacks
) -> None:
    open_policy()
    attempt = _schedule()
    dialler.dispatch(now=NOW)
    assert dialler.reconcile(now=NOW + dt.timedelta(minutes=10)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert dialler.reconcile(now=NOW + dt.timedelta(hours=1)) == 1
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.ENDED and attempt.result == "failed"
