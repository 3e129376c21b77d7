"""The appointment-booking flow of seed 003 (docs/flows/booking.json) against a fake application.

The fake application answers the flow's http nodes (card + PIN check, expert list, booking)
and receives the engine's webhooks, checking their signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from rtp_pcap import Key, Silence, Tone, write_rtp_pcap

from conftest import HERE, Sipp, free_port, render_scenario

pytestmark = pytest.mark.telephony

BOOKING = HERE.parent.parent / "docs" / "flows" / "booking.json"
SHANGHAI = ZoneInfo("Asia/Shanghai")
SECRET = "webhook-secret"


class FakeHospital:
    """The application side of the booking flow (what careloop web will implement)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.webhook_events: list[dict[str, Any]] = []
        self.bad_signatures = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        if path == "/webhook":
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            if headers.get("x-careloop-signature") != expected:
                self.bad_signatures += 1
            self.webhook_events += json.loads(body)["events"]
            await self._reply(send, 204, None)
            return
        data = json.loads(body or b"{}")
        self.requests.append((path, data, headers))
        if headers.get("authorization") != "Bearer app-token":
            await self._reply(send, 401, {"error": "token"})
        elif path == "/ivr/booking/verify":
            ok = data["card"] == "123456" and data["pin"] == "2222"
            await self._reply(
                send, 200, {"ok": ok, "balance_ok": ok, "patient_name": "张三" if ok else None}
            )
        elif path == "/ivr/booking/experts":
            await self._reply(
                send,
                200,
                {"am": {"id": "E17", "name": "李主任"}, "pm": {"id": "E23", "name": "王教授"}},
            )
        elif path == "/ivr/booking/book":
            await self._reply(send, 200, {"ok": True, "ticket": "A0815"})
        else:
            await self._reply(send, 404, {"error": "no route"})

    async def _reply(self, send: Any, status: int, payload: Any) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def hospital_app():
    app = FakeHospital()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    server.capture_signals = lambda: __import__("contextlib").nullcontext()  # type: ignore[method-assign]
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def keys(digits: str) -> list[Key | Silence]:
    return [Key(d) for d in digits] + [Silence(200)]


async def booking_engine(start_engine, url: str, when: datetime):
    return await start_engine(
        flow_path=BOOKING,
        app_url=url,
        app_token="app-token",
        webhook_url=f"{url}/webhook",
        webhook_secret=SECRET,
        clock=lambda: when,
    )


async def call(sipp: Sipp, running, tmp_path: Path, parts: list, *, bye_timeout: str = "90000"):
    pcap = tmp_path / "caller.pcap"
    write_rtp_pcap(pcap, [Silence(500), *parts, Tone(300, 1000)])
    scenario = render_scenario(
        "uac_pcap.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT=bye_timeout
    )
    return await sipp.call(scenario, running.sip_target, timeout=100)


async def test_patient_books_an_expert_after_one_wrong_pin(
    start_engine, sipp: Sipp, hospital_app, tmp_path: Path
) -> None:
    app, url = hospital_app
    running = await booking_engine(
        start_engine, url, datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
    )  # Tuesday
    parts = (
        keys("123456#")
        + keys("1111#")
        + keys("123456#")
        + keys("2222#")
        + keys("2")
        + keys("1")
        + keys("1")
        + keys("2")
        + keys("1")
        + keys("2")
    )

    result = await call(sipp, running, tmp_path, parts)

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    finished = await running.events.wait_for("flow.finished")
    path = running.path_of(finished["call_id"])
    assert path == [
        "welcome",
        "hours",
        "card",
        "pin",
        "verify",
        "check_login",
        "count_failure",
        "too_many_failures",
        "retry_login",
        "card",
        "pin",
        "verify",
        "check_login",
        "check_balance",
        "clinic_type",
        "expert_dept",
        "expert_dept_confirm",
        "expert_day",
        "expert_day_confirm",
        "experts",
        "expert_choice",
        "book_expert",
        "expert_booked",
        "expert_done",
    ]
    booked = [body for path_, body, _ in app.requests if path_ == "/ivr/booking/book"]
    assert booked == [
        {
            "card": "123456",
            "clinic": "expert",
            "dept": "internal",
            "day": 1,
            "expert": "E23",
            "session": "pm",
        }
    ]
    verify_headers = [h for p, _, h in app.requests if p == "/ivr/booking/verify"]
    assert (
        verify_headers[0]["x-careloop-call-id"] == finished["call_id"]
        and verify_headers[0]["x-careloop-node"] == "verify"
    )
    assert finished["data"]["outcome"] == "hangup"
    await asyncio.sleep(0.5)
    assert app.bad_signatures == 0
    hooked = [e["type"] for e in app.webhook_events]
    assert hooked[0] == "call.created" and "cdr" in hooked
    assert [e["seq"] for e in app.webhook_events] == sorted(e["seq"] for e in app.webhook_events)


async def test_three_wrong_logins_end_the_call(
    start_engine, sipp: Sipp, hospital_app, tmp_path: Path
) -> None:
    app, url = hospital_app
    running = await booking_engine(
        start_engine, url, datetime(2026, 10, 10, 9, 0, tzinfo=SHANGHAI)
    )  # make-up Saturday
    parts = (keys("654321#") + keys("0000#")) * 3

    result = await call(sipp, running, tmp_path, parts)

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    finished = await running.events.wait_for("flow.finished")
    path = running.path_of(finished["call_id"])
    assert path.count("verify") == 3 and path[-1] == "locked_out"
    assert finished["data"]["variables"]["login_failures"] == 3
    assert len([p for p, _, _ in app.requests if p == "/ivr/booking/verify"]) == 3


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI),
        datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI),
        datetime(2026, 11, 24, 18, 0, tzinfo=SHANGHAI),
    ],
    ids=["sunday", "holiday", "evening"],
)
async def test_outside_opening_hours_the_caller_is_told_and_released(
    start_engine, sipp: Sipp, hospital_app, tmp_path: Path, when: datetime
) -> None:
    _, url = hospital_app
    running = await booking_engine(start_engine, url, when)
    pcap = tmp_path / "quiet.pcap"
    write_rtp_pcap(pcap, [Silence(3000)])
    # The caller hangs up while the closing message plays: the branch taken is what matters
    scenario = render_scenario("uac_hangup.xml", sipp.workdir, PCAP=str(pcap), HOLD_MS="3500")

    result = await sipp.call(scenario, running.sip_target, timeout=20)

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    finished = await running.events.wait_for("flow.finished")
    assert running.path_of(finished["call_id"]) == ["welcome", "hours", "closed"]


async def test_application_down_routes_the_caller_to_an_agent(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    running = await start_engine(
        flow_path=BOOKING,
        app_url=f"http://127.0.0.1:{free_port()}",
        clock=lambda: datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI),
    )
    caller = asyncio.ensure_future(call(sipp, running, tmp_path, keys("123456#") + keys("2222#")))

    routed = await running.events.wait_for("call.routed", timeout=40)
    leg = running.engine.get_leg(routed["call_id"])
    assert routed["data"]["target"] == {
        "queue": "booking",
        "data": {"card": "123456", "step": "booking"},
    }
    assert routed["data"]["variables"]["http_error"] == "ConnectError"
    await leg.hangup()
    assert (await caller).returncode == 0
