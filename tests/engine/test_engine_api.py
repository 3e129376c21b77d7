"""The application drives a whole call through the command API (HTTP + websocket)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from audio_checks import bitrate_kbps, read_recording, rms, tone_level
from rtp_pcap import Key, Silence, Tone, write_rtp_pcap

from conftest import Sipp, render_scenario

pytestmark = pytest.mark.telephony

TOKEN = "test-token-1234"


class WsClient:
    """Reads events and replies from the engine's websocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.replies: dict[int, dict[str, Any]] = {}
        self.hello: dict[str, Any] | None = None
        self._changed = asyncio.Event()
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            item = json.loads(raw)
            if item.get("type") == "hello":
                self.hello = item
            elif "reply_to" in item:
                self.replies[item["reply_to"]] = item
            else:
                self.events.append(item)
            self._changed.set()

    async def wait(self, predicate: Any, timeout: float = 20) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = predicate()
            if found:
                return found
            if loop.time() > deadline:
                raise AssertionError(
                    f"timed out; events so far: {[e['type'] for e in self.events]}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.5)
            except TimeoutError:
                pass

    async def event(self, event_type: str, **match: Any) -> dict[str, Any]:
        return await self.wait(
            lambda: next(
                (
                    e
                    for e in self.events
                    if e["type"] == event_type
                    and all(e["data"].get(k) == v for k, v in match.items())
                ),
                None,
            )
        )

    async def command(self, ident: int, **payload: Any) -> dict[str, Any]:
        await self.ws.send(json.dumps({"id": ident, **payload}))
        return await self.wait(lambda: self.replies.get(ident))


async def test_application_drives_a_call_over_http_and_websocket(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    running = await start_engine(api_listen=("127.0.0.1", 0), api_token=TOKEN)
    api = running.engine.api_server.url
    auth = {"Authorization": f"Bearer {TOKEN}"}
    pcap = tmp_path / "caller.pcap"
    write_rtp_pcap(pcap, [Silence(600), Key("5"), Key("5"), Key("1"), Tone(440, 7000, level=0.4)])
    scenario = render_scenario("uac_pcap.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="30000")

    async with (
        httpx.AsyncClient(base_url=api, headers=auth, timeout=20) as http,
        websockets.connect(api.replace("http", "ws") + f"/v1/events?token={TOKEN}") as ws,
    ):
        client = WsClient(ws)
        await client.wait(lambda: client.hello)
        caller = asyncio.ensure_future(sipp.call(scenario, running.sip_target, timeout=40))

        created = await client.event("call.created", direction="inbound")
        call_id = created["call_id"]
        assert created["data"]["headers"] == {"X-Test-Case": "pcap"}
        assert (await http.post(f"/v1/calls/{call_id}/answer")).status_code == 200
        again = await http.post(f"/v1/calls/{call_id}/answer")
        assert again.status_code == 409 and again.json()["error"]["code"] == "wrong_state"

        played = await http.post(
            f"/v1/calls/{call_id}/play", json={"items": [{"text": "请输入三位数字"}], "wait": True}
        )
        assert played.status_code == 200 and played.json()["reason"] in ("completed", "interrupted")
        gathered = await http.post(
            f"/v1/calls/{call_id}/gather", json={"max_digits": 3, "first_digit_timeout": 5}
        )
        assert gathered.json()["digits"] == "551" and gathered.json()["reason"] == "max_digits"

        reply = await client.command(1, command="get_call", call_id=call_id)
        assert reply["status"] == 200 and reply["body"]["call"]["state"] == "answered"

        started = await http.post(f"/v1/calls/{call_id}/record", json={"mode": "leg"})
        assert started.status_code == 201
        recording_id = started.json()["recording_id"]
        await asyncio.sleep(2.0)
        stopped = await http.post(
            f"/v1/calls/{call_id}/stop_recording", json={"recording_id": recording_id, "wait": True}
        )
        assert stopped.status_code == 200
        assert abs(stopped.json()["duration"] - 2.0) < 0.1

        finished = await client.event("recording.finished", recording_id=recording_id)
        assert (await http.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
        ended = await client.event("call.ended")
        cdr = (await client.event("cdr"))["data"]["record"]
        caller_result = await caller

        download = await http.get(f"/v1/recordings/{recording_id}")
        cdrs = (await http.get("/v1/cdrs")).json()["cdrs"]

    assert caller_result.returncode == 0, caller_result.stdout[-2000:] + caller_result.errors_log()
    assert ended["data"]["cause"] == "normal" and ended["data"]["hangup_by"] == "local"
    samples, rate = read_recording(finished["data"]["path"])
    assert rate == 8000
    assert abs(len(samples) / rate - finished["data"]["duration"]) < 0.001
    assert abs(finished["data"]["duration"] - 2.0) < 0.1
    assert rms(samples) > 0.1, "the caller's tone should be in the recording"
    assert tone_level(samples, rate, 440) == 1.0
    assert bitrate_kbps(finished["data"]["path"], finished["data"]["duration"]) <= 16
    assert download.status_code == 200 and download.headers["content-type"] == "audio/ogg"
    assert cdr["recordings"][0]["recording_id"] == recording_id
    assert [c["leg_id"] for c in cdrs] == [call_id]
    digits = [e["data"]["digit"] for e in client.events if e["type"] == "call.dtmf"]
    assert digits == ["5", "5", "1"]
    seqs = [e["seq"] for e in client.events]
    assert seqs == sorted(seqs)


async def test_api_refuses_bad_requests_with_reasons(start_engine) -> None:
    running = await start_engine(api_listen=("127.0.0.1", 0), api_token=TOKEN)
    api = running.engine.api_server.url
    async with httpx.AsyncClient(base_url=api, timeout=10) as anon:
        assert (await anon.get("/v1/health")).status_code == 401
        assert (
            await anon.get("/v1/health", headers={"Authorization": "Bearer wrong"})
        ).status_code == 401
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as http:
        health = (await http.get("/v1/health")).json()
        assert health["api"] == "v1" and health["calls"] == 0
        assert (await http.get("/v1/calls/0123456789abcdef")).status_code == 404
        bad_json = await http.post(
            "/v1/calls", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "bad_json"
        no_target = await http.post("/v1/calls", json={})
        assert no_target.status_code == 400 and "'to'" in no_target.json()["error"]["message"]
        number_without_trunk = await http.post("/v1/calls", json={"to": "13800138000"})
        assert number_without_trunk.status_code == 400
        bad_flow = await http.put(
            "/v1/flows/x",
            json={
                "format": "careloop-flow/1",
                "id": "x",
                "version": 1,
                "start": "a",
                "nodes": {"a": {"type": "say"}},
            },
        )
        assert bad_flow.status_code == 400
        assert any("say needs" in e for e in bad_flow.json()["error"]["errors"])
        assert (await http.get("/v1/nowhere")).status_code == 404


async def test_flows_are_versioned_through_the_api(start_engine) -> None:
    running = await start_engine(api_listen=("127.0.0.1", 0), api_token=TOKEN)
    doc = {
        "format": "careloop-flow/1",
        "id": "hello",
        "version": 1,
        "start": "bye",
        "nodes": {"bye": {"type": "hangup", "say": "再见"}},
    }
    async with httpx.AsyncClient(
        base_url=running.engine.api_server.url, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        assert (await http.put("/v1/flows/hello", json=doc)).status_code == 201
        assert (await http.put("/v1/flows/hello", json=doc)).status_code == 201  # idempotent
        changed = {**doc, "nodes": {"bye": {"type": "hangup", "say": "再会"}}}
        assert (await http.put("/v1/flows/hello", json=changed)).status_code == 409
        assert (
            await http.put("/v1/flows/hello", json={**changed, "version": 2})
        ).status_code == 201
        listing = (await http.get("/v1/flows")).json()["flows"]
        latest = (await http.get("/v1/flows/hello")).json()["flow"]
        first = (await http.get("/v1/flows/hello", params={"version": 1})).json()["flow"]
    assert listing == [{"id": "hello", "versions": [1, 2], "latest": 2, "name": ""}]
    assert latest["nodes"]["bye"]["say"] == "再会" and first["nodes"]["bye"]["say"] == "再见"
    assert (running.data_dir / "flows" / "hello.v2.json").exists()


async def test_application_bridges_two_callers_and_records_them(
    start_engine, sipp: Sipp, tmp_path: Path
) -> None:
    running = await start_engine(api_listen=("127.0.0.1", 0), api_token=TOKEN)
    api = running.engine.api_server.url
    callers = []
    for freq in (440, 700):
        pcap = tmp_path / f"c{freq}.pcap"
        write_rtp_pcap(pcap, [Tone(freq, 9000, level=0.3)])
        (sipp.workdir / str(freq)).mkdir()
        scenario = render_scenario(
            "uac_pcap.xml", sipp.workdir / str(freq), PCAP=str(pcap), BYE_TIMEOUT="20000"
        )
        callers.append(asyncio.ensure_future(sipp.call(scenario, running.sip_target, timeout=25)))
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20
    ) as http:
        await running.events.wait_for(
            "call.created", lambda e: len(running.events.of("call.created")) == 2
        )
        call_ids = [e["call_id"] for e in running.events.of("call.created")]
        for call_id in call_ids:
            assert (await http.post(f"/v1/calls/{call_id}/answer")).status_code == 200
        created = await http.post("/v1/bridges", json={"call_ids": call_ids, "record": True})
        assert created.status_code == 201, created.text
        bridge_id = created.json()["bridge_id"]
        busy = await http.post("/v1/bridges", json={"call_ids": call_ids})
        assert busy.status_code == 409
        await asyncio.sleep(2.0)
        members = (await http.get(f"/v1/bridges/{bridge_id}")).json()["members"]
        assert sorted(members) == sorted(call_ids)
        assert (
            await http.delete(f"/v1/bridges/{bridge_id}", params={"hangup": "true"})
        ).status_code == 200
    results = [await c for c in callers]
    for result in results:
        assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    finished = await running.events.wait_for("recording.finished")
    samples, rate = read_recording(finished["data"]["path"])
    assert 1.8 < len(samples) / rate < 2.6
    assert tone_level(samples, rate, 440) > 0.3 and tone_level(samples, rate, 700) > 0.3
    ends = [e["data"]["cause"] for e in running.events.of("call.ended")]
    assert ends == ["bridge_ended", "bridge_ended"]


async def test_engine_puts_a_caller_on_hold_with_music_and_resumes(
    start_engine, sipp: Sipp
) -> None:
    running = await start_engine(api_listen=("127.0.0.1", 0), api_token=TOKEN)
    caller = asyncio.ensure_future(
        sipp.call(render_scenario("uac_held.xml", sipp.workdir), running.sip_target, timeout=30)
    )
    async with httpx.AsyncClient(
        base_url=running.engine.api_server.url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=20,
    ) as http:
        created = await running.events.wait_for("call.created")
        call_id = created["call_id"]
        await http.post(f"/v1/calls/{call_id}/answer")
        held = await http.post(f"/v1/calls/{call_id}/hold")
        assert held.status_code == 200 and held.json()["call"]["held"] is True
        channel = running.engine.get_leg(call_id).channel
        before = channel.tx_frames
        await asyncio.sleep(1.0)
        assert channel.tx_frames - before >= 45, "music on hold should stream while held"
        resumed = await http.post(f"/v1/calls/{call_id}/unhold")
        assert resumed.status_code == 200 and resumed.json()["call"]["held"] is False
        await asyncio.sleep(0.5)
        quiet = channel.tx_frames
        await asyncio.sleep(0.5)
        assert channel.tx_frames == quiet, "music stops when the call is resumed"
        await http.post(f"/v1/calls/{call_id}/hangup")
    result = await caller
    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    assert [
        (e["data"]["held"], e["data"]["by"]) for e in running.events.of("call.hold", call_id)
    ] == [(True, "local"), (False, "local")]
