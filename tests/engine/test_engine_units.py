"""Pure-Python parts of the engine: flow validation, templates, SDP, dial results, CDR journal."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from aiosipua import parse_sdp

from careloop.engine.call import classify_result
from careloop.engine.cdr import CdrJournal
from careloop.engine.config import EngineConfig, parse_hostport
from careloop.engine.engine import Engine
from careloop.engine.flow import load_flow_file, render_text, render_value, validate_flow
from careloop.engine.opus import encode_file
from careloop.engine.sdp import LocalSession
from careloop.engine.sip import dtmf_from_info
from conftest import free_port, free_rtp_range

pytestmark = pytest.mark.telephony

DOCS_FLOWS = Path(__file__).parent.parent.parent / "docs" / "flows"


def test_every_documented_flow_is_valid() -> None:
    flows = sorted(DOCS_FLOWS.glob("*.json"))
    assert flows, "docs/flows should hold example flows"
    for path in flows:
        assert load_flow_file(path).id


def test_flow_validation_reports_every_problem_with_its_path() -> None:
    errors = validate_flow(
        {
            "format": "careloop-flow/1",
            "id": "bad flow!",
            "version": 0,
            "start": "menu",
            "nodes": {
                "menu": {"type": "menu", "say": "x", "options": {"1": "nowhere", "x": "menu"}},
                "ask": {
                    "type": "gather",
                    "say": "y",
                    "var": "v",
                    "next": "menu",
                    "min_digits": 5,
                    "max_digits": 2,
                },
                "when": {"type": "time", "calendar": "nope", "open": "menu", "closed": "menu"},
                "odd": {"type": "dance"},
            },
        }
    )
    assert "id: letters, digits, '-', '_' or '.', at most 64" in errors
    assert "version: a positive integer" in errors
    assert "nodes.menu.options.1: no node named 'nowhere'" in errors
    assert "nodes.menu.options: 'x' is not a phone key" in errors
    assert "nodes.ask: min_digits > max_digits" in errors
    assert "nodes.when.calendar: no calendar named 'nope'" in errors
    assert any(e.startswith("nodes.odd.type") for e in errors)
    assert "nodes.ask: unreachable from start" in errors


def test_templates_keep_types_for_whole_values_and_render_text() -> None:
    variables = {
        "account": {"ok": True, "balance": 12.5},
        "n": 3,
        "name": "张三",
        "list": ["a", "b"],
    }
    assert render_value("{{account.ok}}", variables) is True
    assert render_value("{{ n }}", variables) == 3
    assert render_value({"x": ["{{name}}", "卡号{{n}}"]}, variables) == {"x": ["张三", "卡号3"]}
    assert render_text("{{account.ok}}/{{missing}}/{{list.1}}", variables) == "true//b"


@pytest.mark.parametrize(
    ("code", "kwargs", "expected"),
    [
        (200, {}, "answered"),
        (486, {}, "busy"),
        (600, {}, "busy"),
        (480, {}, "no_answer"),
        (487, {"ring_timeout": True}, "no_answer"),
        (603, {}, "rejected"),
        (403, {}, "rejected"),
        (404, {}, "unreachable"),
        (None, {"no_response": True}, "unreachable"),
        (503, {}, "failed"),
        (500, {}, "failed"),
    ],
)
def test_dial_results(code: int | None, kwargs: dict, expected: str) -> None:
    assert classify_result(code, **kwargs) == expected


def test_sip_info_bodies() -> None:
    assert dtmf_from_info("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n") == "5"
    assert dtmf_from_info("application/dtmf-relay; charset=x", "Signal= #\r\n") == "#"
    assert dtmf_from_info("application/dtmf", "10") == "*"
    assert dtmf_from_info("application/dtmf-relay", "Signal=99") is None
    assert dtmf_from_info("text/plain", "5") is None


def test_sdp_answer_follows_the_offer_and_echoes_its_dtmf_payload_type() -> None:
    offer = parse_sdp(
        "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 18 0 8 96\r\na=rtpmap:96 telephone-event/8000\r\na=sendonly\r\n"
    )
    answer, params = LocalSession("192.0.2.10", 30000, ("PCMA", "PCMU")).answer(offer)
    audio = answer.audio
    assert audio is not None
    assert params.payload_type == 0 and params.dtmf_payload_type == 96 and params.on_hold
    assert params.remote_addr == ("10.1.1.1", 4000)
    assert answer.connection is not None and answer.connection.address == "192.0.2.10"
    assert audio.port == 30000 and audio.formats == ["0", "96"] and "recvonly" in audio.attributes


def test_hostports_and_advertised_address() -> None:
    assert parse_hostport("[::1]:5070", default_port=5060) == ("::1", 5070)
    assert parse_hostport(":5080", default_port=5060) == ("0.0.0.0", 5080)
    assert EngineConfig(sip_listen=("0.0.0.0", 5060)).advertised_ip("127.0.0.1") == "127.0.0.1"
    assert (
        EngineConfig(sip_listen=("0.0.0.0", 5060), advertise="203.0.113.7").advertised_ip(
            "127.0.0.1"
        )
        == "203.0.113.7"
    )
    assert EngineConfig(sip_listen=("127.0.0.1", 5060)).advertised_ip("10.0.0.1") == "127.0.0.1"


async def test_wildcard_bind_never_advertises_the_wildcard(tmp_path: Path, tts_cache: Path) -> None:
    flow = tmp_path / "f.json"
    flow.write_text(
        json.dumps(
            {
                "format": "careloop-flow/1",
                "id": "f",
                "version": 1,
                "start": "s",
                "nodes": {
                    "s": {"type": "say", "say": {"silence": 3000}, "next": "b"},
                    "b": {"type": "hangup"},
                },
            }
        )
    )
    port = free_port()
    config = EngineConfig(
        sip_listen=("0.0.0.0", port),
        rtp_ports=free_rtp_range(),
        data_dir=tmp_path / "d",
        flow_path=flow,
        tts_cache_dir=tts_cache,
    )
    engine = Engine(config)
    await engine.start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        me = sock.getsockname()[1]
        sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n"
        invite = (
            f"INVITE sip:ivr@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKwild\r\n"
            f"From: <sip:a@127.0.0.1:{me}>;tag=w\r\nTo: <sip:ivr@127.0.0.1:{port}>\r\nCall-ID: wildcard\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:a@127.0.0.1:{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
        )
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(sock, invite.encode(), ("127.0.0.1", port))
        ok = b""
        while not ok.startswith(b"SIP/2.0 200"):
            ok = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
        body = ok.split(b"\r\n\r\n", 1)[1].decode()
        answer = parse_sdp(body)
        assert answer.connection is not None and answer.connection.address == "127.0.0.1"
        assert answer.origin.address == "127.0.0.1"
        contact = next(line for line in ok.decode().split("\r\n") if line.startswith("Contact"))
        assert "0.0.0.0" not in contact
        leg = next(iter(engine.legs.values()))
        assert (
            leg.channel is not None
            and answer.audio is not None
            and answer.audio.port == leg.channel.local_port
        )
        sock.close()
    finally:
        await engine.stop()


def test_opus_recordings_have_the_exact_length_and_a_low_bitrate(tmp_path: Path) -> None:
    pcm = tmp_path / "a.pcm"
    for seconds in (0.02, 1.0, 7.34):
        samples = (
            0.2 * np.sin(2 * np.pi * 300 * np.arange(int(8000 * seconds)) / 8000) * 32767
        ).astype("<i2")
        pcm.write_bytes(samples.tobytes())
        written = encode_file(pcm, tmp_path / "a.ogg")
        info = sf.info(str(tmp_path / "a.ogg"))
        assert written == info.frames == len(samples)
        assert info.samplerate == 8000 and info.subtype == "OPUS"
        if seconds > 1:
            assert (tmp_path / "a.ogg").stat().st_size * 8 / seconds <= 16000


def test_journal_recovery_skips_a_torn_line_and_finalises_open_legs(tmp_path: Path) -> None:
    journal = CdrJournal(tmp_path)
    journal.dir.mkdir(parents=True)
    start = {
        "leg_id": "a" * 16,
        "start": "2026-01-01T08:00:00.000Z",
        "answer": None,
        "recordings": [],
        "flow": {},
    }
    lines = [
        json.dumps(
            {"op": "start", "leg_id": "a" * 16, "ts": "2026-01-01T08:00:00.000Z", "record": start}
        ),
        json.dumps(
            {
                "op": "update",
                "leg_id": "a" * 16,
                "ts": "2026-01-01T08:00:01.000Z",
                "fields": {"answer": "2026-01-01T08:00:01.000Z"},
            }
        ),
        json.dumps(
            {
                "op": "start",
                "leg_id": "b" * 16,
                "ts": "2026-01-01T08:00:02.000Z",
                "record": {**start, "leg_id": "b" * 16},
            }
        ),
        json.dumps({"op": "end", "leg_id": "b" * 16, "ts": "2026-01-01T08:00:03.000Z"}),
        '{"op": "update", "leg_id": "aaaa',
    ]
    journal.journal_path.write_text("\n".join(lines))
    journal.heartbeat_path.write_text("2026-01-01T08:00:09.000Z")

    finished = journal.recover([])

    assert [r["leg_id"] for r in finished] == ["a" * 16]
    record = finished[0]
    assert record["cause"] == "interrupted" and record["end"] == "2026-01-01T08:00:09.000Z"
    assert record["duration"] == 9.0 and record["billsec"] == 8.0
    assert json.loads(journal.cdr_path.read_text())["leg_id"] == "a" * 16
    assert not journal.journal_path.exists()


def test_api_token_is_generated_once_and_private(tmp_path: Path) -> None:
    from careloop.engine.cli import ensure_api_token

    token = ensure_api_token(tmp_path / "data")
    path = tmp_path / "data" / "api-token"
    assert len(token) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert ensure_api_token(tmp_path / "data") == token
