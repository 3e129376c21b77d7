"""A call leg: explicit state machine, SIP dialog, RTP channel and the media operations on it.

States (``LegState``)::

    inbound:  offered --ring--> ringing --answer--> answered --> ended
    outbound: dialing --18x--> ringing --2xx--> answered --> ended
              (any state) --------------------------------> ended

Hold is a flag on an answered leg, not a state. Every operation checks the state and raises
:class:`CallStateError` (the API answers 409) instead of doing something half-way. When the
leg ends, every running operation raises :class:`CallEnded` and all resources are released:
players stopped, recorders finalised, RTP ports closed, the CDR written.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiosipua import IncomingCall, notify_refer

from careloop.engine import events as ev
from careloop.engine.cdr import _now_iso, seconds_between
from careloop.engine.media import Channel, Player, mix
from careloop.engine.prompts import Prompt
from careloop.engine.recorder import Recorder, RecordingResult
from careloop.engine.sdp import LocalSession, MediaNegotiationError, params_from_answer
from careloop.engine.sip import DialogHandle, OutboundInvite

if TYPE_CHECKING:
    from careloop.engine.engine import Engine

logger = logging.getLogger(__name__)


class LegState(enum.Enum):
    OFFERED = "offered"
    DIALING = "dialing"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


TRANSITIONS: dict[LegState, set[LegState]] = {
    LegState.OFFERED: {LegState.RINGING, LegState.ANSWERED, LegState.ENDED},
    LegState.DIALING: {LegState.RINGING, LegState.ANSWERED, LegState.ENDED},
    LegState.RINGING: {LegState.ANSWERED, LegState.ENDED},
    LegState.ANSWERED: {LegState.ENDED},
    LegState.ENDED: set(),
}

# Outcome of an outbound attempt, by SIP final status (docs/engine.md, "Dial results")
BUSY_CODES = {486, 600}
NO_ANSWER_CODES = {408, 480, 487}
REJECTED_CODES = {401, 403, 407, 415, 420, 488, 603, 606}
UNREACHABLE_CODES = {404, 410, 484, 485, 502, 504, 604}


def classify_result(
    code: int | None, *, ring_timeout: bool = False, no_response: bool = False
) -> str:
    """Dial result for a final status: answered, busy, no_answer, rejected, unreachable, failed."""
    if ring_timeout:
        return "no_answer"
    if no_response or code is None:
        return "unreachable"
    if 200 <= code < 300:
        return "answered"
    if code in BUSY_CODES:
        return "busy"
    if code in NO_ANSWER_CODES:
        return "no_answer"
    if code in REJECTED_CODES:
        return "rejected"
    if code in UNREACHABLE_CODES:
        return "unreachable"
    return "failed"


class CallStateError(Exception):
    """The operation is not possible in the leg's current state."""


class CallEnded(Exception):
    """The leg ended while an operation was waiting on it."""


@dataclass
class GatherResult:
    digits: str
    reason: str


@dataclass
class GatherOptions:
    """How to collect digits (all times in seconds)."""

    max_digits: int = 1
    min_digits: int = 1
    terminators: str = "#"
    first_digit_timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    barge_in: bool = True
    flush: bool = False


