"""Webhook, websockets, recordings and agent phones (the engine itself: tests/telephony/)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.routing import URLRouter
from django.utils import timezone

from careloop.audit.models import AuditAction, AuditEvent
from careloop.contactcenter import services
from careloop.contactcenter.choices import CallState, PhoneKind
from careloop.contactcenter.models import Call, CallEvent
from careloop.contactcenter.routing import websocket_urlpatterns
from careloop.contactcenter.tests.factories import (
    make_agent_phone,
    make_call,
    make_patient_in,
    make_recording,
)

SECRET = "webhook-secret-for-tests"


class Socket(ApplicationCommunicator):
    """A websocket client for an ASGI app (channels.testing needs daphne, not installed)."""

    def __init__(self, app, path: str, user) -> None:
        scope = {
            "type": "websocket",
            "path": path,
            "headers": [],
            "query_string": b"",
            "subprotocols": [],
            "user": user,
        }
        super().__init__(app, scope)

    async def connect(self) -> tuple[bool, int | None]:
        await self.send_input({"type": "websocket.connect"})
        reply = await self.receive_output(3)
        return reply["type"] == "websocket.accept", reply.get("code")

    async def receive_json_from(self, timeout: float = 3) -> dict:
        reply = await self.receive_output(timeout)
        return json.loads(reply["text"])

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(1)


def _post_events(client, batch, *, secret=SECRET):
    body = json.dumps({"events": batch}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        "/cc/engine/events/",
        body,
        content_type="application/json",
        HTTP_X_CARELOOP_SIGNATURE=signature,
    )


@pytest.fixture
def webhook_settings(settings):
    settings.ENGINE_WEBHOOK_SECRET = SECRET
    settings.ENGINE_URL = "http://127.0.0.1:9"  # nothing listens: engine commands fail fast


def _ended(call, seq=1):
    return {
        "v": 1,
        "seq": seq,
        "ts": "2026-11-22T02:50:07.738Z",
        "type": "call.ended",
        "call_id": call.agent_leg_id,
        "data": {"cause": "remote_hangup", "sip_code": None, "hangup_by": "remote"},
    }


def test_webhook_with_a_wrong_signature_is_rejected(client, hospital, webhook_settings):
    call = make_call(
        hospital.alice,
        make_patient_in(hospital.cardio),
        state=CallState.DIALING_AGENT,
        agent_leg_id="a" * 16,
    )
    assert _post_events(client, [_ended(call)], secret="wrong").status_code == 403
    response = client.post(
        "/cc/engine/events/",
        json.dumps({"events": [_ended(call)]}),
        content_type="application/json",
    )
    assert response.status_code == 403
    call.refresh_from_db()
    assert call.state == CallState.DIALING_AGENT and not CallEvent.objects.exists()


def test_webhook_applies_signed_events_in_order(client, hospital, webhook_settings):
    call = make_call(
        hospital.alice,
        make_patient_in(hospital.cardio),
        state=CallState.DIALING_AGENT,
    )
    created = {
        "v": 1,
        "seq": 1,
        "ts": "2026-11-22T02:50:06.000Z",
        "type": "call.created",
        "call_id": "b" * 16,
        "data": {
            "direction": "outbound",
            "caller": "sip:careloop@x",
            "callee": "sip:agent@x",
            "app_data": {"cc_call": call.pk, "leg": "agent"},
        },
    }
    call.agent_leg_id = ""
    call.save()
    assert _post_events(client, [created]).status_code == 200
    call.refresh_from_db()
    assert call.agent_leg_id == "b" * 16
    assert _post_events(client, [_ended(call, seq=2)]).status_code == 200
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.cause == "remote_hangup"
    logged = list(CallEvent.objects.filter(call=call).values_list("type", "leg"))
    assert logged == [("call.created", "agent"), ("call.ended", "agent")]
    # no phone numbers or URIs in the event log
    assert all("caller" not in e.data and "callee" not in e.data for e in CallEvent.objects.all())


@pytest.mark.django_db(transaction=True)
async def test_call_socket_sends_state_and_refuses_other_departments(hospital):
    from asgiref.sync import sync_to_async

    call = await sync_to_async(make_call)(
        hospital.alice,
        await sync_to_async(make_patient_in)(hospital.cardio),
        state=CallState.TALKING,
    )
    app = URLRouter(websocket_urlpatterns)
    socket = Socket(app, f"/ws/cc/calls/{call.pk}/", hospital.alice)
    connected, _ = await socket.connect()
    assert connected
    first = await socket.receive_json_from()
    assert first["call"]["state"] == CallState.TALKING and "phone" not in json.dumps(first)
    await sync_to_async(services._end)(call, cause="normal")
    update = await socket.receive_json_from(timeout=3)
    assert update["call"]["state"] == CallState.ENDED
    await socket.disconnect()

    other = Socket(app, f"/ws/cc/calls/{call.pk}/", hospital.bob)
    connected, code = await other.connect()
    assert not connected and code == 4404


def test_recording_is_streamed_with_ranges_and_audited_once_per_play(client, hospital):
    patient = make_patient_in(hospital.cardio)
    recording = make_recording(make_call(hospital.alice, patient), content=b"OggS" + bytes(996))
    client.force_login(hospital.alice)
    full = client.get(f"/cc/recordings/{recording.pk}/")
    assert full.status_code == 200 and b"".join(full.streaming_content)[:4] == b"OggS"
    tail = client.get(f"/cc/recordings/{recording.pk}/", HTTP_RANGE="bytes=900-")
    assert tail.status_code == 206 and tail["Content-Range"] == "bytes 900-999/1000"
    assert len(tail.content) == 100
    assert (
        client.get(f"/cc/recordings/{recording.pk}/", HTTP_RANGE="bytes=5000-").status_code == 416
    )
    download = client.get(f"/cc/recordings/{recording.pk}/?download=1")
    assert download.status_code == 200
    actions = list(AuditEvent.objects.values_list("action", flat=True).order_by("pk"))
    assert actions == [AuditAction.PLAY_RECORDING, AuditAction.DOWNLOAD_RECORDING]


def test_recording_outside_the_engine_data_dir_is_not_served(client, hospital, tmp_path):
    recording = make_recording(make_call(hospital.alice, make_patient_in(hospital.cardio)))
    outside = tmp_path / "elsewhere.ogg"
    outside.write_bytes(b"OggS")
    recording.path = str(outside)
    recording.save()
    client.force_login(hospital.alice)
    assert client.get(f"/cc/recordings/{recording.pk}/").status_code == 404


def test_registered_phone_gets_a_strong_password_and_keeps_it(hospital):
    phone = services.save_agent_phone(
        hospital.alice, kind=PhoneKind.REGISTERED, acting_user=hospital.frank
    )
    assert len(phone.sip_password) >= 24 and phone.uri.startswith(f"sip:{phone.sip_username}@")
    again = services.save_agent_phone(
        hospital.alice, kind=PhoneKind.REGISTERED, acting_user=hospital.frank
    )
    assert again.sip_password == phone.sip_password
    fixed = services.save_agent_phone(
        hospital.alice, kind=PhoneKind.FIXED, uri="sip:desk@10.0.0.7", acting_user=hospital.frank
    )
    assert fixed.pk == phone.pk and fixed.uri == "sip:desk@10.0.0.7"


def test_click_to_call_without_a_phone_is_refused_with_a_message(client, hospital):
    patient = make_patient_in(hospital.cardio)
    client.force_login(hospital.alice)
    response = client.post("/cc/call/", {"patient": patient.pk})
    assert response.status_code == 409 and not Call.objects.exists()


def test_click_to_call_refuses_do_not_contact_patients(client, hospital):
    patient = make_patient_in(hospital.cardio, do_not_contact=True)
    make_agent_phone(hospital.alice, uri="sip:alice@127.0.0.1:9")
    client.force_login(hospital.alice)
    assert client.post("/cc/call/", {"patient": patient.pk}).status_code == 409


def test_caller_number_is_read_from_the_sip_uri():
    assert services.caller_number("sip:13800138000@10.0.0.9") == "13800138000"
    assert services.caller_number('"Patient" <sip:+8613800138000@10.0.0.9:5060>') == "13800138000"
    assert services.caller_number("sip:anonymous@x") == ""


def test_a_batch_sent_again_is_applied_once(client, hospital, webhook_settings):
    call = make_call(
        hospital.alice,
        make_patient_in(hospital.cardio),
        state=CallState.DIALING_AGENT,
        agent_leg_id="c" * 16,
    )
    batch = [_ended(call, seq=7)]
    assert _post_events(client, batch).status_code == 200
    assert _post_events(client, batch).status_code == 200
    assert CallEvent.objects.filter(call=call).count() == 1


def test_task_page_include_lists_the_calls_and_recordings(rf, hospital):
    from django.template.loader import render_to_string

    from careloop.followup.tests.factories import make_task

    task = make_task(hospital.cardio, assignee=hospital.alice)
    call = make_call(hospital.alice, task.patient, task=task)
    recording = make_recording(call)
    request = rf.get("/")
    request.user = hospital.alice
    html = render_to_string("contactcenter/_task_calls.html", {"task": task}, request=request)
    assert f"/cc/calls/{call.pk}/" in html and f"/cc/recordings/{recording.pk}/" in html
    assert task.patient.phone not in html


def test_call_panel_shows_masked_numbers_only(rf, hospital):
    from django.template.loader import render_to_string

    patient = make_patient_in(hospital.cardio)
    request = rf.get("/")
    request.user = hospital.alice
    html = render_to_string("contactcenter/_call_panel.html", {"patient": patient}, request=request)
    assert patient.phone not in html and patient.phone[-4:] in html
    assert 'name="patient"' in html


def test_click_to_call_with_the_engine_down_is_refused_and_the_call_ended(
    client, hospital, settings
):
    settings.ENGINE_URL = "http://127.0.0.1:9"
    patient = make_patient_in(hospital.cardio)
    make_agent_phone(hospital.alice, uri="sip:alice@127.0.0.1:9")
    client.force_login(hospital.alice)
    response = client.post("/cc/call/", {"patient": patient.pk})
    assert response.status_code == 409 and "unreachable" in response.content.decode()
    call = Call.objects.get()
    assert call.state == CallState.ENDED and call.cause == "engine_unreachable"


def test_callback_skips_a_nurse_already_on_a_call(hospital):
    from careloop.contactcenter.queries import callback_match

    patient = make_patient_in(hospital.cardio, phone="13900139000")
    make_agent_phone(hospital.alice, uri="sip:alice@127.0.0.1:9")
    make_agent_phone(hospital.carol, uri="sip:carol@127.0.0.1:9")
    make_call(hospital.alice, patient, agent_answered_at=timezone.now(), cause="no_answer")
    assert callback_match("13900139000").phone.user == hospital.alice
    make_call(hospital.alice, make_patient_in(hospital.cardio), state=CallState.TALKING)
    match = callback_match("13900139000")
    assert match.phone.user == hospital.carol and match.patient == patient


def test_only_calls_to_the_follow_up_number_are_routed(settings):
    settings.CC_CALLBACK_NUMBERS = ["02088886666"]
    assert services.is_callback_number("sip:02088886666@10.0.0.5")
    assert not services.is_callback_number("sip:ivr@10.0.0.5")


def test_callback_goes_to_the_nurse_who_recorded_no_answer(hospital):
    from careloop.contactcenter.queries import callback_match
    from careloop.followup import services as followup_services
    from careloop.followup.choices import Outcome
    from careloop.followup.tests.factories import make_task

    make_agent_phone(hospital.carol, uri="sip:carol@127.0.0.1:9")
    make_agent_phone(hospital.alice, uri="sip:alice@127.0.0.1:9")
    task = make_task(hospital.cardio, assignee=hospital.alice)
    task.patient.phone = "13700137000"
    task.patient.save(update_fields=["phone"])
    assert callback_match("13700137000").phone.user == hospital.carol  # nothing missed yet
    followup_services.record_outcome(task, outcome=Outcome.NO_ANSWER, acting_user=hospital.alice)
    match = callback_match("13700137000")
    assert match.phone.user == hospital.alice and match.task == task
