"""Click-to-call (F2.4) against the real engine: the nurse's baresip phone rings, the patient (SIPp)
is dialled, both are bridged and recorded; the webhook drives the call and pushes live state."""

from __future__ import annotations

import time

import pytest
import soundfile as sf
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from careloop.audit.models import AuditAction, AuditEvent
from careloop.contactcenter import events
from careloop.contactcenter.choices import CallState
from careloop.contactcenter.models import Call, CallEvent, Recording
from careloop.contactcenter.queries import timeline_entries
from careloop.contactcenter.tests.factories import make_agent_phone, make_patient_in
from careloop.followup.tests.factories import make_task
from tests.telephony.conftest import wait_until

pytestmark = [pytest.mark.telephony, pytest.mark.django_db(transaction=True)]


def _drain(channel: str) -> list[dict]:
    """Messages already queued on an in-memory channel (they were sent after commit)."""
    layer = get_channel_layer()
    got: list[dict] = []
    while layer.channels.get(channel) is not None and not layer.channels[channel].empty():
        got.append(async_to_sync(layer.receive)(channel))
    return got


def test_click_to_call_bridges_nurse_and_patient_and_attaches_the_recording(
    hospital, client, engine_factory, patient_phone, nurse_phone
) -> None:
    engine_factory()
    patient_side = patient_phone(seconds=30)
    nurse = nurse_phone("alice", tone_hz=700)
    make_agent_phone(hospital.alice, uri=nurse.uri)
    task = make_task(hospital.cardio, assignee=hospital.alice)
    layer = get_channel_layer()
    agent_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.agent_group(hospital.alice.pk), agent_channel)

    client.force_login(hospital.alice)
    response = client.post(
        "/cc/call/", {"patient": task.patient_id, "task": task.pk, "number": "patient"}
    )
    assert response.status_code == 302
    call = Call.objects.get()
    assert response.url == f"/cc/calls/{call.pk}/"
    assert call.agent == hospital.alice and call.task == task and call.agent_leg_id

    wait_until(
        lambda: Call.objects.filter(pk=call.pk, state=CallState.TALKING).exists(),
        timeout=20,
        what="the call to be bridged",
    )
    page = client.get(f"/cc/calls/{call.pk}/")
    assert page.status_code == 200
    assert task.patient.phone not in page.content.decode()
    time.sleep(3)
    assert client.post(f"/cc/calls/{call.pk}/hangup/").status_code == 302

    recording = wait_until(
        lambda: Recording.objects.filter(call=call).first(), timeout=20, what="the recording"
    )
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.patient_leg_id and call.bridge_id
    assert call.answered_at and call.ended_at and call.duration > 2.5
    assert recording.duration > 2.5 and not recording.partial
    samples, rate = sf.read(recording.path)
    assert abs(len(samples) / rate - recording.duration) < 0.1
    assert abs(samples).max() > 0.05, "the recording is silent"
    code, output = patient_side.wait(20)
    assert code == 0, output

    types = list(CallEvent.objects.filter(call=call).values_list("type", flat=True))
    assert "call.answered" in types and "recording.finished" in types
    cdrs = wait_until(
        lambda: (
            list(CallEvent.objects.filter(call=call, type="cdr").order_by("leg")) or None
            if CallEvent.objects.filter(call=call, type="cdr").count() == 2
            else None
        ),
        what="both legs' CDRs",
    )
    assert [c.leg for c in cdrs] == ["agent", "patient"]
    assert all(c.data["billsec"] > 2.5 and c.data["answer"] for c in cdrs)
    assert cdrs[1].data["recordings"][0]["recording_id"] == recording.recording_id
    assert task.patient.phone not in str([c.data for c in cdrs])
    call.refresh_from_db()
    assert call.dial_result == "answered"
    states = [m["call"]["state"] for m in _drain(agent_channel) if m["type"] == "call.update"]
    assert states[0] == CallState.DIALING_AGENT
    assert CallState.RINGING_PATIENT in states and CallState.TALKING in states
    assert states[-1] == CallState.ENDED

    [entry] = timeline_entries(task.patient)
    assert entry.kind == "call" and entry.url == f"/cc/recordings/{recording.pk}/"

    played = client.get(f"/cc/recordings/{recording.pk}/", HTTP_RANGE="bytes=0-99")
    assert played.status_code == 206 and played["Content-Type"] == "audio/ogg"
    assert played.content[:4] == b"OggS" and len(played.content) == 100
    assert (
        AuditEvent.objects.filter(
            action=AuditAction.PLAY_RECORDING, user=hospital.alice, patient=task.patient
        ).count()
        == 1
    )
    client.force_login(hospital.bob)
    assert client.get(f"/cc/recordings/{recording.pk}/").status_code == 404


def test_unanswered_patient_ends_the_call_and_hangs_up_the_nurse(
    hospital, client, engine_factory, patient_phone, nurse_phone
) -> None:
    engine_factory()
    patient_phone(scenario="uas_reject.xml", subs={"CODE": "486", "REASON": "Busy Here"})
    nurse = nurse_phone("alice")
    make_agent_phone(hospital.alice, uri=nurse.uri)
    patient = make_patient_in(hospital.cardio)

    client.force_login(hospital.alice)
    assert client.post(f"/cc/call/{patient.pk}/").status_code == 302
    call = wait_until(
        lambda: Call.objects.filter(state=CallState.ENDED).first(), timeout=20, what="call end"
    )
    assert call.agent_answered_at is not None and call.answered_at is None
    assert call.sip_code and call.sip_code >= 400
    wait_until(
        lambda: CallEvent.objects.filter(call=call, type="call.ended", leg="agent").exists(),
        what="the nurse's leg to be hung up",
    )


def test_calls_the_engine_no_longer_knows_are_ended_as_lost(hospital, engine_factory) -> None:
    import datetime as dt

    from django.utils import timezone

    from careloop.contactcenter import services
    from careloop.contactcenter.tests.factories import make_call

    engine_factory()
    old = timezone.now() - dt.timedelta(minutes=10)
    patient = make_patient_in(hospital.cardio)
    lost = make_call(
        hospital.alice,
        patient,
        state=CallState.TALKING,
        created_at=old,
        agent_leg_id="0123456789abcdef",
        patient_leg_id="fedcba9876543210",
    )
    fresh = make_call(
        hospital.alice, patient, state=CallState.DIALING_AGENT, agent_leg_id="00112233445566aa"
    )
    assert services.reconcile_calls() == 1
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.state == CallState.ENDED and lost.cause == "lost"
    assert fresh.state == CallState.DIALING_AGENT
    assert services.reconcile_calls() == 0
    services.hang_up(fresh, acting_user=hospital.alice)
    fresh.refresh_from_db()
    assert fresh.state == CallState.ENDED and fresh.cause == "lost"
