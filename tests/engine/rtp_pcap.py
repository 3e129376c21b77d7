"""Write pcap files of RTP streams (G.711 audio and RFC 4733 DTMF) for SIPp to play.

SIPp's ``play_pcap_audio`` replays captured packets with their original timing, rewriting
only addresses and ports, so the capture must already carry consistent sequence numbers and
timestamps: one continuous stream per file, keys with their own event timestamps.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from aiortp import get_codec

DTMF_EVENTS = {
    **{str(i): i for i in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}


@dataclass(frozen=True)
class Tone:
    """*ms* milliseconds of a sine at *freq* Hz (amplitude 0..1)."""

    freq: float
    ms: int
    level: float = 0.3


@dataclass(frozen=True)
class Silence:
    ms: int


@dataclass(frozen=True)
class Key:
    """A key press: *ms* of telephone-event, then 80 ms of silence."""

    digit: str
    ms: int = 120


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _frame(payload: bytes, src_port: int = 6000, dst_port: int = 6002) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip_wo = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        17,
        0,
        bytes([127, 0, 0, 1]),
        bytes([127, 0, 0, 1]),
    )
    ip = ip_wo[:10] + struct.pack("!H", _ip_checksum(ip_wo)) + ip_wo[12:]
    return b"\x00" * 12 + b"\x08\x00" + ip + udp


def write_rtp_pcap(
    path: Path,
    parts: list[Tone | Silence | Key],
    *,
    payload_type: int = 8,
    dtmf_pt: int = 101,
    ssrc: int = 0x1234ABCD,
) -> float:
    """Write the stream to *path*; returns its duration in seconds."""
    codec = get_codec(payload_type)
    packets: list[tuple[float, bytes]] = []
    seq = 1000
    ts = 16000
    t = 0.0
    marker = 1

    def rtp(pt: int, mark: int, timestamp: int, payload: bytes) -> bytes:
        return (
            struct.pack(
                "!BBHII", 0x80, (mark << 7) | pt, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
            )
            + payload
        )

    def audio(samples: np.ndarray) -> None:
        nonlocal seq, ts, t, marker
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
        for i in range(0, len(pcm) - 159, 160):
            payload = codec.encode(pcm[i : i + 160].tobytes())
            packets.append((t, rtp(payload_type, marker, ts, payload)))
            marker = 0
            seq += 1
            ts += 160
            t += 0.02

    for part in parts:
        if isinstance(part, Tone):
            n = 8 * part.ms
            audio(part.level * np.sin(2 * np.pi * part.freq * np.arange(n) / 8000))
        elif isinstance(part, Silence):
            audio(np.zeros(8 * part.ms))
        else:
            event = DTMF_EVENTS[part.digit]
            steps = max(1, part.ms // 20)
            for step in range(1, steps + 1):
                end = step == steps
                payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, step * 160)
                repeats = 3 if end else 1
                for _ in range(repeats):
                    packets.append((t, rtp(dtmf_pt, 1 if step == 1 else 0, ts, payload)))
                    seq += 1
                t += 0.02
            ts += steps * 160
            marker = 1
            audio(np.zeros(8 * 80))
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for when, payload in packets:
            frame = _frame(payload)
            sec = int(when)
            usec = round((when - sec) * 1_000_000)
            fh.write(struct.pack("<IIII", 1_700_000_000 + sec, usec, len(frame), len(frame)))
            fh.write(frame)
    return t
