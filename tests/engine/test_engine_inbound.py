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