@dataclass
class Leg:
    """One SIP call leg handled by the engine (see module docstring)."""

    engine: Engine
    direction: str
    caller: str
    callee: str
    sip_call_id: str
    app_data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    state: LegState = LegState.OFFERED
    created_at: str = field(default_factory=_now_iso)
    answered_at: str | None = None
    ended_at: str | None = None
    cause: str | None = None
    sip_code: int | None = None
    hangup_by: str | None = None
    dial_result: str | None = None
    handle: DialogHandle | None = None
    incoming: IncomingCall | None = None
    outbound: OutboundInvite | None = None
    channel: Channel | None = None
    local_sdp: LocalSession | None = None
    held: bool = False
    bridge_id: str | None = None
    # Every bridge the leg has been in, for the CDR (bridge_id is cleared when it leaves)
    bridges: list[str] = field(default_factory=list)
    flow_info: dict[str, Any] = field(default_factory=dict)
    recorders: dict[str, Recorder] = field(default_factory=dict)
    recordings: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ended = asyncio.Event()
        self.answered = asyncio.Event()
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        self._digit_event = asyncio.Event()
        self._transfer_status: asyncio.Queue[int] = asyncio.Queue()
        self._moh: Player | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Set while a ``route`` node waits for the application to take the call
        self.app_takeover: asyncio.Event | None = None
        # Not cancelled when the leg ends: they see CallEnded and finish their own bookkeeping
        self.dial_task: asyncio.Task[Any] | None = None
        self.flow_task: asyncio.Task[Any] | None = None

    # ------------------------------------------------------------ state

    @property
    def is_active(self) -> bool:
        return self.state is not LegState.ENDED

    def _set_state(self, new: LegState) -> None:
        if new not in TRANSITIONS[self.state]:
            raise CallStateError(f"leg {self.id} cannot go from {self.state.value} to {new.value}")
        self.state = new

    def _require(self, *states: LegState) -> None:
        if self.state is LegState.ENDED:
            raise CallEnded(self.id)
        if self.state not in states:
            wanted = ", ".join(s.value for s in states)
            raise CallStateError(f"leg {self.id} is {self.state.value}; this needs {wanted}")

    def _require_media(self) -> Channel:
        self._require(LegState.ANSWERED)
        if self.channel is None:
            raise CallStateError(f"leg {self.id} has no media")
        return self.channel

    def spawn(self, coro: Awaitable[Any], name: str = "") -> asyncio.Task[Any]:
        """A task bound to the leg: cancelled when the leg ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def describe(self) -> dict[str, Any]:
        """The leg as the API shows it."""
        return {
            "call_id": self.id,
            "sip_call_id": self.sip_call_id,
            "direction": self.direction,
            "state": self.state.value,
            "caller": self.caller,
            "callee": self.callee,
            "created_at": self.created_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "held": self.held,
            "bridge_id": self.bridge_id,
            "cause": self.cause,
            "sip_code": self.sip_code,
            "dial_result": self.dial_result,
            "codec": self.channel.params.codec_name
            if self.channel and self.channel.params
            else None,
            "recordings": [r for r in self.recordings]
            + [{"recording_id": k, "active": True} for k in self.recorders],
            "app_data": self.app_data,
        }

    def cdr_record(self) -> dict[str, Any]:
        """The leg's CDR (final once the leg ended)."""
        return {
            "v": 1,
            "leg_id": self.id,
            "sip_call_id": self.sip_call_id,
            "direction": self.direction,
            "from": self.caller,
            "to": self.callee,
            "start": self.created_at,
            "answer": self.answered_at,
            "end": self.ended_at,
            "duration": seconds_between(self.created_at, self.ended_at),
            "billsec": seconds_between(self.answered_at, self.ended_at)
            if self.answered_at
            else 0.0,
            "cause": self.cause,
            "sip_code": self.sip_code,
            "hangup_by": self.hangup_by,
            "dial_result": self.dial_result,
            "codec": self.channel.params.codec_name
            if self.channel and self.channel.params
            else None,
            "bridge_id": self.bridge_id or (self.bridges[-1] if self.bridges else None),
            "bridges": list(self.bridges),
            "recordings": list(self.recordings),
            "flow": dict(self.flow_info),
            "app_data": self.app_data,
            "interrupted": False,
        }

    # ------------------------------------------------------------ inbound signalling

    def ring(self) -> None:
        """Send 180 Ringing to an offered inbound call."""
        self._require(LegState.OFFERED)
        assert self.incoming is not None
        self.incoming.ringing()
        self._set_state(LegState.RINGING)
        self.engine.publish(ev.CallRinging(self.id))

    async def answer(self) -> None:
        """Answer an inbound call: negotiate the offer, start RTP, send 200 OK."""
        self._require(LegState.OFFERED, LegState.RINGING)
        assert self.incoming is not None
        offer = self.incoming.sdp_offer
        if offer is None:
            # Delayed offer (INVITE without SDP) is not supported: say so instead of guessing
            await self.reject(488, cause="failed")
            raise CallStateError("INVITE without SDP offer (delayed offer) is not supported")
        channel = await self.engine.media.open_channel(payload_type=8)
        if self.state is LegState.ENDED:
            await channel.close()
            raise CallEnded(self.id)
        self._attach_channel(channel, self.incoming.source_addr[0])
        assert self.local_sdp is not None
        try:
            answer, params = self.local_sdp.answer(offer)
        except MediaNegotiationError:
            await self.reject(488, cause="failed")
            raise
        channel.configure(params)
        self.incoming.accept(answer)
        self._mark_answered()

    async def reject(self, code: int = 486, *, cause: str | None = None) -> None:
        """Refuse an inbound call that was not answered yet."""
        self._require(LegState.OFFERED, LegState.RINGING)
        assert self.incoming is not None
        self.incoming.reject(code)
        await self.finish(cause or classify_result(code), code, "local")

    def _attach_channel(self, channel: Channel, peer_ip: str) -> None:
        self.channel = channel
        channel.on_dtmf = lambda digit: self.on_dtmf(digit, "rfc4733")

        def media_timeout() -> None:
            self.spawn(self.hangup("media_timeout"))

        channel.on_media_timeout = media_timeout
        channel.rtp_timeout = self.engine.config_rtp_timeout
        self.local_sdp = LocalSession(
            self.engine.config.advertised_ip(peer_ip), channel.local_port, self.engine.config.codecs
        )

    def _mark_answered(self) -> None:
        self._set_state(LegState.ANSWERED)
        self.answered_at = _now_iso()
        self.dial_result = "answered"
        self.answered.set()
        codec = self.channel.params.codec_name if self.channel and self.channel.params else ""
        self.engine.cdr.leg_updated(self.id, answer=self.answered_at, codec=codec)
        self.engine.publish(ev.CallAnswered(self.id, codec=codec))
        if self.engine.config.record_calls:
            # Both directions of this leg: in a bridge that is the whole conversation
            self.start_recording(mode="both")

    # ------------------------------------------------------------ outbound signalling

    async def dial(
        self,
        *,
        dest: tuple[str, int],
        ring_timeout: float,
        auth: Any = None,
        extra_headers: dict[str, str] | None = None,
    ) -> str:
        """Send the INVITE and wait for the outcome; returns the dial result."""
        self._require(LegState.DIALING)
        channel = await self.engine.media.open_channel(payload_type=8)
        self._attach_channel(channel, dest[0])
        assert self.local_sdp is not None
        offer = self.local_sdp.offer()
        try:
            outbound = await self.engine.sip.invite(
                from_uri=self.caller,
                to_uri=self.callee,
                dest=dest,
                sdp=offer,
                headers=extra_headers,
                auth=auth,
            )
        except OSError as exc:
            logger.warning("could not send INVITE for leg %s: %s", self.id, exc)
            await self.finish("unreachable", None, "local", dial_result="unreachable")
            return "unreachable"
        self.outbound = outbound
        self.sip_call_id = outbound.call_id
        self.handle = outbound.handle()
        self.engine.index_sip_call(self)
        self.engine.cdr.leg_updated(self.id, sip_call_id=self.sip_call_id)
        ringing_task = self.spawn(self._watch_ringing(outbound))
        ring_timed_out = False
        try:
            code, _reason = await asyncio.wait_for(asyncio.shield(outbound.final), ring_timeout)
        except TimeoutError:
            ring_timed_out = True
            self.engine.sip.cancel(outbound)
            try:
                code, _reason = await asyncio.wait_for(asyncio.shield(outbound.final), 5.0)
            except TimeoutError:
                code = 487
        finally:
            ringing_task.cancel()
        if self.state is LegState.ENDED:
            return self.dial_result or "failed"
        if 200 <= code < 300 and not ring_timed_out:
            answer = outbound.call.sdp_answer
            try:
                if answer is None:
                    raise MediaNegotiationError("2xx without SDP answer")
                params = params_from_answer(answer, self.engine.config.codecs)
            except MediaNegotiationError as exc:
                logger.warning("leg %s answered with unusable SDP: %s", self.id, exc)
                await self.hangup("failed", sip_code=488)
                return "failed"
            channel.configure(params)
            self._mark_answered()
            return "answered"
        result = classify_result(code, ring_timeout=ring_timed_out, no_response=outbound.timed_out)
        by = "local" if ring_timed_out or outbound.timed_out else "remote"
        sip_code = None if outbound.timed_out else code
        await self.finish(result, sip_code, by, dial_result=result)
        return result

    async def _watch_ringing(self, outbound: OutboundInvite) -> None:
        await outbound.ringing.wait()
        if self.state is LegState.DIALING:
            self._set_state(LegState.RINGING)
            self.engine.publish(ev.CallRinging(self.id))

    # ------------------------------------------------------------ SIP events from the peer

    def on_dtmf(self, digit: str, method: str) -> None:
        if self.state is LegState.ENDED:
            return
        logger.debug("leg %s key via %s", self.id, method)
        if self._digits.qsize() < 64:
            self._digits.put_nowait(digit)
        self._digit_event.set()
        self.engine.publish(ev.CallDtmf(self.id, digit=digit, method=method))

    def on_reinvite(self, call: IncomingCall) -> None:
        """The peer changed the session (typically hold/resume): answer with the same port."""
        if self.state is not LegState.ANSWERED or self.channel is None or self.local_sdp is None:
            call.reject(491 if self.state is not LegState.ENDED else 481)
            return
        offer = call.sdp_offer
        if offer is None:
            call.accept(self.local_sdp.offer(direction="sendonly" if self.held else "sendrecv"))
            return
        try:
            answer, params = self.local_sdp.answer(offer, hold=self.held)
        except MediaNegotiationError:
            call.reject(488)
            return
        was_held = self.channel.remote_hold
        self.channel.configure(params)
        if self.held:
            self.channel.sending = True
        call.accept(answer)
        if params.on_hold != was_held:
            self.engine.publish(ev.CallHold(self.id, held=params.on_hold, by="remote"))

    def on_transfer_progress(self, status: int) -> None:
        self._transfer_status.put_nowait(status)

    # ------------------------------------------------------------ media operations

    def start_player(
        self, prompts: list[Prompt], *, loop: bool = False, player_id: str | None = None
    ) -> Player:
        channel = self._require_media()
        return channel.play(
            Player(prompts, loop=loop, player_id=player_id or uuid.uuid4().hex[:12])
        )

    async def play(
        self,
        prompts: list[Prompt],
        *,
        barge_in: bool = False,
        loop: bool = False,
        player_id: str | None = None,
    ) -> str:
        """Play prompts to the caller; returns ``completed``, ``interrupted``, ``stopped``."""
        player = self.start_player(prompts, loop=loop, player_id=player_id)
        try:
            if barge_in:
                self._digit_event.clear()
                if not self._digits.empty():
                    player.stop("interrupted")
                else:
                    await self._race(player.done, self._digit_event.wait())
                    if not player.done.done():
                        player.stop("interrupted")
            else:
                await self._race(player.done)
        except CallEnded:
            player.stop("hangup")
            raise
        return player.done.result()

    async def _race(self, *aws: Awaitable[Any], timeout: float | None = None) -> bool:
        """Wait for the first of *aws*; raises CallEnded if the leg ends first. False on timeout."""
        # Futures we were given belong to someone else (a player's ``done``): shield them so
        # losing the race never cancels them
        tasks = [
            asyncio.ensure_future(asyncio.shield(a) if asyncio.isfuture(a) else a) for a in aws
        ]
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            done, _ = await asyncio.wait(
                [*tasks, ended], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for t in [*tasks, ended]:
                if not t.done():
                    t.cancel()
        if ended in done or self.state is LegState.ENDED:
            raise CallEnded(self.id)
        return bool(done)

    def clear_digits(self) -> None:
        while not self._digits.empty():
            self._digits.get_nowait()

    async def next_digit(self, timeout: float) -> str | None:
        """The next key pressed (type-ahead first), ``None`` after *timeout* seconds."""
        if self.state is LegState.ENDED:
            raise CallEnded(self.id)
        if not self._digits.empty():
            return self._digits.get_nowait()
        getter = asyncio.ensure_future(self._digits.get())
        try:
            got = await self._race(getter, timeout=timeout)
        except CallEnded:
            getter.cancel()
            raise
        if got and getter.done() and not getter.cancelled():
            return getter.result()
        getter.cancel()
        return None

    async def gather(
        self, options: GatherOptions, prompts: list[Prompt] | None = None
    ) -> GatherResult:
        """Collect digits, optionally while playing a prompt (barge-in stops the prompt)."""
        self._require_media()
        if options.flush:
            self.clear_digits()
        if prompts:
            await self.play(prompts, barge_in=options.barge_in)
        digits = ""
        while True:
            timeout = options.first_digit_timeout if not digits else options.inter_digit_timeout
            digit = await self.next_digit(timeout)
            if digit is None:
                return GatherResult(digits, "timeout")
            if digit in options.terminators and options.terminators:
                return GatherResult(digits, "terminator")
            digits += digit
            if len(digits) >= options.max_digits:
                return GatherResult(digits, "max_digits")

    def start_recording(
        self,
        *,
        mode: str = "leg",
        max_duration: float | None = None,
        detect_silence: bool = False,
        recording_id: str | None = None,
    ) -> Recorder:
        """Record what the caller says (``leg``) or both directions mixed (``both``)."""
        channel = self._require_media()
        if mode == "leg":

            def source() -> bytes | None:
                return channel.in_frame
        elif mode == "both":

            def source() -> bytes | None:
                frames = [f for f in (channel.in_frame, channel.out_pcm) if f is not None]
                return mix(frames) if frames else None
        else:
            raise ValueError(f"unknown recording mode {mode!r} (leg, both)")
        recorder = self.engine.recordings.start(
            recording_id or uuid.uuid4().hex[:16],
            mode=mode,
            call_ids=[self.id],
            source=source,
            max_duration=max_duration,
            detect_silence=detect_silence,
        )
        self.recorders[recorder.id] = recorder
        self.engine.track_recording(recorder, legs=[self])
        return recorder

    async def stop_recording(self, recording_id: str, reason: str = "stopped") -> RecordingResult:
        recorder = self.recorders.get(recording_id)
        if recorder is None:
            raise KeyError(recording_id)
        return await recorder.stop(reason)

    async def record_message(
        self,
        *,
        max_duration: float,
        silence_timeout: float,
        terminators: str = "#",
        beep: Prompt | None = None,
    ) -> tuple[Recorder, str]:
        """Voicemail-style recording: beep, record until a key, silence or the time limit."""
        self._require_media()
        if beep is not None:
            await self.play([beep])
        self.clear_digits()
        recorder = self.start_recording(mode="leg", max_duration=max_duration, detect_silence=True)
        reason = "max_duration"
        while True:
            digit_task = asyncio.ensure_future(self._digits.get())
            full_task = asyncio.ensure_future(recorder.full.wait())
            try:
                await self._race(digit_task, full_task, timeout=0.25)
            except CallEnded:
                reason = "hangup"
                break
            finally:
                full_task.cancel()
                if not digit_task.done():
                    digit_task.cancel()
            if (
                digit_task.done()
                and not digit_task.cancelled()
                and digit_task.result() in terminators
            ):
                reason = "terminator"
                break
            if recorder.full.is_set():
                reason = "max_duration"
                break
            if recorder.voiced_frames and recorder.silence_seconds() >= silence_timeout:
                reason = "silence"
                break
            if not recorder.voiced_frames and recorder.duration >= silence_timeout * 2:
                reason = "silence"
                break
        if self.recorders.pop(recorder.id, None) is not None:
            recorder.stop(reason)
        return recorder, reason

    async def send_dtmf(self, digits: str, *, method: str = "rfc4733") -> None:
        channel = self._require_media()
        for digit in digits:
            if method == "info":
                assert self.handle is not None
                await self.engine.sip.request(
                    self.handle,
                    "INFO",
                    body=f"Signal={digit}\r\nDuration=160\r\n",
                    content_type="application/dtmf-relay",
                )
            else:
                channel.send_dtmf(digit)
                await asyncio.sleep(0.2)

    async def hold(self, *, music: bool = True) -> None:
        """Put the peer on hold (re-INVITE ``sendonly``) and play music on hold."""
        channel = self._require_media()
        if self.held:
            return
        await self._reoffer("sendonly")
        self.held = True
        channel.sending = True
        self.engine.mute_in_bridge(self, True)
        if music:
            self._moh = self.start_player([await self.engine.music_on_hold()], loop=True)
        self.engine.publish(ev.CallHold(self.id, held=True, by="local"))

    async def unhold(self) -> None:
        channel = self._require_media()
        if not self.held:
            return
        await self._reoffer("sendrecv")
        self.held = False
        if self._moh is not None:
            self._moh.stop("stopped")
            self._moh = None
        channel.sending = not channel.remote_hold
        self.engine.mute_in_bridge(self, False)
        self.engine.publish(ev.CallHold(self.id, held=False, by="local"))

    async def _reoffer(self, direction: str) -> None:
        assert self.handle is not None and self.local_sdp is not None and self.channel is not None
        offer = self.local_sdp.offer(
            direction=direction,
            dtmf_pt=(
                self.channel.params.dtmf_payload_type
                if self.channel.params and self.channel.params.dtmf_payload_type
                else 101
            ),
        )
        response = await self.engine.sip.request(
            self.handle,
            "INVITE",
            body=self.engine.sip.serialize(offer),
            content_type="application/sdp",
        )
        if response is None or not 200 <= response.status_code < 300:
            code = response.status_code if response is not None else None
            raise CallStateError(f"re-INVITE refused ({code})")
        if response.body:
            from aiosipua import parse_sdp

            try:
                params = params_from_answer(parse_sdp(response.text), self.engine.config.codecs)
                self.channel.configure(params)
            except MediaNegotiationError:
                logger.warning("unusable SDP in re-INVITE answer on leg %s", self.id)

    async def blind_transfer(self, target: str, *, timeout: float = 30.0) -> int:
        """REFER the peer to *target*; returns the final status the peer reported."""
        self._require(LegState.ANSWERED)
        assert self.handle is not None
        response = await self.engine.sip.refer(self.handle, target)
        code = response.status_code if response is not None else 408
        if not 200 <= code < 300:
            self.engine.publish(
                ev.CallTransfer(
                    self.id, target=target, mode="refer", status=code, reason="REFER refused"
                )
            )
            return code
        final = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while final < 200:
            remaining = deadline - loop.time()
            if remaining <= 0:
                final = 408
                break
            try:
                status = await asyncio.wait_for(self._transfer_status.get(), remaining)
            except TimeoutError:
                final = 408
                break
            self.engine.publish(
                ev.CallTransfer(self.id, target=target, mode="refer", status=status)
            )
            if status >= 200:
                final = status
        if 200 <= final < 300:
            await self.hangup("transferred")
        return final

    def notify_transfer(self, status: int, reason: str = "") -> None:
        """Report progress of a transfer the peer asked us to make (we got its REFER)."""
        if self.incoming is not None and self.state is LegState.ANSWERED:
            notify_refer(self.incoming, status, reason)

    # ------------------------------------------------------------ ending

    async def hangup(self, cause: str = "normal", *, sip_code: int | None = None) -> None:
        """End the leg from our side: BYE if answered, CANCEL/reject if not."""
        if self.state is LegState.ENDED:
            return
        if self.state is LegState.ANSWERED and self.handle is not None:
            handle = self.handle
            await self.finish(cause, sip_code, "local")
            await self.engine.sip.bye(handle)
            return
        if self.direction == "inbound" and self.incoming is not None:
            self.incoming.reject(480 if cause == "normal" else 603)
            await self.finish(cause, sip_code or 480, "local")
            return
        if self.outbound is not None:
            self.engine.sip.cancel(self.outbound)
        await self.finish(cause, sip_code, "local")

    async def finish(
        self, cause: str, sip_code: int | None, hangup_by: str, *, dial_result: str | None = None
    ) -> None:
        """Release everything and write the CDR. Idempotent."""
        if self.state is LegState.ENDED:
            return
        self.state = LegState.ENDED
        self.ended_at = _now_iso()
        self.cause = cause
        self.sip_code = sip_code
        self.hangup_by = hangup_by
        if dial_result is not None:
            self.dial_result = dial_result
        elif self.dial_result is None and self.direction == "outbound":
            self.dial_result = classify_result(sip_code) if sip_code else cause
        self.ended.set()
        for recorder in list(self.recorders.values()):
            recorder.stop("hangup")
        self.recorders.clear()
        self.engine.leave_bridge(self)
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and task is not self.dial_task and task is not self.flow_task:
                task.cancel()
        if self.channel is not None:
            logger.debug("leg %s media %s", self.id, self.channel.stats())
            await self.channel.close()
        self.engine.leg_finished(self)
