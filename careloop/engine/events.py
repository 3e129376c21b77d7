"""Typed events the engine emits, and the in-process bus that fans them out.

Every event is a frozen dataclass with a dotted ``type``. On the wire (websocket, webhook) an
event is the envelope ``{"v": 1, "seq": N, "ts": ISO-8601 UTC, "type": ..., "call_id": ...,
"data": {...fields}}``. ``seq`` increases by one per event for the life of the process, so a
client that reconnects with ``since=N`` gets what it missed from the bus's history.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

logger = logging.getLogger(__name__)

EVENT_FORMAT_VERSION = 1


def utc_now_iso() -> str:
    """The current time as an ISO-8601 UTC string with millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """Base class of all engine events; subclasses set ``type`` and add fields."""

    type: ClassVar[str] = "event"
    call_id: str | None

    def data(self) -> dict[str, Any]:
        """The event's fields other than ``call_id``, JSON-ready."""
        values = dataclasses.asdict(self)
        values.pop("call_id", None)
        return values


@dataclass(frozen=True)
class CallCreated(Event):
    """A leg exists: an inbound INVITE arrived or an outbound INVITE is about to be sent."""

    type: ClassVar[str] = "call.created"
    direction: str
    caller: str
    callee: str
    sip_call_id: str
    headers: dict[str, str] = field(default_factory=dict)
    app_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallRinging(Event):
    """The far end is alerting (outbound) or we sent 180 Ringing (inbound)."""

    type: ClassVar[str] = "call.ringing"


@dataclass(frozen=True)
class CallAnswered(Event):
    """The leg is connected; media flows with the negotiated codec."""

    type: ClassVar[str] = "call.answered"
    codec: str


@dataclass(frozen=True)
class CallDtmf(Event):
    """The caller pressed a key (``method`` is ``rfc4733`` or ``info``)."""

    type: ClassVar[str] = "call.dtmf"
    digit: str
    method: str


@dataclass(frozen=True)
class CallHold(Event):
    """The leg was put on hold (``by`` is ``local`` or ``remote``) or resumed."""

    type: ClassVar[str] = "call.hold"
    held: bool
    by: str


@dataclass(frozen=True)
class PlaybackFinished(Event):
    """A play command ended: ``completed``, ``interrupted`` (barge-in), ``stopped`` or ``hangup``."""

    type: ClassVar[str] = "playback.finished"
    playback_id: str
    reason: str


@dataclass(frozen=True)
class GatherFinished(Event):
    """Digit collection ended; ``reason`` is ``terminator``, ``max_digits``, ``timeout`` or ``hangup``."""

    type: ClassVar[str] = "gather.finished"
    gather_id: str
    digits: str
    reason: str


@dataclass(frozen=True)
class RecordingStarted(Event):
    """Audio capture started for a leg (``mode`` ``leg`` / ``both``) or a bridge (``mixed``)."""

    type: ClassVar[str] = "recording.started"
    recording_id: str
    mode: str
    bridge_id: str | None = None


@dataclass(frozen=True)
class RecordingFinished(Event):
    """The Ogg/Opus file is complete on disk; ``partial`` when the engine died mid-recording."""

    type: ClassVar[str] = "recording.finished"
    recording_id: str
    path: str
    duration: float
    mode: str
    partial: bool = False
    bridge_id: str | None = None
    reason: str = "stopped"


@dataclass(frozen=True)
class BridgeChanged(Event):
    """A bridge was created, a member joined or left, or the bridge was destroyed."""

    type: ClassVar[str] = "bridge.changed"
    bridge_id: str
    action: str
    members: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallTransfer(Event):
    """Transfer progress: ``status`` is the SIP status reported (e.g. 100, 200, 486)."""

    type: ClassVar[str] = "call.transfer"
    target: str
    mode: str
    status: int
    reason: str = ""


@dataclass(frozen=True)
class FlowStep(Event):
    """The IVR entered a node (the path taken is the sequence of these)."""

    type: ClassVar[str] = "flow.step"
    flow_id: str
    flow_version: int
    node: str
    node_type: str


