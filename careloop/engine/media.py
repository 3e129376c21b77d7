"""Media plane: RTP channels (aiortp), one shared 20 ms clock, players, bridges and mixing.

One clock task drives every channel instead of a clock per call: at each tick every channel
takes one inbound frame, bridges compute what each member hears, every channel sends one
outbound frame (prompt, bridge audio, or nothing during silence), and recorders append one
frame. Recording durations are therefore exactly ticks x 20 ms, whatever the network did.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from aiortp import RTPSession, get_codec
from aiortp.dtmf import DtmfEvent, DtmfReceiver
from aiortp.packet import RtpPacket

from careloop.engine.prompts import FRAME_BYTES, SILENCE_FRAME, Prompt
from careloop.engine.sdp import DEFAULT_DTMF_PT, MediaParams

logger = logging.getLogger(__name__)

TICK = 0.020
MAX_RX_FRAMES = 6
TARGET_RX_FRAMES = 3
# Beyond this many late ticks the clock skips ahead instead of bursting packets
MAX_CATCH_UP = 5


def mix(frames: list[bytes]) -> bytes:
    """Sum 16-bit PCM frames with clipping (one frame is returned as is)."""
    if not frames:
        return SILENCE_FRAME
    if len(frames) == 1:
        return frames[0]
    acc = np.frombuffer(frames[0], dtype="<i2").astype(np.int32)
    for frame in frames[1:]:
        acc += np.frombuffer(frame, dtype="<i2")
    np.clip(acc, -32768, 32767, out=acc)
    return acc.astype("<i2").tobytes()


class DtmfDetector(DtmfReceiver):
    """RFC 4733 receiver that also catches a repeated key sent with a reused timestamp.

    aiortp's receiver keys events on the RTP timestamp only; replayed captures (SIPp pcaps)
    reuse one timestamp per digit, so a second press of the same key would be lost. A new
    start packet after an end packet, more than 50 ms later, is a new press.
    """

    def __init__(self, on_digit: Callable[[str, int], None]) -> None:
        super().__init__(on_digit)
        self._on_digit = on_digit
        self._key: tuple[int, int] | None = None
        self._ended = False
        self._ended_at = 0.0

    def handle_packet(self, packet: RtpPacket) -> None:
        try:
            event = DtmfEvent.parse(packet.payload)
        except ValueError:
            return
        key = (packet.ssrc, packet.timestamp)
        now = time.monotonic()
        if key != self._key or (self._ended and not event.end and now - self._ended_at > 0.05):
            self._key = key
            self._ended = False
        if event.end and not self._ended:
            self._ended = True
            self._ended_at = now
            if event.digit != "?":
                self._on_digit(event.digit, event.duration)


class Player:
    """Plays a sequence of prompts (optionally looping); ``done`` resolves with the end reason."""

    def __init__(self, prompts: list[Prompt], *, loop: bool = False, player_id: str = "") -> None:
        self.prompts = [p for p in prompts if p.frames]
        self.loop = loop
        self.id = player_id
        self._index = 0
        self._frame = 0
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if not self.prompts:
            self.done.set_result("completed")

    @property
    def finished(self) -> bool:
        return self.done.done()

    def stop(self, reason: str = "stopped") -> None:
        if not self.done.done():
            self.done.set_result(reason)

    def next_frame(self, payload_type: int) -> tuple[bytes, bytes] | None:
        if self.done.done():
            return None
        prompt = self.prompts[self._index]
        pcm = prompt.frames[self._frame]
        payload = prompt.encoded(payload_type)[self._frame]
        self._frame += 1
        if self._frame >= len(prompt.frames):
            self._frame = 0
            self._index += 1
            if self._index >= len(self.prompts):
                if self.loop:
                    self._index = 0
                else:
                    self.done.set_result("completed")
        return pcm, payload


class Channel:
    """The RTP stream of one leg: inbound frames, outbound players/bridge audio, DTMF."""

    def __init__(self, media: MediaEngine, session: RTPSession, local_port: int) -> None:
        self.media = media
        self.session = session
        self.local_port = local_port
        self.params: MediaParams | None = None
        self.payload_type = 8
        self.codec = get_codec(8)
        self.rx: collections.deque[bytes] = collections.deque()
        self._partial = bytearray()
        self.in_frame: bytes | None = None
        self.out_pcm: bytes | None = None
        self.bridge_out: bytes | None = None
        self.players: list[Player] = []
        self.sending = False
        self.remote_hold = False
        self.last_rx = time.monotonic()
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_dropped = 0
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_media_timeout: Callable[[], None] | None = None
        self.rtp_timeout = 0.0
        self._talking = False
        self.closed = False
        session.on_audio = self._on_audio
        # Replace aiortp's receiver so repeated keys with reused timestamps are not lost
        session._dtmf_receiver = DtmfDetector(self._on_rfc4733)

    def configure(self, params: MediaParams) -> None:
        """Apply the negotiated codec and the peer's address/direction."""
        self.params = params
        if params.payload_type != self.payload_type:
            self.payload_type = params.payload_type
            self.codec = get_codec(params.payload_type)
            self.session._payload_type = params.payload_type
            self.session._codec = self.codec
            sender = self.session._sender
            if sender is not None:
                sender._payload_type = params.payload_type
        if params.dtmf_payload_type is not None:
            self.session._dtmf_payload_type = params.dtmf_payload_type
            if self.session._dtmf_sender is not None:
                self.session._dtmf_sender._dtmf_payload_type = params.dtmf_payload_type
        self.session.update_remote(params.remote_addr)
        self.remote_hold = params.on_hold
        self.sending = not params.on_hold
        self.last_rx = time.monotonic()

    def _on_audio(self, pcm: bytes, _timestamp: int) -> None:
        self.last_rx = time.monotonic()
        if len(pcm) == FRAME_BYTES and not self._partial:
            self.rx.append(pcm)
        else:
            self._partial.extend(pcm)
            while len(self._partial) >= FRAME_BYTES:
                self.rx.append(bytes(self._partial[:FRAME_BYTES]))
                del self._partial[:FRAME_BYTES]
        if len(self.rx) > MAX_RX_FRAMES:
            # Jitter built up more latency than we want: drop the oldest audio
            while len(self.rx) > TARGET_RX_FRAMES:
                self.rx.popleft()
                self.rx_dropped += 1

    def _on_rfc4733(self, digit: str, _duration: int) -> None:
        self.last_rx = time.monotonic()
        if self.on_dtmf is not None:
            self.on_dtmf(digit)

    # ---- players

    def play(self, player: Player) -> Player:
        """Start *player* on top of whatever was playing (it resumes when this one ends)."""
        self.players.append(player)
        return player

    def stop_players(self, reason: str = "stopped") -> None:
        for player in self.players:
            player.stop(reason)
        self.players.clear()

    # ---- clock phases

    def pull(self) -> None:
        self.bridge_out = None
        if self.rx:
            self.in_frame = self.rx.popleft()
            self.rx_frames += 1
        else:
            self.in_frame = None

    def emit(self) -> None:
        pcm: bytes | None = None
        payload: bytes | None = None
        while self.players:
            top = self.players[-1]
            frame = top.next_frame(self.payload_type)
            if frame is not None:
                pcm, payload = frame
                break
            self.players.pop()
        if pcm is None and self.bridge_out is not None:
            pcm = self.bridge_out
            payload = self.codec.encode(pcm)
        self.out_pcm = pcm
        sender = self.session._sender
        if sender is None:
            return
        if payload is None or not self.sending:
            # Silence suppression: no packet, but the RTP clock keeps running (RFC 3550)
            sender.advance_timestamp()
            self._talking = False
            return
        sender.send_frame_auto(
            payload, marker=0 if self._talking else 1, addr=self.session._remote_addr
        )
        self._talking = True
        self.tx_frames += 1

    def send_dtmf(self, digit: str, duration_ms: int = 120) -> None:
        """Send a key as RFC 4733 telephone-events (when the peer negotiated them)."""
        if self.params is None or self.params.dtmf_payload_type is None:
            raise ValueError("peer did not negotiate telephone-event")
        sender = self.session._sender
        timestamp = sender.current_timestamp if sender is not None else 0
        self.session.send_dtmf(digit, duration_ms, timestamp=timestamp)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stop_players("hangup")
        self.media._channels.discard(self)
        try:
            await self.session.close()
        except OSError:
            logger.debug("closing RTP session on port %s failed", self.local_port, exc_info=True)
        self.media._release_port(self.local_port)

    def stats(self) -> dict[str, Any]:
        return {
            "local_port": self.local_port,
            "codec": self.params.codec_name if self.params else None,
            "rx_frames": self.rx_frames,
            "tx_frames": self.tx_frames,
            "rx_dropped": self.rx_dropped,
        }


