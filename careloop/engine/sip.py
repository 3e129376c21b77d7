"""SIP wiring: aiosipua's UAS/UAC on UDP (and TCP), plus what a production UA needs on top.

aiosipua gives us parsing, dialogs, the UAS/UAC state machines, digest auth, PRACK, REFER and
registration. This module adds, without forking it:

* RFC 3261 client retransmissions (timers A/B/E/F) for every request we send over UDP;
* the hop-by-hop ACK for non-2xx final responses to our INVITEs (401/407/486/487/503...);
* absorbing INVITE retransmissions (aiosipua would treat them as new calls);
* 481 for in-dialog INVITEs on unknown dialogs, 501 for unknown methods, 505/416/400/420 checks
  on the start line and mandatory headers, 503 when at capacity, and a 400 (or a logged drop)
  for messages that do not even parse — nothing reaches the call layer malformed;
* SIP INFO DTMF (``application/dtmf-relay`` and ``application/dtmf``);
* Via transport fix-ups for TCP and responses over the connection the request came on.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosipua import (
    Dialog,
    DialogState,
    IncomingCall,
    OutgoingCall,
    Registration,
    SdpMessage,
    SipDigestAuth,
    SipMessage,
    SipRequest,
    SipResponse,
    SipUAC,
    SipUAS,
    TcpSipTransport,
    UdpSipTransport,
    generate_branch,
    parse_address,
    parse_uri,
    serialize_sdp,
)
from aiosipua.dialog import dialog_matches, remote_cseq_valid
from aiosipua.headers import CSeq, Via, stringify_cseq, stringify_via
from aiosipua.transport import _stamp_via_received
from aiosipua.utils import format_addr, generate_tag

from careloop.engine import USER_AGENT
from careloop.engine.config import EngineConfig, is_ip_literal

logger = logging.getLogger(__name__)

T1 = 0.5
T2 = 4.0
TIMER_B = 64 * T1
# Completed INVITE client transactions linger this long so retransmitted final responses are re-ACKed
TIMER_D = 32.0

ALLOWED_METHODS = (
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "INFO",
    "REFER",
    "NOTIFY",
    "PRACK",
    "UPDATE",
)
KNOWN_UNSUPPORTED = {"REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE"}
SUPPORTED_EXTENSIONS = {"100rel", "replaces", "norefersub"}
URI_SCHEMES = ("sip:", "sips:", "tel:")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_ADDR_RE = re.compile(r"(?i)(^|[<\s\"])(sips?|tel):")


def make_response(
    request: SipRequest, status: int, reason: str, *, to_tag: str | None = None
) -> SipResponse:
    """A response to *request* that copies Via/From/To/Call-ID/CSeq (adding a To tag if absent)."""
    resp = SipResponse(status_code=status, reason_phrase=reason)
    for v in request.headers.get("via"):
        resp.headers.append("Via", v)
    for name in ("From", "Call-ID", "CSeq"):
        value = request.headers.get_first(name)
        if value:
            resp.headers.set_single(name, value)
    to_val = request.headers.get_first("to")
    if to_val:
        if ";tag=" not in to_val.replace(" ", "") and status > 100:
            to_val = f"{to_val};tag={to_tag or generate_tag()}"
        resp.headers.set_single("To", to_val)
    resp.headers.set_single("Server", USER_AGENT)
    return resp


def _top_branch(msg: SipMessage) -> str | None:
    vias = msg.headers.get("via")
    if not vias:
        return None
    for part in vias[0].split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "branch":
            return value or None
    return None


def _cseq_method(msg: SipMessage) -> str | None:
    raw = msg.headers.get_first("cseq")
    if not raw:
        return None
    parts = raw.split()
    return parts[1].upper() if len(parts) == 2 else None


def _uri_hostport(uri_text: str) -> tuple[str, int] | None:
    """``(host, port)`` of a SIP URI (or name-addr), ``None`` if it does not parse."""
    try:
        text = uri_text.strip()
        uri = parse_address(text).uri if "<" in text else parse_uri(text)
    except Exception:
        return None
    if not uri.host:
        return None
    return uri.host.strip("[]"), uri.port or 5060


def dtmf_from_info(content_type: str, body: str) -> str | None:
    """The digit carried by a SIP INFO body, or ``None`` when there is none."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/dtmf-relay":
        for line in body.splitlines():
            key, _, value = line.partition("=")
            if key.strip().lower() == "signal":
                digit = value.strip().upper()
                return digit if digit in set("0123456789*#ABCD") and len(digit) == 1 else None
        return None
    if ctype == "application/dtmf":
        digit = body.strip().upper()
        if digit == "10":
            return "*"
        if digit == "11":
            return "#"
        return digit if len(digit) == 1 and digit in set("0123456789*#ABCD") else None
    return None


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: _EngineUdpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int] | Any) -> None:
        self.owner._dispatch(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable for a peer that went away: not our problem to crash on
        logger.debug("UDP error: %s", exc)


class _EngineUdpTransport(UdpSipTransport):
    """UDP transport that reports raw traffic to the stack (malformed input, sent requests)."""

    stack: SipStack | None = None

    async def start(self) -> None:
        # aiosipua's protocol asserts an asyncio.DatagramTransport, which uvloop's is not
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=self.local_addr
        )
        self._udp_transport = transport

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.stack is not None:
            self.stack._receive(self, data, addr)

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        self.raw_send(message, addr)
        if self.stack is not None:
            self.stack._sent(self, message, addr)

    def raw_send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        super().send(message, addr)

    def send_bytes(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._udp_transport is not None:
            self._udp_transport.sendto(data, addr)


class _EngineTcpTransport(TcpSipTransport):
    """TCP transport: requests say TCP in their Via; responses go back on the request's connection."""

    stack: SipStack | None = None

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.stack is not None:
            self.stack._receive(self, data, addr)

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        self.raw_send(message, addr)
        if self.stack is not None:
            self.stack._sent(self, message, addr)

    def raw_send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if isinstance(message, SipRequest):
            vias = message.headers.get("via")
            if vias and vias[0].upper().startswith("SIP/2.0/UDP"):
                rest = vias[1:]
                message.headers.remove("Via")
                message.headers.append("Via", "SIP/2.0/TCP" + vias[0][len("SIP/2.0/UDP") :])
                for v in rest:
                    message.headers.append("Via", v)
        try:
            super().send(message, addr)
        except RuntimeError:
            logger.warning("no TCP connection to %s; %s not sent", addr, _describe(message))

    def send_bytes(self, data: bytes, addr: tuple[str, int]) -> None:
        conn = self._connections.get(addr)
        if conn is not None:
            conn[1].write(data)


Transport = _EngineUdpTransport | _EngineTcpTransport


def _describe(message: SipRequest | SipResponse) -> str:
    if isinstance(message, SipRequest):
        return message.method
    return f"{message.status_code} response"


@dataclass
class Endpoint:
    """One listening transport with its UAS and UAC."""

    name: str
    transport: Transport
    uas: SipUAS
    uac: SipUAC

    @property
    def reliable(self) -> bool:
        return isinstance(self.transport, TcpSipTransport)


@dataclass
class ClientTransaction:
    """A request we sent, retransmitted over UDP until answered (RFC 3261 §17.1)."""

    endpoint: Endpoint
    request: SipRequest
    dest: tuple[str, int]
    future: asyncio.Future[SipResponse | None]
    interval: float = T1
    elapsed: float = 0.0
    handle: asyncio.TimerHandle | None = None
    provisional: bool = False
    ack: SipRequest | None = None

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"


@dataclass
class DialogHandle:
    """Where and how to send requests inside one dialog."""

    endpoint: Endpoint
    dialog: Dialog
    fallback: tuple[str, int]
    incoming: IncomingCall | None = None
    outgoing: OutgoingCall | None = None

    def next_hop(self) -> tuple[str, int]:
        """First Route, else the remote target, else where the dialog's traffic came from.

        Over TCP the peer's connection is the only way back, so it always wins.
        """
        if self.endpoint.reliable:
            return self.fallback
        for candidate in self.dialog.route_set[:1] or [self.dialog.remote_target]:
            hostport = _uri_hostport(candidate) if candidate else None
            if hostport and is_ip_literal(hostport[0]):
                return hostport
        return self.fallback


@dataclass
class OutboundInvite:
    """An INVITE we sent: provisional progress and the final outcome as futures."""

    endpoint: Endpoint
    call: OutgoingCall
    ringing: asyncio.Event = field(default_factory=asyncio.Event)
    early_media: bool = False
    final: asyncio.Future[tuple[int, str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    cancelled: bool = False
    timed_out: bool = False

    @property
    def call_id(self) -> str:
        return self.call.call_id

    def handle(self) -> DialogHandle:
        return DialogHandle(
            self.endpoint, self.call.dialog, self.call.remote_addr, outgoing=self.call
        )

    def _finish(self, code: int, reason: str) -> None:
        if not self.final.done():
            self.final.set_result((code, reason))


class SipStack:
    """The engine's SIP user agent: listens, registers, places and receives calls.

    Call-level decisions are delegated through the ``on_*`` callbacks, which the engine sets.
    """

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.endpoints: dict[str, Endpoint] = {}
        self.registration: Registration | None = None
        self.registration_state = "disabled"
        self.stats: dict[str, int] = {
            "malformed": 0,
            "rejected_400": 0,
            "rejected_other": 0,
            "retransmissions": 0,
            "transaction_timeouts": 0,
        }
        self._client: dict[tuple[str, str], ClientTransaction] = {}
        self._server_invites: dict[str, SipResponse | None] = {}
        self._outbound: dict[str, OutboundInvite] = {}
        self._reinvite_handles: dict[str, DialogHandle] = {}
        # RFC 3261 timers B/F (64*T1); configurable so an unreachable peer can be detected sooner
        self.timer_b = config.sip_timer_b
        self._loop: asyncio.AbstractEventLoop | None = None

        # Callbacks the engine sets
        self.accept_new_call: Callable[[], bool] = lambda: True
        self.on_invite: Callable[[IncomingCall, Endpoint], None] | None = None
        self.on_reinvite: Callable[[IncomingCall], None] | None = None
        self.on_bye: Callable[[str], None] | None = None
        self.on_cancel: Callable[[str], None] | None = None
        self.on_ack_timeout: Callable[[str], None] | None = None
        self.on_info_dtmf: Callable[[str, str], bool] | None = None
        self.on_refer: Callable[[IncomingCall, str], None] | None = None
        self.on_transfer_progress: Callable[[str, int, str], None] | None = None
        self.on_registration: Callable[[str, int | None, str], None] | None = None

    # ---------------------------------------------------------------- lifecycle

    @property
    def advertised_addr(self) -> tuple[str, int]:
        registrar_ip = self.config.registrar.address[0] if self.config.registrar else None
        return (self.config.advertised_ip(registrar_ip), self.config.sip_port)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        host, port = self.config.sip_listen
        udp = _EngineUdpTransport(local_addr=(host, port))
        await self._add_endpoint("udp", udp)
        if self.config.sip_tcp:
            tcp = _EngineTcpTransport(local_addr=(host, port))
            await self._add_endpoint("tcp", tcp)
        if self.config.registrar is not None:
            self._start_registration()

    async def _add_endpoint(self, name: str, transport: Transport) -> None:
        advertised = self.advertised_addr
        uac = SipUAC(transport, advertised_addr=advertised)
        uas = SipUAS(transport, user_agent=USER_AGENT, uac=uac, advertised_addr=advertised)
        endpoint = Endpoint(name, transport, uas, uac)
        uas.on_invite = lambda call: self._dispatch_invite(call, endpoint)
        uas.on_reinvite = self._dispatch_reinvite
        uas.on_bye = lambda call, _request: self.on_bye(call.call_id) if self.on_bye else None
        uas.on_cancel = self._dispatch_cancel
        uas.on_ack_timeout = lambda call: (
            self.on_ack_timeout(call.call_id) if self.on_ack_timeout else None
        )
        uas.on_options = lambda request, _addr: self._answer_options(endpoint, request)
        uas.on_refer = self._dispatch_refer
        uas.on_transfer_progress = self._dispatch_transfer_progress
        # In-dialog SIP INFO (DTMF) is not among aiosipua's handlers; add ours
        uas._handlers["INFO"] = lambda request, addr: self._handle_info(endpoint, request, addr)
        transport.stack = self
        await uas.start()
        # uas.start() installs uas._on_message; route through our screening first
        transport.on_message = lambda msg, addr: self._on_message(endpoint, msg, addr)
        self.endpoints[name] = endpoint
        bound = transport.local_addr
        if isinstance(transport, UdpSipTransport) and transport._udp_transport is not None:
            sockname = transport._udp_transport.get_extra_info("sockname")
            bound = (str(sockname[0]), int(sockname[1]))
        logger.info("SIP %s listening on %s", name.upper(), format_addr(*bound))

    async def stop(self) -> None:
        if self.registration is not None and self.registration_state == "registered":
            self.registration.unregister()
            await asyncio.sleep(0.2)
        for txn in self._client.values():
            if txn.handle is not None:
                txn.handle.cancel()
            if not txn.future.done():
                txn.future.set_result(None)
        self._client.clear()
        for endpoint in self.endpoints.values():
            await endpoint.uas.stop()

    def bound_port(self) -> int:
        """The UDP port actually bound (useful with port 0)."""
        transport = self.endpoints["udp"].transport
        assert isinstance(transport, UdpSipTransport) and transport._udp_transport is not None
        return int(transport._udp_transport.get_extra_info("sockname")[1])

    # ---------------------------------------------------------------- registration

    def _start_registration(self) -> None:
        reg_cfg = self.config.registrar
        assert reg_cfg is not None
        endpoint = self.endpoints["udp"]
        reg = Registration(
            endpoint.uac,
            reg_cfg.aor,
            reg_cfg.address,
            expires=reg_cfg.expires,
            auth=SipDigestAuth(reg_cfg.username, reg_cfg.password),
            user_agent=USER_AGENT,
        )
        reg.on_registered = lambda r: self._registration_changed("registered", 200, "OK")
        reg.on_failed = lambda r, code, reason: self._registration_changed("failed", code, reason)
        reg.on_expired = lambda r: self._registration_changed("expired", None, "no refresh answer")
        self.registration = reg
        self.registration_state = "registering"
        reg.register()

    def _registration_changed(self, state: str, status: int | None, reason: str) -> None:
        previous = self.registration_state
        self.registration_state = state
        if state == "failed" or previous != state:
            logger.info("registration %s (%s %s)", state, status, reason)
            if self.on_registration is not None:
                self.on_registration(state, status, reason)

    # ---------------------------------------------------------------- receive path

    def _receive(self, transport: Transport, data: bytes, addr: tuple[str, int]) -> None:
        """Raw datagram/segment in: keep-alives ignored, junk answered 400 or dropped."""
        if not data.strip(b"\r\n\t \x00"):
            return  # RFC 5626 CRLF keep-alive
        try:
            msg = SipMessage.parse(data)
            if isinstance(msg, SipRequest):
                self._screen_start_line(data)
                self._screen_framing(data, msg, stream=isinstance(transport, TcpSipTransport))
                _stamp_via_received(msg, addr)
                if isinstance(transport, TcpSipTransport):
                    self._pin_response_to_connection(msg, addr)
        except _Reject as exc:
            self._reject_raw(transport, data, addr, exc.status, exc.reason)
            return
        except Exception as exc:
            self.stats["malformed"] += 1
            logger.warning(
                "unparseable SIP message from %s dropped or answered 400: %s",
                addr,
                type(exc).__name__,
            )
            self._reject_raw(transport, data, addr, 400, "Bad Request")
            return
        if transport.on_message is not None:
            try:
                transport.on_message(msg, addr)
            except Exception:
                logger.exception("error handling SIP %s from %s", _describe(msg), addr)

    @staticmethod
    def _screen_start_line(data: bytes) -> None:
        first = data.split(b"\n", 1)[0].strip().decode("utf-8", "replace")
        parts = first.split(" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise _Reject(400, "Bad Request Line")
        if not _TOKEN_RE.match(parts[0]):
            raise _Reject(400, "Bad Method")
        if parts[2].upper() != "SIP/2.0":
            raise _Reject(505, "Version Not Supported")
        if parts[1].startswith("<") or "?" in parts[1]:
            # RFC 4475 §3.1.2.7 / §3.1.2.11: <> around, or escaped headers in, the Request-URI
            raise _Reject(400, "Bad Request-URI")

    @staticmethod
    def _screen_framing(data: bytes, msg: SipRequest, *, stream: bool) -> None:
        """Content-Length must be one non-negative number no larger than the body (RFC 3261 §18.3)."""
        values = msg.headers.get("content-length")
        if not values:
            if stream:
                raise _Reject(400, "Missing Content-Length")
            return
        if len(values) > 1 or not values[0].strip().isdigit():
            raise _Reject(400, "Bad Content-Length")
        sep, width = data.find(b"\r\n\r\n"), 4
        if sep < 0:
            sep, width = data.find(b"\n\n"), 2
        body_len = len(data) - sep - width if sep >= 0 else 0
        if int(values[0]) > body_len:
            raise _Reject(400, "Content-Length Exceeds Body")

    @staticmethod
    def _pin_response_to_connection(msg: SipRequest, addr: tuple[str, int]) -> None:
        """Over TCP, answer on the connection the request arrived on (RFC 3261 §18.2.2)."""
        vias = msg.headers.get("via")
        if not vias:
            return
        via = _parse_via_safe(vias[0])
        if via is None:
            return
        via.params["received"] = addr[0]
        via.params["rport"] = str(addr[1])
        msg.headers.remove("Via")
        msg.headers.append("Via", stringify_via(via))
        for v in vias[1:]:
            msg.headers.append("Via", v)

    def _reject_raw(
        self, transport: Transport, data: bytes, addr: tuple[str, int], status: int, reason: str
    ) -> None:
        """Answer a request we could not accept, built from its raw header lines when possible."""
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
        lines = [line.rstrip("\r") for line in head.split("\n")]
        if not lines or lines[0].startswith("SIP/") or lines[0].split(" ")[0].upper() == "ACK":
            return  # never answer responses or ACKs
        wanted = {
            "via": "Via",
            "v": "Via",
            "from": "From",
            "f": "From",
            "to": "To",
            "t": "To",
            "call-id": "Call-ID",
            "i": "Call-ID",
            "cseq": "CSeq",
        }
        copied: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            key = name.strip().lower()
            if sep and key in wanted and "\r" not in value and len(value) < 1024:
                copied.append((wanted[key], value.strip()))
        names = {n for n, _ in copied}
        if "Via" not in names:
            logger.warning(
                "request from %s without a usable Via dropped (%s %s)", addr, status, reason
            )
            return
        out = [f"SIP/2.0 {status} {reason}"]
        for name, value in copied:
            if name == "To" and "tag=" not in value:
                value = f"{value};tag={generate_tag()}"
            out.append(f"{name}: {value}")
        out += [f"Server: {USER_AGENT}", "Content-Length: 0", "", ""]
        if status == 400:
            self.stats["rejected_400"] += 1
        else:
            self.stats["rejected_other"] += 1
        transport.send_bytes("\r\n".join(out).encode("utf-8"), addr)

    def _reply(
        self,
        endpoint: Endpoint,
        request: SipRequest,
        status: int,
        reason: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        resp = make_response(request, status, reason)
        for name, value in (headers or {}).items():
            resp.headers.set_single(name, value)
        if status >= 400:
            self.stats["rejected_400" if status == 400 else "rejected_other"] += 1
        endpoint.transport.send_reply(resp)

    def _on_message(
        self, endpoint: Endpoint, msg: SipRequest | SipResponse, addr: tuple[str, int]
    ) -> None:
        if isinstance(msg, SipResponse):
            self._on_response(endpoint, msg, addr)
            return
        try:
            self._on_request(endpoint, msg, addr)
        except Exception:
            logger.exception("error handling %s from %s", msg.method, addr)
            if msg.method != "ACK" and msg.headers.get("via"):
                self._reply(endpoint, msg, 500, "Server Internal Error")

    def _on_request(self, endpoint: Endpoint, request: SipRequest, addr: tuple[str, int]) -> None:
        method = request.method.upper()
        missing = [
            h for h in ("via", "from", "to", "call-id", "cseq") if not request.headers.get(h)
        ]
        if missing:
            logger.warning("%s from %s missing %s", method, addr, ", ".join(missing))
            if "via" not in missing and method != "ACK":
                self._reply(endpoint, request, 400, "Missing Required Header")
            return
        cseq_raw = request.headers.get_first("cseq") or ""
        cseq_parts = cseq_raw.split()
        if len(cseq_parts) != 2 or not cseq_parts[0].isdigit() or int(cseq_parts[0]) >= 2**31:
            if method != "ACK":
                self._reply(endpoint, request, 400, "Bad CSeq")
            return
        if cseq_parts[1].upper() != method:
            if method != "ACK":
                self._reply(endpoint, request, 400, "CSeq Method Mismatch")
            return
        from_raw = request.headers.get_first("from") or ""
        to_raw = request.headers.get_first("to") or ""
        try:
            from_addr = parse_address(from_raw)
            to_addr = parse_address(to_raw)
            # parse_address is lenient ("bogus" parses as sip:bogus); insist on a real URI
            if not (_ADDR_RE.search(from_raw) and _ADDR_RE.search(to_raw)):
                raise ValueError("no URI")
            if not from_addr.uri.host or not to_addr.uri.host:
                raise ValueError("no host")
        except Exception:
            if method != "ACK":
                self._reply(endpoint, request, 400, "Bad From/To")
            return
        if len(request.headers.get("content-length")) > 1:
            self._reply(endpoint, request, 400, "Multiple Content-Length")
            return
        max_forwards = request.headers.get_first("max-forwards")
        if max_forwards is not None and not max_forwards.strip().isdigit():
            if method != "ACK":
                self._reply(endpoint, request, 400, "Bad Max-Forwards")
            return
        if method in KNOWN_UNSUPPORTED:
            self._reply(
                endpoint, request, 405, "Method Not Allowed", {"Allow": ", ".join(ALLOWED_METHODS)}
            )
            return
        if method not in ALLOWED_METHODS:
            self._reply(
                endpoint, request, 501, "Not Implemented", {"Allow": ", ".join(ALLOWED_METHODS)}
            )
            return
        if not request.uri.lower().startswith(URI_SCHEMES):
            if method != "ACK":
                self._reply(endpoint, request, 416, "Unsupported URI Scheme")
            return
        if method not in {"ACK", "CANCEL"}:
            required = [
                t.strip().lower()
                for v in request.headers.get("require")
                for t in v.split(",")
                if t.strip()
            ]
            unsupported = [t for t in required if t not in SUPPORTED_EXTENSIONS]
            if unsupported:
                self._reply(
                    endpoint, request, 420, "Bad Extension", {"Unsupported": ", ".join(unsupported)}
                )
                return
        ctype = (request.content_type or "").split(";")[0].strip().lower()
        if method == "INVITE" and request.body and ctype != "application/sdp":
            self._reply(
                endpoint, request, 415, "Unsupported Media Type", {"Accept": "application/sdp"}
            )
            return
        if method == "INVITE" and not self._screen_invite(endpoint, request, to_addr.tag):
            return
        if (
            method == "INVITE"
            and request.body
            and (request.content_type or "").split(";")[0].strip().lower() == "application/sdp"
        ):
            try:
                from aiosipua import parse_sdp

                offer = parse_sdp(request.text)
            except Exception:
                self._reply(endpoint, request, 400, "Bad SDP")
                return
            if offer.audio is None or offer.rtp_address is None:
                self._reply(endpoint, request, 488, "Not Acceptable Here")
                return
        endpoint.uas._handle_request(request, addr)

    def _screen_invite(self, endpoint: Endpoint, request: SipRequest, to_tag: str | None) -> bool:
        """Handle INVITE retransmissions, unknown-dialog re-INVITEs and capacity. True = proceed."""
        call_id = request.call_id or ""
        branch = _top_branch(request) or ""
        if not to_tag:
            if branch in self._server_invites:
                # Retransmission of an INVITE we are already handling: repeat our last answer
                last = self._server_invites[branch]
                if last is not None:
                    endpoint.transport.raw_send(last, _response_dest(last))
                return False
            if endpoint.uas.get_call(call_id) is not None:
                self._reply(endpoint, request, 482, "Loop Detected")
                return False
            if not self.accept_new_call():
                self._reply(endpoint, request, 503, "Service Unavailable", {"Retry-After": "5"})
                return False
            self._server_invites[branch] = None
            assert self._loop is not None
            self._loop.call_later(TIMER_B + 5, self._server_invites.pop, branch, None)
            return True
        incoming = endpoint.uas.get_call(call_id)
        outgoing = endpoint.uac.get_call(call_id)
        dialog = incoming.dialog if incoming else (outgoing.dialog if outgoing else None)
        if dialog is None or dialog.state != DialogState.CONFIRMED:
            self._reply(endpoint, request, 481, "Call/Transaction Does Not Exist")
            return False
        return True

    def _dispatch_invite(self, call: IncomingCall, endpoint: Endpoint) -> None:
        if self.on_invite is None:
            call.reject(480, "Temporarily Unavailable")
            return
        self.on_invite(call, endpoint)

    def _dispatch_reinvite(self, call: IncomingCall) -> None:
        if self.on_reinvite is None:
            call.reject(488, "Not Acceptable Here")
            return
        self.on_reinvite(call)

    def _dispatch_cancel(self, request: SipRequest, _addr: tuple[str, int]) -> None:
        if self.on_cancel is not None:
            self.on_cancel(request.call_id or "")

    def _dispatch_refer(self, call: IncomingCall, refer_to: str) -> None:
        if self.on_refer is None:
            from aiosipua import notify_refer

            notify_refer(call, 603, "Declined")
            return
        self.on_refer(call, refer_to)

    def _dispatch_transfer_progress(self, call_id: str, status: int, reason: str) -> None:
        if self.on_transfer_progress is not None:
            self.on_transfer_progress(call_id, status, reason)

    def _answer_options(self, endpoint: Endpoint, request: SipRequest) -> None:
        self._reply(
            endpoint,
            request,
            200,
            "OK",
            {
                "Allow": ", ".join(ALLOWED_METHODS),
                "Accept": "application/sdp, application/dtmf-relay, application/dtmf, message/sipfrag",
                "Supported": "100rel, replaces",
            },
        )

    def _handle_info(self, endpoint: Endpoint, request: SipRequest, addr: tuple[str, int]) -> None:
        call_id = request.call_id or ""
        incoming = endpoint.uas.get_call(call_id)
        outgoing = endpoint.uac.get_call(call_id)
        dialog = incoming.dialog if incoming else (outgoing.dialog if outgoing else None)
        if dialog is None:
            self._reply(endpoint, request, 481, "Call/Transaction Does Not Exist")
            return
        if not dialog_matches(dialog, request):
            self._reply(endpoint, request, 481, "Call/Transaction Does Not Exist")
            return
        if not remote_cseq_valid(dialog, request):
            self._reply(endpoint, request, 500, "Server Internal Error")
            return
        ctype = request.content_type or ""
        if not request.body:
            self._reply(endpoint, request, 200, "OK")  # an empty INFO is a keep-alive probe
            return
        digit = dtmf_from_info(ctype, request.text)
        if digit is None:
            self._reply(
                endpoint,
                request,
                415,
                "Unsupported Media Type",
                {"Accept": "application/dtmf-relay, application/dtmf"},
            )
            return
        self._reply(endpoint, request, 200, "OK")
        if self.on_info_dtmf is not None:
            self.on_info_dtmf(call_id, digit)

    # ---------------------------------------------------------------- responses

    def _on_response(
        self, endpoint: Endpoint, response: SipResponse, addr: tuple[str, int]
    ) -> None:
        branch = _top_branch(response) or ""
        method = _cseq_method(response) or ""
        status = response.status_code
        if not 100 <= status <= 699:
            logger.warning("response with status %s from %s dropped", status, addr)
            return
        txn = self._client.get((branch, method))
        call_id = response.call_id or ""
        outbound = self._outbound.get(call_id)

        if txn is not None:
            self._client_progress(txn, response)

        if method == "INVITE":
            if txn is not None and status >= 300:
                self._ack_non_2xx(txn, response)
            if (
                outbound is not None
                and 200 <= status < 300
                and outbound.call.dialog.state == DialogState.EARLY
            ):
                self._learn_dialog(outbound.call.dialog, response)
            uac_call = endpoint.uac.get_call(call_id)
            if uac_call is None and 200 <= status < 300:
                self._ack_orphan_2xx(endpoint, response, txn, addr)
                return
            if uac_call is None and status >= 200 and outbound is not None:
                outbound._finish(status, response.reason_phrase)
                self._outbound.pop(call_id, None)
                return
            if outbound is not None and status in (180, 183):
                outbound.early_media = status == 183 and bool(response.body)
        endpoint.uac.handle_response(response, addr)
        if outbound is not None and method == "INVITE":
            self._after_invite_response(outbound, status, response)

    def _after_invite_response(
        self, outbound: OutboundInvite, status: int, response: SipResponse
    ) -> None:
        if status >= 300 and status not in (401, 407, 422):
            outbound._finish(status, response.reason_phrase)
            self._outbound.pop(outbound.call_id, None)
        elif status in (401, 407, 422) and outbound.endpoint.uac.get_call(outbound.call_id) is None:
            # Challenge we could not (or may no longer) answer: aiosipua rejected the call
            outbound._finish(status, response.reason_phrase)
            self._outbound.pop(outbound.call_id, None)

    @staticmethod
    def _learn_dialog(dialog: Dialog, response: SipResponse) -> None:
        """UAC side of RFC 3261 §12.1.2: remote target from Contact, route set from Record-Route."""
        contacts = response.headers.get("contact")
        if contacts:
            try:
                from aiosipua import stringify_uri

                dialog.remote_target = stringify_uri(parse_address(contacts[0]).uri)
            except Exception:
                logger.warning("unparseable Contact in 2xx for %s", dialog.call_id)
        # The UAC's route set is the Record-Route list reversed (RFC 3261 §12.1.2)
        dialog.route_set = list(reversed(response.headers.get("record-route")))

    def _client_progress(self, txn: ClientTransaction, response: SipResponse) -> None:
        status = response.status_code
        if status < 200:
            txn.provisional = True
            if txn.is_invite and txn.handle is not None:
                txn.handle.cancel()
                txn.handle = None
            return
        if txn.handle is not None:
            txn.handle.cancel()
            txn.handle = None
        if not txn.future.done():
            txn.future.set_result(response)
        key = (_top_branch(txn.request) or "", txn.request.method)
        if txn.is_invite and status >= 300:
            assert self._loop is not None
            self._loop.call_later(TIMER_D, self._client.pop, key, None)
        else:
            self._client.pop(key, None)

    def _ack_non_2xx(self, txn: ClientTransaction, response: SipResponse) -> None:
        """RFC 3261 §17.1.1.3: ACK a non-2xx final response within the INVITE transaction."""
        if txn.ack is None:
            invite = txn.request
            ack = SipRequest(method="ACK", uri=invite.uri)
            top_via = invite.headers.get_first("via")
            if top_via:
                ack.headers.append("Via", top_via)
            for name in ("From", "Call-ID"):
                value = invite.headers.get_first(name)
                if value:
                    ack.headers.set_single(name, value)
            ack.headers.set_single(
                "To", response.headers.get_first("to") or invite.headers.get_first("to") or ""
            )
            seq = invite.cseq.seq if invite.cseq else 1
            ack.headers.set_single("CSeq", stringify_cseq(CSeq(seq=seq, method="ACK")))
            ack.headers.set_single("Max-Forwards", "70")
            for route in invite.headers.get("route"):
                ack.headers.append("Route", route)
            txn.ack = ack
        txn.endpoint.transport.raw_send(txn.ack, txn.dest)

    def _ack_orphan_2xx(
        self,
        endpoint: Endpoint,
        response: SipResponse,
        txn: ClientTransaction | None,
        addr: tuple[str, int],
    ) -> None:
        """A 2xx for an INVITE we no longer want (CANCEL raced the answer): ACK, then BYE."""
        call_id = response.call_id or ""
        outbound = self._outbound.pop(call_id, None)
        if outbound is None:
            handle = self._reinvite_handles.get(call_id)
            if handle is not None and txn is None:
                # Retransmitted 2xx to our re-INVITE after the transaction completed: re-ACK
                self.send_ack(handle, response)
            return
        dialog = outbound.call.dialog
        to_addr = response.to_addr
        if to_addr and to_addr.tag:
            dialog.remote_tag = to_addr.tag
        self._learn_dialog(dialog, response)
        dialog.state = DialogState.CONFIRMED
        handle = outbound.handle()
        self.send_ack(handle, response)
        outbound._finish(response.status_code, "answered after cancel")
        asyncio.get_running_loop().create_task(self.request(handle, "BYE"))

    # ---------------------------------------------------------------- client transactions

    def _sent(
        self, transport: Transport, message: SipRequest | SipResponse, addr: tuple[str, int]
    ) -> None:
        """Every message leaves through here: track requests, remember INVITE answers."""
        if isinstance(message, SipResponse):
            if _cseq_method(message) == "INVITE":
                branch = _top_branch(message) or ""
                if branch in self._server_invites:
                    self._server_invites[branch] = message
            return
        if message.method == "ACK":
            return
        endpoint = next((e for e in self.endpoints.values() if e.transport is transport), None)
        if endpoint is None:
            return
        key = (_top_branch(message) or "", message.method)
        if key in self._client:
            return
        assert self._loop is not None
        txn = ClientTransaction(endpoint, message, addr, self._loop.create_future())
        self._client[key] = txn
        if endpoint.reliable:
            txn.handle = self._loop.call_later(self.timer_b, self._txn_timeout, key)
        else:
            txn.handle = self._loop.call_later(T1, self._retransmit, key)

    def _retransmit(self, key: tuple[str, str]) -> None:
        txn = self._client.get(key)
        if txn is None or txn.future.done():
            return
        txn.elapsed += txn.interval
        if txn.elapsed >= self.timer_b:
            self._txn_timeout(key)
            return
        txn.endpoint.transport.raw_send(txn.request, txn.dest)
        self.stats["retransmissions"] += 1
        txn.interval = txn.interval * 2 if (txn.is_invite or not txn.provisional) else T2
        if not txn.is_invite:
            txn.interval = min(txn.interval, T2)
        assert self._loop is not None
        txn.handle = self._loop.call_later(txn.interval, self._retransmit, key)

    def _txn_timeout(self, key: tuple[str, str]) -> None:
        txn = self._client.pop(key, None)
        if txn is None or txn.future.done():
            return
        self.stats["transaction_timeouts"] += 1
        logger.info("%s to %s timed out", txn.request.method, txn.dest)
        txn.future.set_result(None)
        if txn.is_invite:
            call_id = txn.request.call_id or ""
            outbound = self._outbound.pop(call_id, None)
            if outbound is not None:
                outbound.endpoint.uac.remove_call(call_id)
                outbound.call.dialog.terminate()
                outbound.timed_out = True
                outbound._finish(408, "Request Timeout")

    def transaction(self, request: SipRequest) -> asyncio.Future[SipResponse | None]:
        """The future final response of a request we just sent (``None`` on timeout)."""
        txn = self._client.get((_top_branch(request) or "", request.method))
        if txn is None:
            assert self._loop is not None
            fut: asyncio.Future[SipResponse | None] = self._loop.create_future()
            fut.set_result(None)
            return fut
        return txn.future

    # ---------------------------------------------------------------- outbound calls

    def endpoint_for(self, uri: str) -> Endpoint:
        if ";transport=tcp" in uri.lower() and "tcp" in self.endpoints:
            return self.endpoints["tcp"]
        return self.endpoints["udp"]

    async def invite(
        self,
        *,
        from_uri: str,
        to_uri: str,
        dest: tuple[str, int],
        sdp: SdpMessage,
        headers: dict[str, str] | None = None,
        auth: SipDigestAuth | None = None,
    ) -> OutboundInvite:
        """Send an INVITE; returns at once with progress/outcome futures."""
        endpoint = self.endpoint_for(to_uri)
        if endpoint.reliable:
            assert isinstance(endpoint.transport, TcpSipTransport)
            if dest not in endpoint.transport._connections:
                await endpoint.transport.connect(dest)
        extra = {"User-Agent": USER_AGENT, "Allow": ", ".join(ALLOWED_METHODS)}
        extra.update(headers or {})
        call = endpoint.uac.send_invite(from_uri, to_uri, dest, sdp, extra_headers=extra, auth=auth)
        outbound = OutboundInvite(endpoint, call)
        self._outbound[call.call_id] = outbound
        call.on_ringing = lambda _c: outbound.ringing.set()
        call.on_answer = lambda _c: outbound._finish(200, "OK")
        return outbound

    def cancel(self, outbound: OutboundInvite) -> None:
        """CANCEL a ringing INVITE (only once a provisional arrived, RFC 3261 §9.1)."""
        outbound.cancelled = True
        if outbound.call.dialog.state == DialogState.EARLY:
            outbound.endpoint.uac.send_cancel(outbound.call)

    # ---------------------------------------------------------------- in-dialog requests

    async def request(
        self,
        handle: DialogHandle,
        method: str,
        *,
        body: str = "",
        content_type: str = "",
        headers: dict[str, str] | None = None,
        timeout: float = TIMER_B,
    ) -> SipResponse | None:
        """Send an in-dialog request and wait for its final response (``None`` on timeout)."""
        local = self.advertised_addr
        transport_name = "TCP" if handle.endpoint.reliable else "UDP"
        request = handle.dialog.create_request(
            method, via_host=local[0], via_port=local[1], via_transport=transport_name
        )
        request.headers.set_single("Contact", f"<sip:{format_addr(*local)}>")
        request.headers.set_single("User-Agent", USER_AGENT)
        if body:
            request.text = body
            request.headers.set_single("Content-Type", content_type)
        for name, value in (headers or {}).items():
            request.headers.set_single(name, value)
        if method == "INVITE":
            self._reinvite_handles[handle.dialog.call_id] = handle
        handle.endpoint.transport.send(request, handle.next_hop())
        future = self.transaction(request)
        try:
            response = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            response = None
        if method == "INVITE":
            self._reinvite_handles.pop(handle.dialog.call_id, None)
            aiosipua_acks = handle.endpoint.uac.get_call(handle.dialog.call_id) is not None
            if response is not None and 200 <= response.status_code < 300 and not aiosipua_acks:
                self.send_ack(handle, response)
        return response

    def send_ack(self, handle: DialogHandle, response: SipResponse) -> None:
        """ACK a 2xx to an INVITE in *handle*'s dialog (a new transaction, same CSeq number)."""
        dialog = handle.dialog
        local = self.advertised_addr
        cseq = response.cseq
        ack = SipRequest(method="ACK", uri=dialog.remote_target or dialog.remote_uri)
        ack.headers.append(
            "Via",
            stringify_via(
                Via(
                    transport="TCP" if handle.endpoint.reliable else "UDP",
                    host=local[0],
                    port=local[1],
                    params={"branch": generate_branch(), "rport": None},
                )
            ),
        )
        ack.headers.set_single("From", f"<{dialog.local_uri}>;tag={dialog.local_tag}")
        to_val = f"<{dialog.remote_uri}>" + (
            f";tag={dialog.remote_tag}" if dialog.remote_tag else ""
        )
        ack.headers.set_single("To", to_val)
        ack.headers.set_single("Call-ID", dialog.call_id)
        ack.headers.set_single(
            "CSeq", stringify_cseq(CSeq(seq=cseq.seq if cseq else 1, method="ACK"))
        )
        ack.headers.set_single("Max-Forwards", "70")
        for route in dialog.route_set:
            ack.headers.append("Route", route)
        handle.endpoint.transport.raw_send(ack, handle.next_hop())

    async def bye(self, handle: DialogHandle) -> SipResponse | None:
        """Hang up a confirmed dialog and drop it from aiosipua's tracking."""
        call_id = handle.dialog.call_id
        response: SipResponse | None = None
        confirmed = handle.dialog.state == DialogState.CONFIRMED
        handle.dialog.terminate()
        self.release(handle)
        if confirmed:
            response = await self.request(handle, "BYE", timeout=8.0)
        logger.debug("BYE for %s answered %s", call_id, response.status_code if response else None)
        return response

    def release(self, handle: DialogHandle) -> None:
        """Forget a dialog in aiosipua (stop 2xx retransmission and session timers)."""
        call_id = handle.dialog.call_id
        endpoint = handle.endpoint
        incoming = endpoint.uas.get_call(call_id)
        if incoming is not None:
            incoming._stop_retransmissions()
            endpoint.uas._remove_invite_transaction(incoming.invite)
            endpoint.uas._calls.pop(call_id, None)
        outgoing = endpoint.uac.get_call(call_id)
        if outgoing is not None:
            outgoing._cancel_session_timer()
            endpoint.uac.remove_call(call_id)
        self._outbound.pop(call_id, None)

    def refer(self, handle: DialogHandle, target: str) -> asyncio.Task[SipResponse | None]:
        """Ask the peer to call *target* (blind transfer, RFC 3515)."""
        refer_to = target if target.startswith("<") else f"<{target}>"
        local = self.advertised_addr
        return asyncio.get_running_loop().create_task(
            self.request(
                handle,
                "REFER",
                headers={"Refer-To": refer_to, "Referred-By": f"<sip:{format_addr(*local)}>"},
            )
        )

    def serialize(self, sdp: SdpMessage) -> str:
        return serialize_sdp(sdp)


class _Reject(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def _parse_via_safe(raw: str) -> Via | None:
    from aiosipua import parse_via

    try:
        return parse_via(raw)
    except Exception:
        return None


def _response_dest(response: SipResponse) -> tuple[str, int]:
    from aiosipua.transport import _response_destination

    dest = _response_destination(response)
    return dest if dest is not None else ("127.0.0.1", 5060)
