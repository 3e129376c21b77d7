"""Click-to-call asks the hospital's contact policy first (careloop.outreach.policy) and records
the call as a contact attempt, ended with the call."""

from __future__ import annotations

import datetime as dt

import pytest

from careloop.contactcenter import services
from careloop.contactcenter.choices import CallState
from careloop.contactcenter.models import Call
from careloop.contactcenter.tests.conftest import REAL_CONTACT_HOURS
from careloop.contactcenter.tests.factories import make_agent_phone, make_patient_in
from careloop.followup.tests.factories import make_task
from careloop.outreach import policy
from careloop.outreach.choices import AttemptState, Purpose
from careloop.outreach.models import ContactAttempt

AGENT, PATIENT = "a" * 16, "b" * 16


class FakeEngine:
    def __init__(self) -> None:
        self.dialled: list[str] = []

    def originate(self, to, **kwargs):
        self.dialled.append(to)
        return {"call_id": AGENT if len(self.dialled) == 1 else PATIENT}

    def hangup(self, call_id, *, cause="normal"):
        pass


@pytest.fixture
def engine(monkeypatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(services, "client", lambda: fake)
    return fake


def _ended(seq: int, leg: str, cause: str) -> dict:
    return {
        "v": 1,
        "seq": seq,
        "ts": f"2026-11-22T02:50:{seq:02d}.000Z",
        "type": "call.ended",
        "call_id": leg,
        "data": {"cause": cause, "hangup_by": "remote"},
    }


def test_a_call_in_quiet_hours_is_refused_with_the_policys_reason(
    client, hospital, engine, monkeypatch
):
    monkeypatch.setattr(policy, "next_contact_time", REAL_CONTACT_HOURS)
    rules = policy.current_policy()
    rules.windows = []  # no contact hours at all
    rules.save()
    make_agent_phone(hospital.alice, uri="sip:alice@127.0.0.1:9")
    patient = make_patient_in(hospital.cardio)
    with pytest.raises(services.CallError) as refused:
        services.click_to_call(patient, acting_user=hospital.alice)
    assert str(refused.value) == policy.may_contact(patient, "phone").message
    assert not Call.objects.exists() and not ContactAttempt.objects.exists()
    assert engine.dialled == []

    client.force_login(hospital.alice)
    response = client.post(f"/cc/call/{patient.pk}/")
    assert response.status_code == 409
    assert 'role="alert"' in response.content.decode()


def test_the_daily_cap_refuses_a_third_call(hospital, engine):
    make_agent_phone(hospital.alice, uri="sip:alice@127.0.0.1:9")
    patient = make_patient_in(hospital.cardio)
    rules = policy.current_policy()
    for _ in range(rules.max_per_day):
        call = services.click_to_call(patient, acting_user=hospital.alice)
        Call.objects.filter(pk=call.pk).update(patient_leg_id=PATIENT)  # the patient was dialled
        services._end(call, cause="normal")
    with pytest.raises(services.CallError):
        services.click_to_call(patient, acting_user=hospital.alice)
    assert Call.objects.count() == rules.max_per_day


def test_the_attempt_is_linked_to_the_call_and_ended_with_it(hospital, engine):
    make_agent_phone(hospital.alice, uri="sip:alice@127.0.0.1:9")
    task = make_task(hospital.cardio, assignee=hospital.alice)
    call = services.click_to_call(task.patient, acting_user=hospital.alice, task=task)
    attempt = ContactAttempt.objects.get()
    assert (attempt.call, attempt.task, attempt.purpose) == (call, task, Purpose.FOLLOWUP)
    assert (attempt.channel, attempt.state) == ("phone", AttemptState.DIALING)
    assert attempt.created_by == hospital.alice and attempt.started_at is not None

    Call.objects.filter(pk=call.pk).update(patient_leg_id=PATIENT)
    services.handle_events([_ended(2, PATIENT, "busy")])
    attempt.refresh_from_db()
    call.refresh_from_db()
    assert call.state == CallState.ENDED
    assert (attempt.state, attempt.result) == (AttemptState.ENDED, "busy")
    assert attempt.ended_at == dt.datetime(2026, 11, 22, 2, 50, 2, tzinfo=dt.UTC)


def test_a_call_without_a_task_is_an_other_call_and_an_answered_one_ends_answered(hospital, engine):
    make_agent_phone(hospital.alice, uri="sip:alice@127.0.0.1:9")
    patient = make_patient_in(hospital.cardio)
    call = services.click_to_call(patient, acting_user=hospital.alice)
    attempt = ContactAttempt.objects.get(call=call)
    assert attempt.purpose == Purpose.CALL
    answered = dt.datetime(2026, 11, 22, 2, 49, 0, tzinfo=dt.UTC)
    Call.objects.filter(pk=call.pk).update(
        patient_leg_id=PATIENT, answered_at=answered, state=CallState.TALKING
    )
    services.handle_events([_ended(3, PATIENT, "remote_hangup")])
    attempt.refresh_from_db()
    assert (attempt.state, attempt.result, attempt.answered_at) == (
        AttemptState.ENDED,
        "answered",
        answered,
    )


def test_an_engine_refusal_cancels_the_attempt_as_never_dialled(hospital, monkeypatch, settings):
    settings.ENGINE_URL = "http://127.0.0.1:9"  # nothing listens
    make_agent_phone(hospital.alice, uri="sip:alice@127.0.0.1:9")
    patient = make_patient_in(hospital.cardio)
    with pytest.raises(services.CallError):
        services.click_to_call(patient, acting_user=hospital.alice)
    attempt = ContactAttempt.objects.get()
    assert (attempt.state, attempt.result) == (AttemptState.CANCELLED, "not_dialled")
    assert attempt.call.cause == "engine_unreachable"
    assert not policy.counted_contacts(patient).exists()
