"""Malformed and unexpected SIP (RFC 4475 torture cases and friends) sent raw over UDP.

The engine must answer 4xx/5xx or drop the message, log it, and keep serving: after every
message an OPTIONS still gets 200.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

pytestmark = pytest.mark.telephony


def message(
    start: str, headers: list[str], body: str = "", *, content_length: str | None = None
) -> bytes:
    lines = [start, *headers]
    lines.append(
        f"Content-Length: {content_length if content_length is not None else len(body.encode())}"
    )
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def std(
    method: str,
    uri: str = "sip:ivr@127.0.0.1",
    *,
    cseq: str | None = None,
    call_id: str = "torture-1",
) -> list[str]:
    return [
        f"Via: SIP/2.0/UDP 127.0.0.1:{{port}};branch=z9hG4bK-{call_id}-{method}",
        f"From: <sip:caller@127.0.0.1>;tag=t-{call_id}",
        f"To: <{uri}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq or '1 ' + method}",
        "Max-Forwards: 70",
    ]


SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\n"

# (name, raw message with {port}/{call_id}/{method} to fill, accepted answers; None = no answer)
CASES: list[tuple[str, bytes, set[int | None]]] = [
    (
        "badvers (RFC 4475 3.1.2.16)",
        message("OPTIONS sip:ivr@127.0.0.1 SIP/7.0", std("OPTIONS", call_id="bv")),
        {505},
    ),
    (
        "mismatch01 (3.1.2.17)",
        message("OPTIONS sip:ivr@127.0.0.1 SIP/2.0", std("OPTIONS", cseq="8 INVITE", call_id="mm")),
        {400},
    ),
    (
        "mismatch02 unknown method (3.1.2.18)",
        message(
            "NEWMETHOD sip:ivr@127.0.0.1 SIP/2.0", std("NEWMETHOD", cseq="8 INVITE", call_id="mm2")
        ),
        {400, 501},
    ),
    (
        "unknown method",
        message("NEWMETHOD sip:ivr@127.0.0.1 SIP/2.0", std("NEWMETHOD", call_id="um")),
        {501},
    ),
    (
        "insuf: missing Call-ID/From (3.3.1)",
        message(
            "OPTIONS sip:ivr@127.0.0.1 SIP/2.0",
            [
                "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-insuf",
                "To: <sip:ivr@127.0.0.1>",
                "CSeq: 1 OPTIONS",
            ],
        ),
        {400},
    ),
    (
        "unkscm: unknown URI scheme (3.3.2)",
        message(
            "OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP/2.0",
            std("OPTIONS", call_id="us"),
        ),
        {416, 400},
    ),
    (
        "scalar02: overlarge CSeq (3.1.2.4)",
        message(
            "OPTIONS sip:ivr@127.0.0.1 SIP/2.0",
            std("OPTIONS", cseq="36893488147419103232 OPTIONS", call_id="sc"),
        ),
        {400},
    ),
    (
        "ncl: negative Content-Length (3.1.2.3)",
        message(
            "INVITE sip:ivr@127.0.0.1 SIP/2.0",
            [*std("INVITE", call_id="ncl"), "Content-Type: application/sdp"],
            SDP,
            content_length="-999",
        ),
        {400},
    ),
    (
        "clerr: Content-Length larger than body (3.1.2.2)",
        message(
            "INVITE sip:ivr@127.0.0.1 SIP/2.0",
            [*std("INVITE", call_id="cl"), "Content-Type: application/sdp"],
            SDP,
            content_length="9999",
        ),
        {400},
    ),
    (
        "ltgtruri: <> around Request-URI (3.1.2.7)",
        message("OPTIONS <sip:ivr@127.0.0.1> SIP/2.0", std("OPTIONS", call_id="lt")),
        {400},
    ),
    (
        "lwsstart: two spaces in start line (3.1.2.9)",
        message("OPTIONS  sip:ivr@127.0.0.1 SIP/2.0", std("OPTIONS", call_id="lw")),
        {400},
    ),
    (
        "escruri: escaped headers in Request-URI (3.1.2.11)",
        message(
            "OPTIONS sip:ivr@127.0.0.1?Route=%3Csip:example.com%3E SIP/2.0",
            std("OPTIONS", call_id="esc"),
        ),
        {400},
    ),
    (
        "invut: INVITE with an unknown body type (3.3.7)",
        message(
            "INVITE sip:ivr@127.0.0.1 SIP/2.0",
            [*std("INVITE", call_id="ut"), "Content-Type: application/unknownformat"],
            '<audio> <pcmu port="443"/> </audio>',
        ),
        {415},
    ),
    (
        "bad SDP",
        message(
            "INVITE sip:ivr@127.0.0.1 SIP/2.0",
            [*std("INVITE", call_id="bs"), "Content-Type: application/sdp"],
            "this is not sdp at all",
        ),
        {400, 488},
    ),
    (
        "BYE outside any dialog",
        message(
            "BYE sip:ivr@127.0.0.1 SIP/2.0",
            [
                h.replace("<sip:ivr@127.0.0.1>", "<sip:ivr@127.0.0.1>;tag=x")
                for h in std("BYE", call_id="nodialog")
            ],
        ),
        {481},
    ),
    (
        "re-INVITE on an unknown dialog",
        message(
            "INVITE sip:ivr@127.0.0.1 SIP/2.0",
            [
                h.replace("<sip:ivr@127.0.0.1>", "<sip:ivr@127.0.0.1>;tag=x")
                for h in std("INVITE", call_id="nodialog2")
            ]
            + ["Content-Type: application/sdp"],
            SDP,
        ),
        {481},
    ),
    (
        "INFO outside any dialog",
        message(
            "INFO sip:ivr@127.0.0.1 SIP/2.0",
            [*std("INFO", call_id="info"), "Content-Type: application/dtmf-relay"],
            "Signal=1\r\n",
        ),
        {481},
    ),
    (
        "REGISTER to a UA",
        message("REGISTER sip:127.0.0.1 SIP/2.0", std("REGISTER", call_id="reg")),
        {405},
    ),
    (
        "Require: an unknown extension",
        message(
            "OPTIONS sip:ivr@127.0.0.1 SIP/2.0",
            [*std("OPTIONS", call_id="req"), "Require: nothingwedo"],
        ),
        {420},
    ),
    (
        "From without a URI",
        message(
            "OPTIONS sip:ivr@127.0.0.1 SIP/2.0",
            [
                h if not h.startswith("From") else "From: garbage;tag=1"
                for h in std("OPTIONS", call_id="fr")
            ],
        ),
        {400},
    ),
    ("binary junk", bytes(range(256)) * 4, {None, 400}),
    (
        "a response nobody asked for",
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKnothing\r\nCall-ID: nope\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        {None},
    ),
    (
        "overlarge status code (3.1.2.19)",
        b"SIP/2.0 4294967301 better not break the receiver\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKbig\r\nCall-ID: big\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        {None},
    ),
    ("CRLF keep-alive", b"\r\n\r\n", {None}),
]


class RawPeer:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    async def exchange(
        self, raw: bytes, target: tuple[str, int], *, wait: float = 0.6
    ) -> list[bytes]:
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(self.sock, raw, target)
        replies: list[bytes] = []
        deadline = loop.time() + wait
        while (remaining := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(loop.sock_recv(self.sock, 65535), remaining)
            except TimeoutError:
                break
            replies.append(data)
            if data.startswith(b"SIP/2.0") and status_of(data) >= 200:
                break
        return replies


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("name", "raw", "accepted"), CASES, ids=[c[0].split(" ")[0] for c in CASES]
)
async def test_malformed_or_unexpected_message_is_refused_and_engine_keeps_working(
    start_engine, name: str, raw: bytes, accepted: set[int | None]
) -> None:
    running = await start_engine()
    peer = RawPeer()
    target = ("127.0.0.1", running.port)
    filled = raw.replace(b"{port}", str(peer.port).encode())

    replies = await peer.exchange(filled, target)

    finals = [status_of(r) for r in replies if r.startswith(b"SIP/2.0") and status_of(r) >= 200]
    if None in accepted and not finals:
        pass
    else:
        assert finals and finals[0] in accepted, f"{name}: got {replies!r}"
    options = message(
        "OPTIONS sip:ivr@127.0.0.1 SIP/2.0",
        [h.replace("{port}", str(peer.port)) for h in std("OPTIONS", call_id="alive")],
    )
    alive = await peer.exchange(options, target)
    assert alive and status_of(alive[0]) == 200, f"engine stopped answering after {name}"
    assert b"Allow: INVITE" in alive[0]
    assert running.engine.legs == {}
