"""SDP offer/answer for G.711 legs, on top of aiosipua's SDP model and negotiation.

aiosipua's ``build_sdp`` offers a single codec and ``negotiate_sdp`` answers telephone-event
with a fixed payload type; these helpers offer every configured codec and answer DTMF with the
payload type the peer offered, which is what peers then send us.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiosipua import MediaDescription, SdpMessage, SdpNegotiationError, negotiate_sdp
from aiosipua.sdp import Codec, ConnectionData, Origin, TimingField

CODEC_PAYLOAD_TYPES: dict[str, int] = {"PCMU": 0, "PCMA": 8}
PAYLOAD_TYPE_NAMES: dict[int, str] = {pt: name for name, pt in CODEC_PAYLOAD_TYPES.items()}
DEFAULT_DTMF_PT = 101
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


class MediaNegotiationError(Exception):
    """The peer's SDP has nothing we can use (no audio, no G.711, no address)."""


@dataclass(frozen=True)
class MediaParams:
    """What a completed offer/answer exchange decided for one leg."""

    payload_type: int
    dtmf_payload_type: int | None
    remote_addr: tuple[str, int]
    remote_direction: str

    @property
    def codec_name(self) -> str:
        return PAYLOAD_TYPE_NAMES.get(self.payload_type, str(self.payload_type))

    @property
    def on_hold(self) -> bool:
        """The peer asked not to receive media (hold, RFC 3264 §8.4)."""
        return self.remote_direction in {"sendonly", "inactive"} or self.remote_addr[0] in {
            "0.0.0.0",
            "::",
        }


class LocalSession:
    """Our side of a leg's SDP: fixed session id, version bumped for every new description."""

    def __init__(self, ip: str, port: int, codecs: tuple[str, ...]) -> None:
        self.ip = ip
        self.port = port
        self.codecs = codecs
        self.session_id = str(int(time.time() * 1000) % 10**12)
        self._version = int(self.session_id)

    def _next_origin(self) -> Origin:
        self._version += 1
        addr_type = "IP6" if ":" in self.ip else "IP4"
        return Origin(
            username="careloop",
            session_id=self.session_id,
            session_version=str(self._version),
            net_type="IN",
            addr_type=addr_type,
            address=self.ip,
        )

    def offer(self, *, direction: str = "sendrecv", dtmf_pt: int = DEFAULT_DTMF_PT) -> SdpMessage:
        """An offer listing every configured codec plus telephone-event."""
        pts = [CODEC_PAYLOAD_TYPES[c.upper()] for c in self.codecs]
        formats = [str(pt) for pt in pts] + [str(dtmf_pt)]
        attrs: dict[str, list[str]] = {
            "rtpmap": [f"{pt} {PAYLOAD_TYPE_NAMES[pt]}/8000" for pt in pts]
            + [f"{dtmf_pt} telephone-event/8000"],
            "fmtp": [f"{dtmf_pt} 0-16"],
            "ptime": ["20"],
            direction: [],
        }
        codecs = [
            Codec(payload_type=pt, encoding_name=PAYLOAD_TYPE_NAMES[pt], clock_rate=8000)
            for pt in pts
        ]
        codecs.append(
            Codec(
                payload_type=dtmf_pt, encoding_name="telephone-event", clock_rate=8000, fmtp="0-16"
            )
        )
        media = MediaDescription(
            media="audio",
            port=self.port,
            proto="RTP/AVP",
            formats=formats,
            attributes=attrs,
            codecs=codecs,
        )
        return self._envelope(media)

    def answer(self, offer: SdpMessage, *, hold: bool = False) -> tuple[SdpMessage, MediaParams]:
        """Answer *offer* (RFC 3264), choosing the first offered codec we support."""
        audio = offer.audio
        remote = offer.rtp_address
        if audio is None or remote is None:
            raise MediaNegotiationError("offer has no audio stream with an address")
        dtmf_pt = next(
            (c.payload_type for c in audio.codecs if c.encoding_name.lower() == "telephone-event"),
            None,
        )
        supported = [CODEC_PAYLOAD_TYPES[c.upper()] for c in self.codecs]
        try:
            answer, chosen = negotiate_sdp(
                offer=offer,
                local_ip=self.ip,
                rtp_port=self.port,
                supported_codecs=supported,
                dtmf_payload_type=dtmf_pt or 0,
                session_id=self.session_id,
            )
        except SdpNegotiationError as exc:
            raise MediaNegotiationError(str(exc)) from exc
        answer.origin = self._next_origin()
        answer_audio = answer.audio
        if hold and answer_audio is not None:
            # We are the side putting the call on hold while answering (rare: re-INVITE glare)
            for d in DIRECTIONS:
                answer_audio.attributes.pop(d, None)
            answer_audio.attributes["sendonly"] = []
        params = MediaParams(
            payload_type=chosen,
            dtmf_payload_type=dtmf_pt,
            remote_addr=remote,
            remote_direction=audio.direction,
        )
        return answer, params

    def _envelope(self, media: MediaDescription) -> SdpMessage:
        addr_type = "IP6" if ":" in self.ip else "IP4"
        return SdpMessage(
            version=0,
            origin=self._next_origin(),
            session_name="CareLoop",
            connection=ConnectionData(net_type="IN", addr_type=addr_type, address=self.ip),
            timing=TimingField(0, 0),
            media=[media],
        )


def params_from_answer(answer: SdpMessage, offered_codecs: tuple[str, ...]) -> MediaParams:
    """What the peer's answer to our offer selected."""
    audio = answer.audio
    remote = answer.rtp_address
    if audio is None or remote is None:
        raise MediaNegotiationError("answer has no audio stream with an address")
    allowed = {CODEC_PAYLOAD_TYPES[c.upper()] for c in offered_codecs}
    chosen: int | None = None
    for codec in audio.codecs:
        if codec.payload_type in allowed:
            chosen = codec.payload_type
            break
    if chosen is None:
        for fmt in audio.formats:
            if fmt.isdigit() and int(fmt) in allowed:
                chosen = int(fmt)
                break
    if chosen is None:
        raise MediaNegotiationError(f"answer selected no offered codec: {audio.formats}")
    dtmf_pt = next(
        (c.payload_type for c in audio.codecs if c.encoding_name.lower() == "telephone-event"),
        None,
    )
    return MediaParams(
        payload_type=chosen,
        dtmf_payload_type=dtmf_pt,
        remote_addr=remote,
        remote_direction=audio.direction,
    )