@dataclass
class BridgeMember:
    """A channel in a bridge. ``role``: ``party`` (talks and hears), ``listen`` (hears only),
    ``whisper`` (hears everyone, heard only by ``whisper_to``)."""

    key: str
    channel: Channel
    role: str = "party"
    whisper_to: str | None = None
    muted: bool = False


@dataclass
class Bridge:
    """Mixes the audio of its members each tick; optionally feeds a recorder."""

    id: str
    members: dict[str, BridgeMember] = field(default_factory=dict)

    def add(self, member: BridgeMember) -> None:
        self.members[member.key] = member

    def remove(self, key: str) -> BridgeMember | None:
        return self.members.pop(key, None)

    def parties(self) -> list[BridgeMember]:
        return [m for m in self.members.values() if m.role == "party"]

    def mix(self) -> None:
        members = list(self.members.values())
        talkers = [
            m
            for m in members
            if m.role == "party" and not m.muted and m.channel.in_frame is not None
        ]
        if len(members) == 2 and members[0].role == members[1].role == "party":
            a, b = members
            a.channel.bridge_out = b.channel.in_frame if not b.muted else None
            b.channel.bridge_out = a.channel.in_frame if not a.muted else None
            return
        whispers = [m for m in members if m.role == "whisper" and m.channel.in_frame is not None]
        for member in members:
            heard = [t.channel.in_frame for t in talkers if t is not member]
            if member.role == "party":
                heard += [w.channel.in_frame for w in whispers if w.whisper_to == member.key]
            frames = [f for f in heard if f is not None]
            member.channel.bridge_out = mix(frames) if frames else None

    def conversation_frame(self) -> bytes:
        """What the parties said this tick, mixed (supervisors excluded): the call recording."""
        return mix(
            [
                m.channel.in_frame
                for m in self.parties()
                if m.channel.in_frame is not None and not m.muted
            ]
        )


