"""The engine registered at Kamailio with digest auth: calls in and out through the proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from audio_checks import read_recording, tone_level
from rtp_pcap import Key, Silence, Tone, write_rtp_pcap

from careloop.engine.config import RegistrarConfig
from conftest import HERE, Kamailio, Sipp, render_scenario

pytestmark = pytest.mark.telephony


def registrar(kamailio: Kamailio, password: str) -> RegistrarConfig:
    return RegistrarConfig(
        aor="sip:engine@careloop.test",
        address=kamailio.address,
        username="engine",
        password=password,
        expires=120,
    )


async def test_wrong_password_fails_registration(start_engine, kamailio: Kamailio) -> None:
    running = await start_engine(registrar=registrar(kamailio, "not-the-password"))

    changed = await running.events.wait_for("registration.changed", timeout=10)

    assert changed["data"]["state"] == "failed"
    assert changed["data"]["status"] == 401
    assert running.engine.sip.registration_state == "failed"


async def test_registered_engine_takes_and_places_calls_through_kamailio(
    start_engine, kamailio: Kamailio, sipp: Sipp, baresip_factory, tmp_path: Path
) -> None:
    running = await start_engine(
        registrar=registrar(kamailio, "engine-secret"), flow_path=HERE / "flows" / "menu_card.json"
    )
    changed = await running.events.wait_for("registration.changed", timeout=10)
    assert changed["data"]["state"] == "registered", changed

    # In: a patient calls the engine's address-of-record through the proxy
    pcap = tmp_path / "keys.pcap"
    write_rtp_pcap(pcap, [Silence(600), Key("1"), Key("4"), Key("2"), Key("#"), Tone(440, 3000)])
    scenario = render_scenario("uac_pcap.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="30000")
    result = await sipp.call(scenario, f"127.0.0.1:{kamailio.port}", service="engine", timeout=40)
    assert result.returncode == 0, (
        result.stdout[-2000:] + result.errors_log() + kamailio.log()[-2000:]
    )
    finished = await running.events.wait_for("flow.finished")
    assert running.path_of(finished["call_id"])[-2:] == ["known", "goodbye"]

    # Out: the engine calls an agent phone registered at the same proxy (INVITE challenged 407)
    agent = await baresip_factory(
        "agent",
        tone_hz=700,
        account=f'<sip:agent@careloop.test>;auth_pass=agent-secret;outbound="sip:127.0.0.1:{kamailio.port}";regint=120;answermode=auto;audio_codecs=PCMA',
    )
    for _ in range(50):
        if "200 OK" in agent.log():
            break
        await asyncio.sleep(0.1)
    assert "200 OK" in agent.log(), agent.log()
    leg = await running.engine.originate("sip:agent@careloop.test")
    assert await running.engine.wait_dial_result(leg) == "answered", kamailio.log()[-3000:]
    recorder = leg.start_recording(mode="leg")
    await asyncio.sleep(1.0)
    leg.recorders.pop(recorder.id)
    recording = await recorder.stop()
    await leg.hangup()
    samples, rate = read_recording(recording.path)
    assert tone_level(samples, rate, 700) == 1.0
    ended = await running.events.wait_for("call.ended", lambda e: e["call_id"] == leg.id)
    assert ended["data"]["cause"] == "normal"
    assert (
        running.engine.sip.stats["transaction_timeouts"] == 0
    )  # the BYE through the proxy was answered
