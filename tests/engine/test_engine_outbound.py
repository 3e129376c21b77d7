"""The engine calls SIPp phones: answered calls run a flow; refusals are classified."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from rtp_pcap import Key, Silence, Tone, write_rtp_pcap

from careloop.engine.flow import load_flow
from conftest import Sipp, free_port, render_scenario

pytestmark = pytest.mark.telephony

SURVEY = load_flow(
    {
        "format": "careloop-flow/1",
        "id": "test-survey",
        "version": 2,
        "start": "ask",
        "nodes": {
            "ask": {
                "type": "menu",
                "say": "满意请按一，不满意请按二",
                "timeout": 5,
                "options": {
                    "1": {"next": "thanks", "set": {"satisfied": True}},
                    "2": {"next": "thanks", "set": {"satisfied": False}},
                },
                "on_failure": "thanks",
            },
            "thanks": {"type": "hangup", "say": "谢谢"},
        },
    }
)


async def test_engine_calls_a_patient_who_answers_and_presses_a_key(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    running = await start_engine()
    pcap = tmp_path / "answer.pcap"
    write_rtp_pcap(pcap, [Silence(700), Key("1"), Tone(500, 3000)])
    port = free_port()
    phone = await sipp.serve(
        render_scenario("uas_answer.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="20000"),
        port=port,
    )

    leg = await running.engine.originate(
        f"sip:13900001111@127.0.0.1:{port}", flow=SURVEY, app_data={"task": 7}
    )
    result = await running.engine.wait_dial_result(leg)
    phone_result = await phone

    assert result == "answered"
    assert phone_result.returncode == 0, phone_result.stdout[-2000:] + phone_result.errors_log()
    finished = await running.events.wait_for("flow.finished", lambda e: e["call_id"] == leg.id)
    assert finished["data"]["variables"]["satisfied"] is True
    assert finished["data"]["flow_version"] == 2
    types = [e["type"] for e in running.events.items if e["call_id"] == leg.id]
    assert (
        types.index("call.created")
        < types.index("call.ringing")
        < types.index("call.answered")
        < types.index("call.ended")
    )
    cdr = (await running.events.wait_for("cdr", lambda e: e["call_id"] == leg.id))["data"]["record"]
    assert cdr["direction"] == "outbound" and cdr["dial_result"] == "answered"
    assert cdr["app_data"] == {"task": 7}
    assert cdr["to"] == f"sip:13900001111@127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (486, "Busy Here", "busy"),
        (503, "Service Unavailable", "failed"),
        (603, "Decline", "rejected"),
        (404, "Not Found", "unreachable"),
    ],
)
async def test_refusals_are_classified_with_their_sip_code(
    start_engine, sipp: Sipp, code: int, reason: str, expected: str
) -> None:
    running = await start_engine()
    port = free_port()
    phone = await sipp.serve(
        render_scenario("uas_reject.xml", sipp.workdir, CODE=str(code), REASON=reason), port=port
    )

    leg = await running.engine.originate(f"sip:13900002222@127.0.0.1:{port}")
    result = await running.engine.wait_dial_result(leg)
    phone_result = await phone

    assert result == expected
    # SIPp only passes if our ACK for the refusal arrived
    assert phone_result.returncode == 0, phone_result.stdout[-2000:] + phone_result.errors_log()
    ended = await running.events.wait_for("call.ended", lambda e: e["call_id"] == leg.id)
    assert ended["data"] == {"cause": expected, "sip_code": code, "hangup_by": "remote"}


async def test_unanswered_call_is_cancelled_at_the_ring_timeout(start_engine, sipp: Sipp) -> None:
    running = await start_engine()
    port = free_port()
    phone = await sipp.serve(render_scenario("uas_noanswer.xml", sipp.workdir), port=port)

    leg = await running.engine.originate(f"sip:13900003333@127.0.0.1:{port}", ring_timeout=1.5)
    result = await running.engine.wait_dial_result(leg)
    phone_result = await phone

    assert result == "no_answer"
    assert phone_result.returncode == 0, phone_result.stdout[-2000:] + phone_result.errors_log()
    cdr = (await running.events.wait_for("cdr", lambda e: e["call_id"] == leg.id))["data"]["record"]
    assert cdr["dial_result"] == "no_answer" and cdr["hangup_by"] == "local"
    assert cdr["answer"] is None
    assert 1.4 < cdr["duration"] < 4


async def test_silent_destination_is_unreachable(start_engine) -> None:
    running = await start_engine(sip_timer_b=2.0)
    port = free_port()  # nothing listens there

    leg = await running.engine.originate(f"sip:13900004444@127.0.0.1:{port}", ring_timeout=10)
    result = await asyncio.wait_for(running.engine.wait_dial_result(leg), 10)

    assert result == "unreachable"
    assert running.engine.sip.stats["retransmissions"] >= 2
    ended = await running.events.wait_for("call.ended", lambda e: e["call_id"] == leg.id)
    assert ended["data"]["sip_code"] is None


def test_survey_flow_fixture_is_valid() -> None:
    assert json.dumps(SURVEY.raw)
