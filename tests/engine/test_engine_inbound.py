"""Inbound calls from SIPp into IVR flows: digits, paths taken, CDRs."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtp_pcap import Key, Silence, Tone, write_rtp_pcap

from conftest import HERE, Sipp, render_scenario

pytestmark = pytest.mark.telephony

MENU_FLOW = HERE / "flows" / "menu_card.json"


async def test_caller_presses_keys_and_ivr_takes_the_card_path(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    running = await start_engine(flow_path=MENU_FLOW)
    pcap = tmp_path / "keys.pcap"
    write_rtp_pcap(
        pcap, [Silence(800), Key("1"), Silence(400), Key("4"), Key("2"), Key("#"), Tone(440, 3000)]
    )
    scenario = render_scenario("uac_pcap.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="30000")

    result = await sipp.call(scenario, running.sip_target, timeout=40)

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    finished = await running.events.wait_for("flow.finished")
    call_id = finished["call_id"]
    assert running.path_of(call_id) == ["welcome", "menu", "card", "check", "known", "goodbye"]
    assert finished["data"]["outcome"] == "hangup"
    assert finished["data"]["variables"]["card"] == "42"
    assert finished["data"]["variables"]["service"] == "query"
    assert [e["data"]["digit"] for e in running.events.of("call.dtmf", call_id)] == [
        "1",
        "4",
        "2",
        "#",
    ]
    cdr = (await running.events.wait_for("cdr"))["data"]["record"]
    assert cdr["cause"] == "normal" and cdr["hangup_by"] == "local"
    assert cdr["flow"]["path"][-1] == "goodbye" and cdr["flow"]["outcome"] == "hangup"
    assert cdr["codec"] == "PCMA"
    assert cdr["answer"] is not None and cdr["billsec"] > 0


def write_flow(path: Path, nodes: dict, start: str, **extra: object) -> Path:
    import json

    doc = {
        "format": "careloop-flow/1",
        "id": path.stem,
        "version": 1,
        "start": start,
        "nodes": nodes,
        **extra,
    }
    path.write_text(json.dumps(doc, ensure_ascii=False))
    return path


async def test_sip_info_keys_and_a_hold_from_the_caller(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    flow = write_flow(
        tmp_path / "info.json",
        {
            "keys": {
                "type": "gather",
                "say": {"silence": 100},
                "var": "keys",
                "max_digits": 4,
                "next": "wait",
            },
            "wait": {"type": "say", "say": {"silence": 3000}, "next": "bye"},
            "bye": {"type": "hangup"},
        },
        "keys",
    )
    running = await start_engine(flow_path=flow)
    scenario = render_scenario("uac_info_hold.xml", sipp.workdir)

    result = await sipp.call(scenario, running.sip_target, timeout=30)

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    finished = await running.events.wait_for("flow.finished")
    call_id = finished["call_id"]
    assert finished["data"]["variables"]["keys"] == "7"
    assert [
        (e["data"]["digit"], e["data"]["method"]) for e in running.events.of("call.dtmf", call_id)
    ] == [
        ("7", "info"),
        ("#", "info"),
    ]
    holds = [(e["data"]["held"], e["data"]["by"]) for e in running.events.of("call.hold", call_id)]
    assert holds == [(True, "remote"), (False, "remote")]
    cdr = (await running.events.wait_for("cdr"))["data"]["record"]
    assert cdr["codec"] == "PCMU"


async def test_caller_cancels_while_ringing(start_engine, sipp: Sipp) -> None:
    running = await start_engine()  # no flow: the call rings until the application acts
    scenario = render_scenario("uac_cancel.xml", sipp.workdir)

    result = await sipp.call(scenario, running.sip_target, timeout=20)

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    ended = await running.events.wait_for("call.ended")
    assert ended["data"]["cause"] == "cancelled"
    assert ended["data"]["hangup_by"] == "remote"
    assert running.events.of("call.ringing", ended["call_id"])
    cdr = (await running.events.wait_for("cdr"))["data"]["record"]
    assert cdr["answer"] is None and cdr["billsec"] == 0.0 and cdr["sip_code"] == 487


async def test_caller_hanging_up_mid_flow_ends_flow_and_cdr(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    flow = write_flow(
        tmp_path / "long.json",
        {
            "long": {"type": "say", "say": {"silence": 10000}, "next": "bye"},
            "bye": {"type": "hangup"},
        },
        "long",
    )
    running = await start_engine(flow_path=flow)
    pcap = tmp_path / "talk.pcap"
    write_rtp_pcap(pcap, [Tone(300, 1500)])
    scenario = render_scenario("uac_hangup.xml", sipp.workdir, PCAP=str(pcap), HOLD_MS="1500")

    result = await sipp.call(scenario, running.sip_target, timeout=20)

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    finished = await running.events.wait_for("flow.finished")
    assert finished["data"]["outcome"] == "caller_hangup"
    cdr = (await running.events.wait_for("cdr"))["data"]["record"]
    assert cdr["cause"] == "remote_hangup" and cdr["hangup_by"] == "remote"
    assert cdr["flow"]["outcome"] == "caller_hangup"
    assert 1.0 < cdr["billsec"] < 5.0


async def test_call_over_tcp(start_engine, sipp: Sipp, tmp_path: Path) -> None:
    running = await start_engine(flow_path=MENU_FLOW, sip_tcp=True)
    pcap = tmp_path / "keys.pcap"
    write_rtp_pcap(pcap, [Silence(500), Key("1"), Key("7"), Key("7"), Key("#"), Tone(440, 2500)])
    scenario = render_scenario("uac_pcap.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="30000")

    result = await sipp.call(scenario, running.sip_target, transport="t1", timeout=40)

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    finished = await running.events.wait_for("flow.finished")
    assert running.path_of(finished["call_id"]) == [
        "welcome",
        "menu",
        "card",
        "check",
        "unknown",
        "goodbye",
    ]
    assert finished["data"]["variables"]["card"] == "77"


async def test_engine_at_its_call_limit_answers_503(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    flow = write_flow(
        tmp_path / "hold.json",
        {
            "wait": {"type": "say", "say": {"silence": 8000}, "next": "bye"},
            "bye": {"type": "hangup"},
        },
        "wait",
    )
    running = await start_engine(flow_path=flow, max_calls=1)
    pcap = tmp_path / "talk.pcap"
    write_rtp_pcap(pcap, [Tone(300, 500)])
    first = render_scenario("uac_hangup.xml", sipp.workdir, PCAP=str(pcap), HOLD_MS="3000")
    refused = render_scenario("uac_expect.xml", sipp.workdir, CODE="503")

    import asyncio

    first_call = asyncio.ensure_future(sipp.call(first, running.sip_target, timeout=20))
    await running.events.wait_for("call.answered")
    second = await sipp.call(refused, running.sip_target, timeout=15)
    first_result = await first_call

    assert second.returncode == 0, second.stdout[-2000:] + second.errors_log()
    assert first_result.returncode == 0, first_result.stdout[-2000:]
    assert len(running.events.of("call.created")) == 1


async def test_after_hours_caller_leaves_a_voicemail(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from audio_checks import read_recording, tone_level

    sunday = datetime(2026, 11, 22, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    flow = HERE.parent.parent / "docs" / "flows" / "after_hours_voicemail.json"
    running = await start_engine(flow_path=flow, clock=lambda: sunday)
    pcap = tmp_path / "message.pcap"
    write_rtp_pcap(pcap, [Tone(523, 10000, level=0.35), Key("#"), Silence(3000)])
    scenario = render_scenario("uac_pcap.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="30000")

    result = await sipp.call(scenario, running.sip_target, timeout=40)

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    finished = await running.events.wait_for("flow.finished")
    assert running.path_of(finished["call_id"]) == [
        "welcome",
        "when",
        "voicemail_intro",
        "voicemail",
        "notify",
        "bye",
    ]
    message = finished["data"]["variables"]["message"]
    assert message["reason"] == "terminator"
    recorded = await running.events.wait_for("recording.finished")
    assert recorded["data"]["recording_id"] == message["recording_id"]
    samples, rate = read_recording(recorded["data"]["path"])
    assert abs(len(samples) / rate - message["duration"]) < 0.01
    assert 2.0 < message["duration"] < 10.0
    assert tone_level(samples, rate, 523) == 1.0
    assert (
        finished["data"]["variables"]["http_error"] == "ValueError"
    )  # no --app-url: the flow went on to "bye"
