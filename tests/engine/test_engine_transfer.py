"""Blind transfers: REFER sent to the caller, transfer by bridging, and a REFER from an agent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from rtp_pcap import Tone, write_rtp_pcap

from conftest import Sipp, free_port, render_scenario

pytestmark = pytest.mark.telephony


def flow_file(tmp_path: Path, nodes: dict, start: str) -> Path:
    path = tmp_path / "flow.json"
    path.write_text(
        json.dumps(
            {
                "format": "careloop-flow/1",
                "id": "xfer",
                "version": 1,
                "start": start,
                "nodes": nodes,
            },
            ensure_ascii=False,
        )
    )
    return path


async def test_flow_blind_transfers_the_caller_with_refer(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    target = "sip:1001@127.0.0.1:5999"
    flow = flow_file(
        tmp_path,
        {
            "hi": {"type": "say", "say": "正在为您转接", "next": "xfer"},
            "xfer": {"type": "transfer", "mode": "refer", "target": target, "on_failure": "bye"},
            "bye": {"type": "hangup"},
        },
        "hi",
    )
    running = await start_engine(flow_path=flow)

    result = await sipp.call(
        render_scenario("uac_refer.xml", sipp.workdir, TARGET=target),
        running.sip_target,
        timeout=30,
    )

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    finished = await running.events.wait_for("flow.finished")
    assert finished["data"]["outcome"] == "transferred"
    statuses = [
        e["data"]["status"] for e in running.events.of("call.transfer", finished["call_id"])
    ]
    assert statuses[-1] == 200
    cdr = (await running.events.wait_for("cdr"))["data"]["record"]
    assert cdr["cause"] == "transferred" and cdr["flow"]["outcome"] == "transferred"


async def test_flow_transfers_by_bridging_to_a_desk_phone(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    desk_port = free_port()
    flow = flow_file(
        tmp_path,
        {
            "xfer": {
                "type": "transfer",
                "target": f"sip:desk@127.0.0.1:{desk_port}",
                "timeout": 10,
                "on_failure": "bye",
            },
            "bye": {"type": "hangup"},
        },
        "xfer",
    )
    running = await start_engine(flow_path=flow)
    desk_pcap, caller_pcap = tmp_path / "desk.pcap", tmp_path / "caller.pcap"
    write_rtp_pcap(desk_pcap, [Tone(700, 6000)])
    write_rtp_pcap(caller_pcap, [Tone(440, 6000)])
    desk = await sipp.serve(
        render_scenario("uas_answer.xml", sipp.workdir, PCAP=str(desk_pcap), BYE_TIMEOUT="20000"),
        port=desk_port,
    )

    caller = await sipp.call(
        render_scenario("uac_hangup.xml", sipp.workdir, PCAP=str(caller_pcap), HOLD_MS="3000"),
        running.sip_target,
        timeout=20,
    )
    desk_result = await desk

    assert caller.returncode == 0, caller.stdout[-2000:] + caller.errors_log()
    assert desk_result.returncode == 0, desk_result.stdout[-2000:] + desk_result.errors_log()
    finished = await running.events.wait_for("flow.finished")
    assert (
        finished["data"]["outcome"] == "transferred"
        and finished["data"]["variables"]["transfer_result"] == "bridged"
    )
    created = await running.events.wait_for(
        "bridge.changed", lambda e: e["data"]["action"] == "created"
    )
    assert finished["call_id"] in created["data"]["members"]
    desk_cdr = (
        await running.events.wait_for(
            "cdr", lambda e: e["data"]["record"]["direction"] == "outbound"
        )
    )["data"]["record"]
    assert desk_cdr["cause"] == "bridge_ended" and desk_cdr["app_data"] == {
        "transfer_of": finished["call_id"]
    }


async def test_agent_refer_moves_the_patient_to_another_phone(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    flow = flow_file(
        tmp_path,
        {"wait": {"type": "route", "queue": "q", "timeout": 20, "hold_music": False}},
        "wait",
    )
    running = await start_engine(flow_path=flow)
    engine = running.engine
    agent_port, target_port = free_port(), free_port()
    target_uri = f"sip:nurse@127.0.0.1:{target_port}"
    pcap = tmp_path / "tone.pcap"
    write_rtp_pcap(pcap, [Tone(440, 8000)])
    agent_phone = await sipp.serve(
        render_scenario("uas_refer.xml", sipp.workdir, TARGET=target_uri), port=agent_port
    )
    target_phone = await sipp.serve(
        render_scenario("uas_answer.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="20000"),
        port=target_port,
    )
    patient = asyncio.ensure_future(
        sipp.call(
            render_scenario("uac_hangup.xml", sipp.workdir, PCAP=str(pcap), HOLD_MS="5000"),
            running.sip_target,
            timeout=25,
        )
    )

    routed = await running.events.wait_for("call.routed")
    patient_leg = engine.get_leg(routed["call_id"])
    agent_leg = await engine.originate(f"sip:agent@127.0.0.1:{agent_port}")
    assert await engine.wait_dial_result(agent_leg) == "answered"
    engine.create_bridge([patient_leg, agent_leg])

    transferred = await running.events.wait_for(
        "call.transfer", lambda e: e["data"]["mode"] == "refer-received"
    )
    results = [await agent_phone, await patient, await target_phone]

    for result in results:
        assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    assert transferred["call_id"] == patient_leg.id and transferred["data"]["target"] == target_uri
    agent_cdr = (await running.events.wait_for("cdr", lambda e: e["call_id"] == agent_leg.id))[
        "data"
    ]["record"]
    assert agent_cdr["cause"] == "transferred"
    bridges = [e for e in running.events.of("bridge.changed") if e["data"]["action"] == "created"]
    assert len(bridges) == 2 and patient_leg.id in bridges[1]["data"]["members"]
