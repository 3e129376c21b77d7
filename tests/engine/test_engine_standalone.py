"""``careloop engine`` as a process: standalone IVR, CDR/recordings on disk, crash recovery."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from audio_checks import read_recording, rms
from rtp_pcap import Tone, write_rtp_pcap

from conftest import Sipp, free_port, free_rtp_range, render_scenario

pytestmark = pytest.mark.telephony

TOKEN = "standalone-token"
LONG_FLOW = {
    "format": "careloop-flow/1",
    "id": "long-notice",
    "version": 3,
    "start": "talk",
    "nodes": {
        "talk": {"type": "say", "say": {"silence": 20000}, "next": "bye"},
        "bye": {"type": "hangup"},
    },
}


class EngineProcess:
    def __init__(self, data_dir: Path, flow: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.flow = flow
        self.env = {**env, "CARELOOP_ENGINE_API_TOKEN": TOKEN}
        self.sip_port = free_port()
        self.api_port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> dict:
        low, high = free_rtp_range()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "careloop.engine",
            "--sip-listen",
            f"127.0.0.1:{self.sip_port}",
            "--flow",
            str(self.flow),
            "--data-dir",
            str(self.data_dir),
            "--api-listen",
            f"127.0.0.1:{self.api_port}",
            "--rtp-ports",
            f"{low}-{high}",
            "--record-calls",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=open(self.data_dir.parent / "engine.log", "ab"),
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 15)
        ready = json.loads(line)
        assert ready["event"] == "ready" and ready["sip_port"] == self.sip_port
        return ready

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 15)


async def test_killed_engine_finalises_interrupted_calls_and_keeps_partial_recordings(
    sipp: Sipp, tmp_path: Path, engine_env: dict[str, str]
) -> None:
    flow = tmp_path / "long.json"
    flow.write_text(json.dumps(LONG_FLOW))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    engine = EngineProcess(data_dir, flow, engine_env)
    await engine.start()
    pcap = tmp_path / "talk.pcap"
    write_rtp_pcap(pcap, [Tone(500, 15000)])
    scenario = render_scenario("uac_pcap.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="6000")
    caller = asyncio.ensure_future(sipp.call(scenario, f"127.0.0.1:{engine.sip_port}", timeout=12))

    journal = data_dir / "cdr" / "journal.jsonl"
    for _ in range(100):
        if journal.exists() and '"answer"' in journal.read_text():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(3.0)
    engine.kill()
    await engine.proc.wait()
    await caller  # the caller gives up waiting for a BYE; the engine is gone

    raw = list((data_dir / "recordings").rglob("*.pcm"))
    assert len(raw) == 1 and raw[0].stat().st_size > 8000 * 2 * 2, (
        "raw capture must be on disk during the call"
    )
    assert (
        not (data_dir / "cdr" / "cdr.jsonl").exists()
        or (data_dir / "cdr" / "cdr.jsonl").read_text() == ""
    )

    restarted = EngineProcess(data_dir, flow, engine_env)
    await restarted.start()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{restarted.api_port}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as http:
        cdrs = (await http.get("/v1/cdrs")).json()["cdrs"]
        health = (await http.get("/v1/health")).json()
    assert await restarted.terminate() == 0

    assert len(cdrs) == 1
    cdr = cdrs[0]
    assert (
        cdr["cause"] == "interrupted"
        and cdr["interrupted"] is True
        and cdr["hangup_by"] == "engine"
    )
    assert cdr["answer"] is not None and cdr["flow"]["id"] == "long-notice"
    assert 2.5 < cdr["billsec"] < 8
    (recording,) = cdr["recordings"]
    assert recording["partial"] is True
    samples, rate = read_recording(recording["path"])
    assert 2.5 < len(samples) / rate < 8
    assert abs(len(samples) / rate - recording["duration"]) < 0.05
    assert rms(samples) > 0.05
    assert not list((data_dir / "recordings").rglob("*.pcm"))
    assert not (data_dir / "cdr" / "journal.jsonl").exists()
    assert health["calls"] == 0


async def test_standalone_engine_answers_with_its_flow_and_stops_cleanly(
    sipp: Sipp, tmp_path: Path, engine_env: dict[str, str]
) -> None:
    flow = tmp_path / "short.json"
    flow.write_text(
        json.dumps(
            {
                **LONG_FLOW,
                "nodes": {
                    "talk": {"type": "say", "say": {"silence": 1500}, "next": "bye"},
                    "bye": {"type": "hangup"},
                },
            }
        )
    )
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    engine = EngineProcess(data_dir, flow, engine_env)
    await engine.start()
    pcap = tmp_path / "talk.pcap"
    write_rtp_pcap(pcap, [Tone(500, 3000)])
    scenario = render_scenario("uac_pcap.xml", sipp.workdir, PCAP=str(pcap), BYE_TIMEOUT="10000")

    result = await sipp.call(scenario, f"127.0.0.1:{engine.sip_port}", calls=3, rate=5, timeout=20)
    await asyncio.sleep(0.5)
    assert await engine.terminate() == 0

    assert result.returncode == 0, result.stdout[-2000:] + result.errors_log()
    cdrs = [json.loads(line) for line in (data_dir / "cdr" / "cdr.jsonl").read_text().splitlines()]
    assert len(cdrs) == 3
    assert {c["cause"] for c in cdrs} == {"normal"} and {c["flow"]["outcome"] for c in cdrs} == {
        "hangup"
    }
    oggs = list((data_dir / "recordings").rglob("*.ogg"))
    assert len(oggs) == 3
    for cdr in cdrs:
        (recording,) = cdr["recordings"]
        assert recording["mode"] == "both" and recording["partial"] is False
        assert abs(recording["duration"] - cdr["billsec"]) < 0.3
    assert os.path.getsize(data_dir / "cdr" / "cdr.jsonl") > 0
    assert not (data_dir / "cdr" / "journal.jsonl").exists()