class TickConsumer(Protocol):
    """Something run once per tick after media was sent (recorders)."""

    def capture(self) -> None: ...

    def pad(self, ticks: int) -> None: ...


class MediaEngine:
    """Owns RTP ports and the clock; see the module docstring for the tick phases."""

    def __init__(
        self, bind_host: str, port_range: tuple[int, int], *, latching: bool = False
    ) -> None:
        self.bind_host = bind_host
        low, high = port_range
        self._ports = list(range(low + (low % 2), high - 1, 2))
        self._next_port = 0
        self._used_ports: set[int] = set()
        self.latching = latching
        self._channels: set[Channel] = set()
        self.bridges: dict[str, Bridge] = {}
        self.consumers: set[TickConsumer] = set()
        self._task: asyncio.Task[None] | None = None
        self.stats: dict[str, float] = {
            "ticks": 0,
            "skipped_ticks": 0,
            "late_ticks": 0,
            "max_tick_ms": 0.0,
            "max_late_ms": 0.0,
            "gc_max_ms": 0.0,
        }
        self._gc_started = 0.0

    @property
    def channels(self) -> set[Channel]:
        return self._channels

    def _gc_watch(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            elapsed = (time.perf_counter() - self._gc_started) * 1000
            if elapsed > self.stats["gc_max_ms"]:
                self.stats["gc_max_ms"] = elapsed

    async def start(self) -> None:
        gc.callbacks.append(self._gc_watch)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="media-clock")

    async def stop(self) -> None:
        if self._gc_watch in gc.callbacks:
            gc.callbacks.remove(self._gc_watch)
        for channel in list(self._channels):
            await channel.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    # ---- ports and channels

    def _port_free(self, port: int) -> bool:
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        socks = []
        try:
            for p in (port, port + 1):
                s = socket.socket(family, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((self.bind_host, p))
            return True
        except OSError:
            return False
        finally:
            for s in socks:
                s.close()

    def _reserve_port(self) -> int:
        # Rotate through the range so a just-released port is not reused at once (late packets)
        for _ in range(len(self._ports)):
            port = self._ports[self._next_port]
            self._next_port = (self._next_port + 1) % len(self._ports)
            if port not in self._used_ports and self._port_free(port):
                self._used_ports.add(port)
                return port
        raise RuntimeError("no free RTP port pair in the configured range")

    def _release_port(self, port: int) -> None:
        self._used_ports.discard(port)

    async def open_channel(
        self, remote: tuple[str, int] | None = None, payload_type: int = 8
    ) -> Channel:
        """Bind a new RTP/RTCP port pair; media flows once :meth:`Channel.configure` is called."""
        for _attempt in range(5):
            port = self._reserve_port()
            try:
                session = await RTPSession.create(
                    local_addr=(self.bind_host, port),
                    remote_addr=remote or ("127.0.0.1", 9),
                    payload_type=payload_type,
                    dtmf_payload_type=DEFAULT_DTMF_PT,
                    jitter_capacity=16,
                    jitter_prefetch=0,
                    skip_audio_gaps=True,
                    symmetric_rtp=self.latching,
                    rtcp_interval=5.0,
                )
            except OSError:
                self._release_port(port)
                continue
            channel = Channel(self, session, port)
            self._channels.add(channel)
            return channel
        raise RuntimeError("could not bind an RTP port pair")

    # ---- clock

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TICK
        while True:
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lateness = loop.time() - deadline
            if lateness > 0.010:
                self.stats["late_ticks"] += 1
                self.stats["max_late_ms"] = max(self.stats["max_late_ms"], lateness * 1000)
            late = int(lateness / TICK)
            if late > MAX_CATCH_UP:
                # Overloaded: skip ahead, but keep recordings the right length
                self.stats["skipped_ticks"] += late
                deadline += late * TICK
                for consumer in list(self.consumers):
                    consumer.pad(late)
            deadline += TICK
            started = time.perf_counter()
            try:
                self.tick()
            except Exception:
                logger.exception("media tick failed")
            elapsed = (time.perf_counter() - started) * 1000
            self.stats["ticks"] += 1
            if elapsed > self.stats["max_tick_ms"]:
                self.stats["max_tick_ms"] = elapsed
            if int(self.stats["ticks"]) % 50 == 0:
                self._check_timeouts()

    def tick(self) -> None:
        channels = list(self._channels)
        for channel in channels:
            channel.pull()
        for bridge in list(self.bridges.values()):
            bridge.mix()
        for channel in channels:
            try:
                channel.emit()
            except OSError:
                logger.debug("RTP send failed on port %s", channel.local_port, exc_info=True)
        for consumer in list(self.consumers):
            consumer.capture()

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for channel in list(self._channels):
            if (
                channel.rtp_timeout > 0
                and not channel.remote_hold
                and channel.params is not None
                and now - channel.last_rx > channel.rtp_timeout
                and channel.on_media_timeout is not None
            ):
                callback = channel.on_media_timeout
                channel.on_media_timeout = None
                callback()