@dataclass(frozen=True)
class FlowFinished(Event):
    """The IVR stopped: ``outcome`` is ``hangup``, ``routed``, ``transferred``, ``caller_hangup`` or ``error``."""

    type: ClassVar[str] = "flow.finished"
    flow_id: str
    flow_version: int
    outcome: str
    node: str
    variables: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class CallRouted(Event):
    """A ``route`` node handed the call to the application (queue/agent decided there)."""

    type: ClassVar[str] = "call.routed"
    target: dict[str, Any]
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallEnded(Event):
    """The leg is gone. ``cause`` is one of the causes in docs/engine.md; ``sip_code`` when known."""

    type: ClassVar[str] = "call.ended"
    cause: str
    sip_code: int | None
    hangup_by: str


@dataclass(frozen=True)
class CdrWritten(Event):
    """The final call detail record of a leg (also appended to ``cdr.jsonl``)."""

    type: ClassVar[str] = "cdr"
    record: dict[str, Any]


@dataclass(frozen=True)
class RegistrationChanged(Event):
    """Registration state at the registrar: ``registered``, ``failed``, ``expired``, ``unregistered``."""

    type: ClassVar[str] = "registration.changed"
    aor: str
    state: str
    status: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class DialerAttempt(Event):
    """The dialler finished one attempt on one target of a campaign."""

    type: ClassVar[str] = "dialer.attempt"
    campaign_id: str
    target_id: str
    attempt: int
    result: str
    sip_code: int | None
    final: bool


@dataclass(frozen=True)
class CampaignChanged(Event):
    """A campaign started, paused, resumed, was cancelled or finished (with counts)."""

    type: ClassVar[str] = "campaign.changed"
    campaign_id: str
    state: str
    counts: dict[str, int] = field(default_factory=dict)


def envelope(event: Event, seq: int, ts: str | None = None) -> dict[str, Any]:
    """The wire form of *event*."""
    return {
        "v": EVENT_FORMAT_VERSION,
        "seq": seq,
        "ts": ts or utc_now_iso(),
        "type": event.type,
        "call_id": event.call_id,
        "data": event.data(),
    }


class Subscription:
    """One consumer's view of the bus: an async iterator of envelopes.

    The queue is bounded so a stalled consumer cannot grow the engine's memory; when it
    overflows the subscription is closed with ``overflowed`` set, and the consumer (e.g. a
    websocket client) is expected to reconnect with ``since=<last seq>``.
    """

    def __init__(self, bus: EventBus, maxsize: int, types: frozenset[str] | None) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize)
        self._types = types
        self.overflowed = False
        self.closed = False

    def wants(self, event_type: str) -> bool:
        return (
            self._types is None
            or event_type in self._types
            or any(t.endswith(".*") and event_type.startswith(t[:-1]) for t in self._types)
        )

    def _offer(self, item: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            logger.error("event subscriber overflowed at seq %s; closing it", item["seq"])
            self.overflowed = True
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bus._unsubscribe(self)
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            # The consumer will see ``closed`` after draining the queue
            pass

    async def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Next envelope, or ``None`` once closed (or on timeout)."""
        if self.closed and self._queue.empty():
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            item = await self.get()
            if item is None:
                return
            yield item


class EventBus:
    """Fan-out of engine events to subscribers, with a bounded replay history."""

    def __init__(self, history: int = 5000) -> None:
        self._seq = 0
        self._history: collections.deque[dict[str, Any]] = collections.deque(maxlen=history)
        self._subscribers: list[Subscription] = []

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, event: Event) -> dict[str, Any]:
        """Stamp *event* with the next sequence number and deliver it to every subscriber."""
        self._seq += 1
        item = envelope(event, self._seq)
        self._history.append(item)
        for sub in list(self._subscribers):
            if sub.wants(event.type):
                sub._offer(item)
        return item

    def subscribe(
        self,
        *,
        since: int | None = None,
        maxsize: int = 20000,
        types: frozenset[str] | None = None,
    ) -> Subscription:
        """A new subscription; with *since*, history after that sequence number is replayed first."""
        sub = Subscription(self, maxsize, types)
        if since is not None:
            for item in self._history:
                if item["seq"] > since and sub.wants(item["type"]):
                    sub._offer(item)
        self._subscribers.append(sub)
        return sub

    def history_gap(self, since: int) -> bool:
        """Whether events after *since* have already fallen out of the replay history."""
        if not self._history:
            return since < self._seq
        return since + 1 < int(self._history[0]["seq"])

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
