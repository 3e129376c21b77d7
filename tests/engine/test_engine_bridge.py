"""Bridging a SIPp patient and a baresip agent, with a whispering supervisor and a mixed recording."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import soundfile as sf
from audio_checks import read_recording, rms, tone_level
from rtp_pcap import Silence, Tone, write_rtp_pcap

from careloop.engine.media import Bridge, BridgeMember, mix
from conftest import Sipp, free_port, render_scenario

pytestmark = pytest.mark.telephony

ROUTE_FLOW = {
    "format": "careloop-flow/1",
    "id": "to-agent",
    "version": 1,
    "start": "hello",
    "nodes": {
        "hello": {"type": "say", "say": "请稍候", "next": "queue"},
        "queue": {
            "type": "route",
            "queue": "cardiology",
            "data": {"reason": "follow-up"},
            "timeout": 30,
        },
    },
}


async def test_patient_agent_bridge_records_both_sides_and_supervisor_whispers_to_agent(
    start_engine, sipp: Sipp, baresip_factory, tmp_path: Path
) -> None:
    flow_path = tmp_path / "route.json"
    flow_path.write_text(json.dumps(ROUTE_FLOW, ensure_ascii=False))
    running = await start_engine(flow_path=flow_path)
    engine = running.engine
    agent = await baresip_factory("agent", tone_hz=700)
    patient_pcap = tmp_path / "patient.pcap"
    write_rtp_pcap(patient_pcap, [Tone(440, 15000, level=0.3)])
    patient_call = asyncio.ensure_future(
        sipp.call(
            render_scenario(
                "uac_pcap.xml", sipp.workdir, PCAP=str(patient_pcap), BYE_TIMEOUT="40000"
            ),
            running.sip_target,
            timeout=45,
        )
    )
    sup_pcap = tmp_path / "supervisor.pcap"
    write_rtp_pcap(sup_pcap, [Silence(200), Tone(1000, 10000, level=0.3)])
    sup_port = free_port()
    supervisor_phone = await sipp.serve(
        render_scenario("uas_answer.xml", sipp.workdir, PCAP=str(sup_pcap), BYE_TIMEOUT="40000"),
        port=sup_port,
        timeout=45,
    )

    routed = await running.events.wait_for("call.routed")
    assert routed["data"]["target"] == {"queue": "cardiology", "data": {"reason": "follow-up"}}
    patient = engine.get_leg(routed["call_id"])
    agent_leg = await engine.originate(agent.uri, app_data={"agent": "alice"})
    assert await engine.wait_dial_result(agent_leg) == "answered"
    bridge = engine.create_bridge([patient, agent_leg], record=True)
    loop = asyncio.get_running_loop()
    bridged_at = loop.time()
    supervisor = await engine.originate(f"sip:supervisor@127.0.0.1:{sup_port}")
    assert await engine.wait_dial_result(supervisor) == "answered"
    engine.join_bridge(bridge, supervisor, role="whisper", whisper_to=agent_leg.id)
    await asyncio.sleep(3.0)
    await agent_leg.hangup()
    bridge_seconds = loop.time() - bridged_at

    patient_result = await patient_call
    supervisor_result = await supervisor_phone
    assert patient_result.returncode == 0, (
        patient_result.stdout[-2000:] + patient_result.errors_log()
    )
    assert supervisor_result.returncode == 0, (
        supervisor_result.stdout[-2000:] + supervisor_result.errors_log()
    )

    finished = await running.events.wait_for(
        "recording.finished", lambda e: e["data"]["mode"] == "mixed"
    )
    assert finished["data"]["bridge_id"] == bridge.id
    samples, rate = read_recording(finished["data"]["path"])
    assert abs(len(samples) / rate - bridge_seconds) < 0.2
    assert rms(samples) > 0.1
    assert tone_level(samples, rate, 440) > 0.3, "patient missing from the recording"
    assert tone_level(samples, rate, 700) > 0.3, "agent missing from the recording"
    assert tone_level(samples, rate, 1000) < 0.05, (
        "the supervisor's whisper must not be in the call recording"
    )

    await asyncio.sleep(0.3)
    heard, heard_rate = sf.read(str(agent.heard()), dtype="float64")
    assert tone_level(heard, heard_rate, 440) > 0.3, "agent did not hear the patient"
    assert tone_level(heard, heard_rate, 1000) > 0.1, "agent did not hear the supervisor's whisper"

    flow_done = await running.events.wait_for("flow.finished", lambda e: e["call_id"] == patient.id)
    assert flow_done["data"]["outcome"] == "routed"
    cdrs = {e["call_id"]: e["data"]["record"] for e in running.events.of("cdr")}
    await running.events.wait_for("cdr", lambda e: e["call_id"] == patient.id)
    cdrs = {e["call_id"]: e["data"]["record"] for e in running.events.of("cdr")}
    assert cdrs[agent_leg.id]["cause"] == "normal" and cdrs[agent_leg.id]["hangup_by"] == "local"
    assert cdrs[patient.id]["cause"] == "bridge_ended"
    assert cdrs[patient.id]["bridge_id"] == bridge.id
    assert cdrs[patient.id]["recordings"][0]["recording_id"] == finished["data"]["recording_id"]
    assert cdrs[agent_leg.id]["recordings"][0]["recording_id"] == finished["data"]["recording_id"]


class FakeChannel:
    def __init__(self, frame: bytes | None) -> None:
        self.in_frame = frame
        self.bridge_out: bytes | None = None


def frame(value: int) -> bytes:
    return value.to_bytes(2, "little", signed=True) * 160


def test_bridge_roles_decide_who_hears_whom() -> None:
    patient, agent, listener, coach = (
        FakeChannel(frame(100)),
        FakeChannel(frame(200)),
        FakeChannel(frame(7)),
        FakeChannel(frame(30)),
    )
    bridge = Bridge("b")
    bridge.add(BridgeMember("patient", patient))  # type: ignore[arg-type]
    bridge.add(BridgeMember("agent", agent))  # type: ignore[arg-type]
    bridge.add(BridgeMember("listener", listener, role="listen"))  # type: ignore[arg-type]
    bridge.add(BridgeMember("coach", coach, role="whisper", whisper_to="agent"))  # type: ignore[arg-type]

    bridge.mix()

    assert patient.bridge_out == frame(200)
    assert agent.bridge_out == frame(100 + 30)
    assert listener.bridge_out == frame(300)
    assert coach.bridge_out == frame(300)
    assert bridge.conversation_frame() == frame(300)


def test_held_party_is_not_heard_and_mixing_clips() -> None:
    patient, agent = FakeChannel(frame(100)), FakeChannel(frame(200))
    bridge = Bridge("b")
    bridge.add(BridgeMember("patient", patient, muted=True))  # type: ignore[arg-type]
    bridge.add(BridgeMember("agent", agent))  # type: ignore[arg-type]
    bridge.mix()
    assert agent.bridge_out is None and patient.bridge_out == frame(200)
    assert mix([frame(30000), frame(30000)]) == frame(32767)
