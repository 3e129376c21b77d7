"""Outbound campaigns against SIPp phones: pacing, concurrency, retries, windows, results."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rtp_pcap import Key, Silence, Tone, write_rtp_pcap

from careloop.engine.dialer import CampaignError, CampaignSpec
from careloop.engine.schedule import Calendar, Window
from conftest import Sipp, free_port, render_scenario

pytestmark = pytest.mark.telephony

SHANGHAI = ZoneInfo("Asia/Shanghai")

SURVEY = {
    "format": "careloop-flow/1",
    "id": "campaign-survey",
    "version": 1,
    "start": "ask",
    "nodes": {
        "ask": {
            "type": "menu",
            "say": "满意请按一，不满意请按二",
            "options": {
                "1": {"next": "bye", "set": {"satisfied": "yes"}},
                "2": {"next": "bye", "set": {"satisfied": "no"}},
            },
            "on_failure": "bye",
        },
        "bye": {"type": "hangup", "say": "谢谢"},
    },
}


def parse_ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def test_campaign_paces_retries_and_classifies(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    running = await start_engine()
    pcap = tmp_path / "press2.pcap"
    write_rtp_pcap(pcap, [Silence(600), Key("2"), Tone(300, 4000)])
    answer_port, busy_port, ring_port = free_port(), free_port(), free_port()
    phones = [
        await sipp.serve(
            render_scenario("uas_answer.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="20000"),
            port=answer_port,
        ),
        await sipp.serve(
            render_scenario("uas_reject.xml", sipp.workdir, CODE="486", REASON="Busy Here"),
            port=busy_port,
            calls=2,
        ),
        await sipp.serve(render_scenario("uas_noanswer.xml", sipp.workdir), port=ring_port),
    ]
    spec = {
        "id": "followup-week-12",
        "targets": [
            {
                "id": "t-answer",
                "number": f"sip:13800000001@127.0.0.1:{answer_port}",
                "variables": {"patient": "p1"},
            },
            {"id": "t-busy", "number": f"sip:13800000002@127.0.0.1:{busy_port}"},
            {"id": "t-ring", "number": f"sip:13800000003@127.0.0.1:{ring_port}"},
        ],
        "concurrency": 2,
        "cps": 4,
        "ring_timeout": 1.5,
        "retry": {"max_attempts": 2, "delay": 0.5, "retry_on": ["busy"]},
        "app_data": {"plan": "cardiology-discharge"},
    }
    campaign = running.engine.dialer.start(
        CampaignSpec.from_dict({**spec, "flow": None}, None, "Asia/Shanghai")
    )
    campaign.spec.flow = running.engine.flows.put(SURVEY)

    done = await running.events.wait_for(
        "campaign.changed", lambda e: e["data"]["state"] == "finished", timeout=40
    )
    results = [await p for p in phones]

    for result in results:
        assert result.returncode == 0, result.stdout[-1500:] + result.errors_log()
    state = campaign.describe()
    assert {
        tid: (t["result"], t["attempts"], t["final"]) for tid, t in state["targets"].items()
    } == {
        "t-answer": ("answered", 1, True),
        "t-busy": ("busy", 2, True),
        "t-ring": ("no_answer", 1, True),
    }
    assert state["targets"]["t-busy"]["sip_code"] == 486
    assert done["data"]["counts"]["answered"] == 1 and done["data"]["counts"]["busy"] == 1
    assert campaign.max_active <= 2
    attempts = running.events.of("dialer.attempt")
    assert len(attempts) == 4
    assert [a["data"]["final"] for a in attempts if a["data"]["target_id"] == "t-busy"] == [
        False,
        True,
    ]
    starts = sorted(parse_ts(e["ts"]) for e in running.events.of("call.created"))
    assert all(b - a >= 0.24 for a, b in itertools.pairwise(starts)), starts
    answered_call = state["targets"]["t-answer"]["call_ids"][0]
    flow = await running.events.wait_for("flow.finished", lambda e: e["call_id"] == answered_call)
    assert flow["data"]["variables"]["satisfied"] == "no"
    assert (
        flow["data"]["variables"]["patient"] == "p1"
        and flow["data"]["variables"]["campaign_id"] == "followup-week-12"
    )
    cdr = (await running.events.wait_for("cdr", lambda e: e["call_id"] == answered_call))["data"][
        "record"
    ]
    assert (
        cdr["app_data"]["plan"] == "cardiology-discharge"
        and cdr["app_data"]["target_id"] == "t-answer"
    )


async def test_campaign_waits_for_its_calling_window(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    now = [
        datetime(2026, 10, 3, 10, 0, tzinfo=SHANGHAI)
    ]  # Saturday, and inside National Day holidays
    running = await start_engine(clock=lambda: now[0])
    pcap = tmp_path / "answer.pcap"
    write_rtp_pcap(pcap, [Tone(300, 2000)])
    port = free_port()
    phone = await sipp.serve(
        render_scenario("uas_answer.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="20000"),
        port=port,
    )
    spec = CampaignSpec.from_dict(
        {
            "targets": [{"id": "x", "number": f"sip:13800000009@127.0.0.1:{port}"}],
            "windows": [{"days": [1, 2, 3, 4, 5], "from": "09:00", "to": "17:00"}],
            "calendar": {"holidays": ["2026-10-05"], "workdays": ["2026-10-10"]},
            "window_poll": 0.2,
        },
        running.engine.flows.put(
            {
                "format": "careloop-flow/1",
                "id": "notice",
                "version": 1,
                "start": "bye",
                "nodes": {"bye": {"type": "hangup", "say": "您好，请按时复诊"}},
            }
        ),
        "Asia/Shanghai",
    )
    campaign = running.engine.dialer.start(spec)

    await running.events.wait_for(
        "campaign.changed", lambda e: e["data"]["state"] == "waiting_window"
    )
    now[0] = datetime(2026, 10, 5, 9, 30, tzinfo=SHANGHAI)  # Monday, but a holiday
    await asyncio.sleep(0.6)
    assert running.events.of("call.created") == []
    now[0] = datetime(2026, 10, 6, 9, 30, tzinfo=SHANGHAI)  # Tuesday inside the window
    finished = await running.events.wait_for(
        "campaign.changed", lambda e: e["data"]["state"] == "finished", timeout=20
    )

    assert (await phone).returncode == 0
    assert finished["data"]["counts"]["answered"] == 1
    assert campaign.describe()["targets"]["x"]["result"] == "answered"


def test_calendar_knows_holidays_and_make_up_workdays() -> None:
    calendar = Calendar.from_dict(
        {"holidays": ["2026-10-01", "2026-10-02"], "workdays": ["2026-10-10"]}
    )
    window = [Window.from_dict({"days": [1, 2, 3, 4, 5], "from": "08:00", "to": "12:00"})]
    assert not calendar.is_open(
        datetime(2026, 10, 1, 9, 0, tzinfo=SHANGHAI), window
    )  # Thursday holiday
    assert calendar.is_open(
        datetime(2026, 10, 10, 9, 0, tzinfo=SHANGHAI), window
    )  # Saturday make-up day
    assert not calendar.is_open(datetime(2026, 10, 11, 9, 0, tzinfo=SHANGHAI), window)  # Sunday
    assert calendar.next_open(datetime(2026, 10, 1, 13, 0, tzinfo=SHANGHAI), window) == datetime(
        2026, 10, 5, 8, 0, tzinfo=SHANGHAI
    )
    assert calendar.next_open(datetime(2026, 10, 9, 12, 30, tzinfo=SHANGHAI), window) == datetime(
        2026, 10, 10, 8, 0, tzinfo=SHANGHAI
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"targets": []}, "targets"),
        ({"targets": [{"id": "a", "number": "1"}, {"id": "a", "number": "2"}]}, "duplicate"),
        ({"targets": [{"number": "1"}], "retry": {"retry_on": ["maybe"]}}, "unknown results"),
        (
            {"targets": [{"number": "1"}], "windows": [{"from": "18:00", "to": "09:00"}]},
            "before it starts",
        ),
        ({"targets": [{"number": "1"}], "concurrency": 0}, "concurrency"),
    ],
)
def test_invalid_campaigns_are_refused_with_a_reason(spec: dict, message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        CampaignSpec.from_dict(spec, None, "Asia/Shanghai")
