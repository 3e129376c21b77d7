"""Calls back (F4.8 smart match, F4.5 screen pop): a patient calling the follow-up number is put
through to the nurse whose call they missed; an unknown caller pops the new-patient form."""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import parse_qs, urlparse

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from careloop.contactcenter import events, services
from careloop.contactcenter.choices import CallState, Direction
from careloop.contactcenter.models import Call, Recording
from careloop.contactcenter.tests.factories import make_agent_phone, make_call, make_patient_in
from careloop.followup.tests.factories import make_task
from tests.telephony.conftest import PatientPhone, free_rtp_range, render_scenario, wait_until
from tests.telephony.test_click_to_call import _drain

pytestmark = [pytest.mark.telephony, pytest.mark.django_db(transaction=True)]

CALLER = "13800138000"  # the From of tests/engine/sipp/uac_pcap.xml


def _patient_calls(engine, tmp_path, seconds: int = 20):
    """SIPp calling the engine from CALLER, talking a tone, waiting for our BYE."""
    import subprocess

    from rtp_pcap import Tone, write_rtp_pcap

    from tests.telephony.conftest import free_port, require_binary

    workdir = tmp_path / "caller"
    workdir.mkdir()
    pcap = workdir / "caller.pcap"
    write_rtp_pcap(pcap, [Tone(440, seconds * 1000, level=0.3)])
    scenario = render_scenario(
        "uac_pcap.xml", workdir, PCAP=str(pcap), BYE_TIMEOUT=str(seconds * 1000 + 5000)
    )
    return subprocess.Popen(
        [
            require_binary("sipp"),
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_rtp_range(10)[0]),
            "-m",
            "1",
            "-nostdin",
            "-trace_err",
            "-timeout_error",
            "-timeout",
            f"{seconds + 15}s",
            "-s",
            "followup",
            f"127.0.0.1:{engine.sip_port}",
        ],
        cwd=str(workdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_patient_calling_back_is_put_through_to_the_nurse_who_called(
    hospital, client, engine_factory, nurse_phone, tmp_path
) -> None:
    engine = engine_factory()
    # carol's phone comes first and is free: the smart match must still pick alice
    make_agent_phone(hospital.carol, uri="sip:carol@127.0.0.1:9")
    nurse = nurse_phone("alice", tone_hz=700)
    make_agent_phone(hospital.alice, uri=nurse.uri)
    task = make_task(hospital.cardio, assignee=hospital.alice)
    patient = task.patient
    patient.phone = CALLER
    patient.save(update_fields=["phone"])
    missed = make_call(
        hospital.alice,
        patient,
        task=task,
        created_at=timezone.now() - dt.timedelta(days=1),
        agent_answered_at=timezone.now() - dt.timedelta(days=1),
        cause="no_answer",
    )
    layer = get_channel_layer()
    alice_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.agent_group(hospital.alice.pk), alice_channel)

    caller = _patient_calls(engine, tmp_path)
    call = wait_until(
        lambda: Call.objects.filter(direction=Direction.INBOUND, state=CallState.TALKING).first(),
        timeout=20,
        what="the call back to be put through",
    )
    assert call.agent == hospital.alice and call.patient == patient and call.task == task
    assert call.pk != missed.pk
    time.sleep(2)
    services.hang_up(call, acting_user=hospital.alice)
    out, _ = caller.communicate(timeout=30)
    assert caller.returncode == 0, out.decode(errors="replace")[-2000:]
    recording = wait_until(
        lambda: Recording.objects.filter(call=call).first(), timeout=20, what="the recording"
    )
    assert recording.duration > 1.5

    messages = _drain(alice_channel)
    pops = [m for m in messages if m["type"] == "screen.pop"]
    assert pops == [{"type": "screen.pop", "url": f"/patients/{patient.pk}/", "call_id": call.pk}]
    assert [m["call"]["state"] for m in messages if m["type"] == "call.update"][-1] == "ended"


def test_unknown_caller_pops_the_new_patient_form_with_a_one_time_token(
    hospital, engine_factory, nurse_phone, tmp_path
) -> None:
    engine = engine_factory()
    make_patient_in(hospital.cardio)  # someone else's number
    nurse = nurse_phone("alice")
    make_agent_phone(hospital.alice, uri=nurse.uri)
    layer = get_channel_layer()
    alice_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.agent_group(hospital.alice.pk), alice_channel)

    caller = _patient_calls(engine, tmp_path)
    call = wait_until(
        lambda: Call.objects.filter(direction=Direction.INBOUND, state=CallState.TALKING).first(),
        timeout=20,
        what="the unknown caller to be put through",
    )
    assert call.patient is None and call.agent == hospital.alice
    services.hang_up(call, acting_user=hospital.alice)
    caller.communicate(timeout=30)

    [pop] = [m for m in _drain(alice_channel) if m["type"] == "screen.pop"]
    url = urlparse(pop["url"])
    assert url.path == "/patients/new/" and CALLER not in pop["url"]
    token = parse_qs(url.query)["caller"][0]
    assert services.resolve_screen_pop_token(token, user=hospital.bob) is None
    assert services.resolve_screen_pop_token(token, user=hospital.alice) == CALLER
    assert services.resolve_screen_pop_token(token, user=hospital.alice) is None


_ = PatientPhone
