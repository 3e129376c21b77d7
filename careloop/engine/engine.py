"""The engine process: owns the SIP stack, the media clock, legs, bridges, flows and CDRs.

Everything the command API and the IVR runner do goes through :class:`Engine` methods, so
both paths enforce the same rules and emit the same events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx
from aiosipua import IncomingCall, SipDigestAuth, parse_address

from careloop.engine import USER_AGENT
from careloop.engine import events as ev
from careloop.engine.call import CallEnded, CallStateError, Leg, LegState
from careloop.engine.cdr import CdrJournal
from careloop.engine.config import EngineConfig, is_ip_literal
from careloop.engine.flow import FlowDocument, FlowError, load_flow, load_flow_file
from careloop.engine.flowrunner import FlowRunner
from careloop.engine.media import Bridge, BridgeMember, MediaEngine
from careloop.engine.prompts import (
    Prompt,
    PromptError,
    PromptLibrary,
    default_music_on_hold,
    silence,
    tone,
)
from careloop.engine.recorder import Recorder, RecordingStore
from careloop.engine.sip import DialogHandle, Endpoint, SipStack
from careloop.engine.tts import make_tts

logger = logging.getLogger(__name__)


class EngineError(Exception):
    """A command the engine refuses (bad target, unknown leg...); the API answers 4xx."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class FlowStore:
    """Versioned flows: the ``--flow`` file plus any uploaded through the API (kept on disk)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._flows: dict[str, dict[int, FlowDocument]] = {}

    def load_saved(self) -> None:
        if not self.root.exists():
            return
        for path in sorted(self.root.glob("*.json")):
            try:
                self._remember(load_flow_file(path))
            except FlowError as exc:
                logger.error("stored flow %s is invalid: %s", path.name, exc)

    def _remember(self, flow: FlowDocument) -> None:
        self._flows.setdefault(flow.id, {})[flow.version] = flow

    def put(self, doc: Any) -> FlowDocument:
        """Validate and store a new version; the same id+version must not change content."""
        flow = load_flow(doc)
        existing = self._flows.get(flow.id, {}).get(flow.version)
        if existing is not None:
            if existing.raw != flow.raw:
                raise EngineError(
                    f"flow {flow.id} version {flow.version} exists with other content; bump the version",
                    409,
                )
            return existing
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{flow.id}.v{flow.version}.json"
        path.write_text(json.dumps(flow.raw, ensure_ascii=False, indent=2), encoding="utf-8")
        self._remember(flow)
        return flow

    def add(self, flow: FlowDocument) -> None:
        self._remember(flow)

    def get(self, flow_id: str, version: int | None = None) -> FlowDocument:
        versions = self._flows.get(flow_id)
        if not versions:
            raise EngineError(f"no flow {flow_id!r}", 404)
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise EngineError(f"flow {flow_id!r} has no version {version}", 404)
        return versions[version]

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "id": fid,
                "versions": sorted(versions),
                "latest": max(versions),
                "name": versions[max(versions)].name,
            }
            for fid, versions in sorted(self._flows.items())
        ]


class Engine:
    """The telephony engine (see module docstring)."""

    def __init__(
        self, config: EngineConfig, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        config.validate()
        self.config = config
        self.config_rtp_timeout = 60.0
        self.bus = ev.EventBus()
        self.sip = SipStack(config)
        self.media = MediaEngine(
            config.rtp_bind_host, config.rtp_ports, latching=config.rtp_latching
        )
        data = config.data_dir
        self.tts = make_tts(
            "espeak-ng",
            config.tts_cache_dir or data / "tts",
            voice=config.tts_voice,
            speed=config.tts_speed,
        )
        self.prompts = PromptLibrary(data / "prompts", self.tts)
        self.recordings = RecordingStore(data / "recordings", self.media.consumers)
        self.cdr = CdrJournal(data)
        self.flows = FlowStore(data / "flows")
        self.default_flow: FlowDocument | None = None
        self.legs: dict[str, Leg] = {}
        self._by_sip: dict[str, Leg] = {}
        self.bridge_options: dict[str, dict[str, Any]] = {}
        self.bridge_recorders: dict[str, Recorder] = {}
        self._clock = clock or (lambda: datetime.now(UTC))
        self._moh: Prompt | None = None
        self._beep: Prompt | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.started = asyncio.Event()
        self.api_server: Any = None
        self.webhook: Any = None
        from careloop.engine.dialer import Dialer

        self.dialer = Dialer(self)

    # ------------------------------------------------------------ lifecycle

    def now(self) -> datetime:
        return self._clock()

    def publish(self, event: ev.Event) -> None:
        self.bus.publish(event)

    def spawn(self, coro: Any, name: str = "") -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, CallEnded | CallStateError):
                logger.error("engine task failed", exc_info=exc)

    async def start(self) -> None:
        data = self.config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        (data / "prompts").mkdir(exist_ok=True)
        recovered = self.recordings.recover()
        interrupted = self.cdr.recover(recovered)
        self.cdr.start()
        for rec in recovered:
            self.publish(
                ev.RecordingFinished(
                    rec.call_ids[0] if rec.call_ids else None,
                    recording_id=rec.recording_id,
                    path=rec.path,
                    duration=rec.duration,
                    mode=rec.mode,
                    partial=True,
                    bridge_id=rec.bridge_id,
                    reason="interrupted",
                )
            )
        for record in interrupted:
            self.publish(
                ev.CallEnded(
                    record["leg_id"], cause="interrupted", sip_code=None, hangup_by="engine"
                )
            )
            self.publish(ev.CdrWritten(record["leg_id"], record=record))
        self.flows.load_saved()
        if self.config.flow_path is not None:
            self.default_flow = load_flow_file(self.config.flow_path)
            self.flows.add(self.default_flow)
        self._http = httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, follow_redirects=False)
        self._wire_sip()
        await self.sip.start()
        if self.config.webhook_url:
            from careloop.engine.api import WebhookNotifier

            self.webhook = WebhookNotifier(
                self.bus, self.config.webhook_url, self.config.webhook_secret
            )
            self.webhook.start()
        if self.config.api_listen is not None:
            from careloop.engine.api import ApiServer

            self.api_server = ApiServer(self, self.config.api_listen, self.config.api_token or "")
            await self.api_server.start()
        # Last: start-up work (imports, binding) would otherwise count as late media ticks
        await self.media.start()
        self.started.set()
        logger.info("engine started (%d interrupted legs recovered)", len(interrupted))

    async def stop(self) -> None:
        """Hang up every leg (cause ``shutdown``), then close everything in order."""
        await self.dialer.stop()
        legs = [leg for leg in self.legs.values() if leg.is_active]
        await asyncio.gather(*(leg.hangup("shutdown") for leg in legs), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self.api_server is not None:
            await self.api_server.stop()
        if self.webhook is not None:
            await self.webhook.stop()
        await self.sip.stop()
        await self.media.stop()
        while self.recordings.pending:
            await asyncio.sleep(0.05)
        await self.cdr.stop()
        await asyncio.to_thread(self.recordings.shutdown)
        if self._http is not None:
            await self._http.aclose()
        logger.info("engine stopped")

    # ------------------------------------------------------------ SIP wiring

    def _wire_sip(self) -> None:
        sip = self.sip
        sip.accept_new_call = lambda: (
            sum(1 for leg in self.legs.values() if leg.is_active) < self.config.max_calls
        )
        sip.on_invite = self._on_invite
        sip.on_reinvite = self._on_reinvite
        sip.on_bye = lambda call_id: self._remote_end(call_id, "remote_hangup", None)
        sip.on_cancel = lambda call_id: self._remote_end(call_id, "cancelled", 487)
        sip.on_ack_timeout = lambda call_id: self._remote_end(
            call_id, "ack_timeout", None, by="engine"
        )
        sip.on_info_dtmf = self._on_info_dtmf
        sip.on_refer = self._on_refer
        sip.on_transfer_progress = self._on_transfer_progress
        sip.on_registration = self._on_registration

    def index_sip_call(self, leg: Leg) -> None:
        self._by_sip[leg.sip_call_id] = leg

    def leg_by_sip(self, call_id: str) -> Leg | None:
        return self._by_sip.get(call_id)

    def _register_leg(self, leg: Leg) -> None:
        self.legs[leg.id] = leg
        if leg.sip_call_id:
            self._by_sip[leg.sip_call_id] = leg
        self.cdr.leg_started(leg.id, leg.cdr_record())
        self.publish(
            ev.CallCreated(
                leg.id,
                direction=leg.direction,
                caller=leg.caller,
                callee=leg.callee,
                sip_call_id=leg.sip_call_id,
                headers=leg.headers,
                app_data=leg.app_data,
            )
        )

    def _on_invite(self, call: IncomingCall, endpoint: Endpoint) -> None:
        leg = Leg(
            engine=self,
            direction="inbound",
            caller=call.caller,
            callee=call.callee,
            sip_call_id=call.call_id,
            headers=dict(call.x_headers),
        )
        leg.incoming = call
        leg.handle = DialogHandle(endpoint, call.dialog, call.source_addr, incoming=call)
        self._register_leg(leg)
        if self.default_flow is not None:
            leg.flow_task = leg.spawn(self.run_flow(leg, self.default_flow))
        else:
            leg.ring()
            leg.spawn(self._unanswered_timeout(leg))

    async def _unanswered_timeout(self, leg: Leg) -> None:
        # Nobody (no flow, no application command) took the call: do not let it ring forever
        await asyncio.sleep(self.config.unanswered_timeout)
        if leg.state in (LegState.OFFERED, LegState.RINGING):
            await leg.reject(480, cause="no_answer")

    def _on_reinvite(self, call: IncomingCall) -> None:
        leg = self._by_sip.get(call.call_id)
        if leg is None:
            call.reject(481)
            return
        leg.on_reinvite(call)

    def _remote_end(
        self, call_id: str, cause: str, code: int | None, *, by: str = "remote"
    ) -> None:
        leg = self._by_sip.get(call_id)
        if leg is not None and leg.is_active:
            self.spawn(leg.finish(cause, code, by))

    def _on_info_dtmf(self, call_id: str, digit: str) -> bool:
        leg = self._by_sip.get(call_id)
        if leg is None:
            return False
        leg.on_dtmf(digit, "info")
        return True

    def _on_transfer_progress(self, call_id: str, status: int, _reason: str) -> None:
        leg = self._by_sip.get(call_id)
        if leg is not None:
            leg.on_transfer_progress(status)

    def _on_registration(self, state: str, status: int | None, reason: str) -> None:
        aor = self.config.registrar.aor if self.config.registrar else ""
        self.publish(
            ev.RegistrationChanged(None, aor=aor, state=state, status=status, reason=reason)
        )

    def _on_refer(self, call: IncomingCall, target: str) -> None:
        leg = self._by_sip.get(call.call_id)
        if leg is None:
            from aiosipua import notify_refer

            notify_refer(call, 481)
            return
        self.spawn(self._handle_refer(leg, call, target))

    async def _handle_refer(self, leg: Leg, call: IncomingCall, target: str) -> None:
        """The peer (e.g. an agent phone) blind-transfers: connect its bridge partner to *target*."""
        from aiosipua import notify_refer

        partner = self._bridge_partner(leg)
        if partner is None:
            notify_refer(call, 603, "Decline")
            return
        new_leg = await self.originate(
            target, caller=partner.caller, app_data={"transferred_from": leg.id}
        )
        result = await self.wait_dial_result(new_leg)
        if result != "answered":
            code = new_leg.sip_code or 480
            notify_refer(call, code if code >= 300 else 480)
            return
        self.leave_bridge(leg, keep_others=True)
        self.create_bridge([partner, new_leg])
        notify_refer(call, 200, "OK")
        self.publish(ev.CallTransfer(partner.id, target=target, mode="refer-received", status=200))
        await leg.hangup("transferred")

    # ------------------------------------------------------------ legs

    def get_leg(self, leg_id: str) -> Leg:
        leg = self.legs.get(leg_id)
        if leg is None:
            raise EngineError(f"no call {leg_id!r}", 404)
        return leg

    def leg_finished(self, leg: Leg) -> None:
        record = leg.cdr_record()
        self.cdr.leg_finished(record)
        self.publish(
            ev.CallEnded(
                leg.id,
                cause=leg.cause or "normal",
                sip_code=leg.sip_code,
                hangup_by=leg.hangup_by or "local",
            )
        )
        self.publish(ev.CdrWritten(leg.id, record=record))
        self._by_sip.pop(leg.sip_call_id, None)
        # Ended legs stay visible for a while so the application can still GET them
        asyncio.get_running_loop().call_later(300, self.legs.pop, leg.id, None)

    def default_from(self) -> str:
        if self.config.from_uri:
            return self.config.from_uri
        if self.config.registrar is not None:
            return self.config.registrar.aor
        host, port = self.sip.advertised_addr
        return f"sip:careloop@{host}:{port}"

    def target_uri(self, target: str) -> str:
        """A SIP URI for *target*: URIs pass through, bare numbers go to the trunk/registrar domain."""
        target = target.strip()
        if target.lower().startswith(("sip:", "sips:")):
            return target
        if not target or not all(ch.isdigit() or ch in "+*#" for ch in target):
            raise EngineError(f"target {target!r} is neither a SIP URI nor a phone number")
        if self.config.outbound_proxy is not None:
            host, port = self.config.outbound_proxy
            return f"sip:{target}@{host}:{port}"
        if self.config.registrar is not None:
            domain = parse_address(self.config.registrar.aor).uri.host
            return f"sip:{target}@{domain}"
        raise EngineError(
            "dialling a number needs --outbound-proxy or a registrar; give a SIP URI instead"
        )

    async def next_hop(self, uri: str) -> tuple[str, int]:
        """Where to send an INVITE: the outbound proxy, the registrar, else the URI's host."""
        if self.config.outbound_proxy is not None:
            return self.config.outbound_proxy
        if self.config.registrar is not None:
            return self.config.registrar.address
        parsed = parse_address(uri if "<" in uri else f"<{uri}>").uri
        host, port = parsed.host.strip("[]"), parsed.port or 5060
        if not host:
            raise EngineError(f"no host in {uri!r}")
        if is_ip_literal(host):
            return host, port
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=2)
        except OSError as exc:
            raise EngineError(f"cannot resolve {host}: {exc}", 422) from exc
        return str(infos[0][4][0]), port

    async def originate(
        self,
        target: str,
        *,
        caller: str | None = None,
        ring_timeout: float = 30.0,
        headers: dict[str, str] | None = None,
        app_data: dict[str, Any] | None = None,
        flow: FlowDocument | None = None,
        variables: dict[str, Any] | None = None,
    ) -> Leg:
        """Place an outbound call; returns the leg at once (progress arrives as events)."""
        uri = self.target_uri(target)
        dest = await self.next_hop(uri)
        if sum(1 for leg in self.legs.values() if leg.is_active) >= self.config.max_calls:
            raise EngineError("engine at its call limit", 503)
        from_uri = caller or self.default_from()
        if not from_uri.lower().startswith(("sip:", "sips:")):
            host = parse_address(self.default_from()).uri.host
            from_uri = f"sip:{from_uri}@{host}"
        leg = Leg(
            engine=self,
            direction="outbound",
            caller=from_uri,
            callee=uri,
            sip_call_id="",
            app_data=app_data or {},
        )
        leg.state = LegState.DIALING
        leg.headers = dict(headers or {})
        self._register_leg(leg)
        auth = None
        if self.config.registrar is not None:
            auth = SipDigestAuth(self.config.registrar.username, self.config.registrar.password)
        leg.dial_task = leg.spawn(
            self._dial_and_run(leg, dest, ring_timeout, auth, flow, variables)
        )
        return leg

    async def _dial_and_run(
        self,
        leg: Leg,
        dest: tuple[str, int],
        ring_timeout: float,
        auth: SipDigestAuth | None,
        flow: FlowDocument | None,
        variables: dict[str, Any] | None,
    ) -> str:
        result = await leg.dial(
            dest=dest, ring_timeout=ring_timeout, auth=auth, extra_headers=leg.headers
        )
        if result == "answered" and flow is not None:
            await self.run_flow(leg, flow, variables)
        return result

    async def wait_dial_result(self, leg: Leg) -> str:
        """The dial result of an outbound leg (waits for it)."""
        while leg.state in (LegState.DIALING, LegState.RINGING):
            waiter = asyncio.ensure_future(leg.answered.wait())
            ender = asyncio.ensure_future(leg.ended.wait())
            await asyncio.wait([waiter, ender], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            ender.cancel()
        if leg.state is LegState.ANSWERED:
            return "answered"
        return leg.dial_result or leg.cause or "failed"

    async def run_flow(
        self, leg: Leg, flow: FlowDocument, variables: dict[str, Any] | None = None
    ) -> str:
        return await FlowRunner(self, leg, flow, variables).run()

    # ------------------------------------------------------------ prompts and application calls

    async def resolve_prompts(
        self, items: list[dict[str, Any]], *, voice: str | None = None
    ) -> list[Prompt]:
        """Prompt items (``text``/``file``/``digits``/``silence``/``tone``) to audio."""
        prompts: list[Prompt] = []
        for item in items:
            if not isinstance(item, dict):
                raise PromptError("a prompt item is an object")
            if "text" in item:
                prompts.append(
                    await self.prompts.speech(str(item["text"]), item.get("voice") or voice)
                )
            elif "file" in item:
                prompts.append(await self.prompts.file(str(item["file"])))
            elif "digits" in item:
                prompts.append(
                    await self.prompts.digits(str(item["digits"]), item.get("voice") or voice)
                )
            elif "silence" in item:
                prompts.append(silence(int(item["silence"])))
            elif "tone" in item:
                spec = item["tone"] if isinstance(item["tone"], dict) else {}
                prompts.append(tone(float(spec.get("freq", 1000)), int(spec.get("ms", 300))))
            else:
                raise PromptError(f"unknown prompt item {sorted(item)}")
        return prompts

    async def music_on_hold(self) -> Prompt:
        if self._moh is None:
            if self.config.moh_path is not None:
                self._moh = await self.prompts.file(str(self.config.moh_path))
            else:
                self._moh = default_music_on_hold()
        return self._moh

    async def beep(self) -> Prompt:
        if self._beep is None:
            self._beep = tone(1000, 400)
        return self._beep

    async def call_application(
        self,
        method: str,
        url: str,
        body: Any,
        *,
        timeout: float,
        call_id: str,
        flow_id: str,
        node: str,
    ) -> tuple[int, Any]:
        """An IVR ``http`` node's request to the application; returns (status, JSON body)."""
        assert self._http is not None
        if url.startswith("/"):
            if not self.config.app_url:
                raise ValueError("relative URL in a flow but no --app-url configured")
            url = urljoin(self.config.app_url.rstrip("/") + "/", url.lstrip("/"))
        headers = {
            "X-CareLoop-Call-Id": call_id,
            "X-CareLoop-Flow": flow_id,
            "X-CareLoop-Node": node,
        }
        if (
            self.config.app_token
            and self.config.app_url
            and urlparse(url).netloc == urlparse(self.config.app_url).netloc
        ):
            headers["Authorization"] = f"Bearer {self.config.app_token}"
        if method == "GET":
            params = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else None
            response = await self._http.get(url, params=params, headers=headers, timeout=timeout)
        else:
            response = await self._http.post(url, json=body, headers=headers, timeout=timeout)
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {"text": response.text[:1000]}
        return response.status_code, data

    # ------------------------------------------------------------ routing, bridges, transfer

    async def route(
        self,
        leg: Leg,
        target: dict[str, Any],
        variables: dict[str, Any],
        *,
        music: bool,
        timeout: float,
    ) -> bool:
        """Hand the leg to the application; True once it takes over (a command or a bridge)."""
        takeover = asyncio.Event()
        leg.app_takeover = takeover
        moh = leg.start_player([await self.music_on_hold()], loop=True) if music else None
        self.publish(ev.CallRouted(leg.id, target=target, variables=variables))
        try:
            taken = await leg._race(takeover.wait(), timeout=timeout)
        finally:
            if moh is not None:
                moh.stop("stopped")
        return taken

    def app_command(self, leg: Leg) -> None:
        """The application acted on the leg: a routed call is now the application's."""
        if leg.app_takeover is not None:
            leg.app_takeover.set()

    def create_bridge(
        self,
        legs: list[Leg],
        *,
        record: bool = False,
        bridge_id: str | None = None,
        hangup_on_exit: bool = True,
    ) -> Bridge:
        """Connect answered legs; with *record* the conversation is recorded mixed."""
        if len(legs) < 2:
            raise EngineError("a bridge needs at least two calls")
        for leg in legs:
            if leg.state is not LegState.ANSWERED or leg.channel is None:
                raise EngineError(f"call {leg.id} is not answered", 409)
            if leg.bridge_id is not None:
                raise EngineError(f"call {leg.id} is already in bridge {leg.bridge_id}", 409)
        bridge = Bridge(bridge_id or uuid.uuid4().hex[:16])
        for leg in legs:
            assert leg.channel is not None
            leg.channel.stop_players("stopped")
            self.app_command(leg)
            bridge.add(BridgeMember(leg.id, leg.channel, muted=leg.held))
            leg.bridge_id = bridge.id
            leg.bridges.append(bridge.id)
        self.media.bridges[bridge.id] = bridge
        self.bridge_options[bridge.id] = {"hangup_on_exit": hangup_on_exit}
        self.publish(
            ev.BridgeChanged(
                None,
                bridge_id=bridge.id,
                action="created",
                members={m.key: m.role for m in bridge.members.values()},
            )
        )
        if record:
            self.record_bridge(bridge)
        return bridge

    def get_bridge(self, bridge_id: str) -> Bridge:
        bridge = self.media.bridges.get(bridge_id)
        if bridge is None:
            raise EngineError(f"no bridge {bridge_id!r}", 404)
        return bridge

    def record_bridge(self, bridge: Bridge) -> Recorder:
        if bridge.id in self.bridge_recorders:
            raise EngineError(f"bridge {bridge.id} is already recorded", 409)
        legs = [self.legs[key] for key in bridge.members if key in self.legs]
        recorder = self.recordings.start(
            uuid.uuid4().hex[:16],
            mode="mixed",
            call_ids=[leg.id for leg in legs],
            source=bridge.conversation_frame,
            bridge_id=bridge.id,
        )
        self.bridge_recorders[bridge.id] = recorder
        self.track_recording(recorder, legs=legs)
        return recorder

    def join_bridge(
        self, bridge: Bridge, leg: Leg, *, role: str = "party", whisper_to: str | None = None
    ) -> None:
        """Add a leg: ``party``, ``listen`` (supervisor listens) or ``whisper`` (coaches one party)."""
        if role not in ("party", "listen", "whisper"):
            raise EngineError("role is party, listen or whisper")
        if leg.state is not LegState.ANSWERED or leg.channel is None:
            raise EngineError(f"call {leg.id} is not answered", 409)
        if leg.bridge_id is not None:
            raise EngineError(f"call {leg.id} is already in bridge {leg.bridge_id}", 409)
        if role == "whisper" and whisper_to not in bridge.members:
            raise EngineError("whisper needs whisper_to = a call in the bridge")
        leg.channel.stop_players("stopped")
        self.app_command(leg)
        bridge.add(BridgeMember(leg.id, leg.channel, role=role, whisper_to=whisper_to))
        leg.bridge_id = bridge.id
        leg.bridges.append(bridge.id)
        self.publish(
            ev.BridgeChanged(
                None,
                bridge_id=bridge.id,
                action="joined",
                members={m.key: m.role for m in bridge.members.values()},
            )
        )

    def leave_bridge(self, leg: Leg, *, keep_others: bool = False) -> None:
        """Take a leg out of its bridge; when a party leaves, the others are hung up by default."""
        if leg.bridge_id is None:
            return
        bridge = self.media.bridges.get(leg.bridge_id)
        leg.bridge_id = None
        if bridge is None:
            return
        member = bridge.remove(leg.id)
        if member is not None and member.channel is not None:
            member.channel.bridge_out = None
        self.publish(
            ev.BridgeChanged(
                None,
                bridge_id=bridge.id,
                action="left",
                members={m.key: m.role for m in bridge.members.values()},
            )
        )
        if member is not None and member.role == "party" and len(bridge.parties()) < 2:
            hang_up = (
                self.bridge_options.get(bridge.id, {}).get("hangup_on_exit", True)
                and not keep_others
            )
            self.destroy_bridge(bridge.id, hangup=hang_up)

    def destroy_bridge(self, bridge_id: str, *, hangup: bool = False) -> None:
        bridge = self.media.bridges.pop(bridge_id, None)
        if bridge is None:
            return
        self.bridge_options.pop(bridge_id, None)
        recorder = self.bridge_recorders.pop(bridge_id, None)
        if recorder is not None:
            recorder.stop("bridge_ended")
        for key, member in list(bridge.members.items()):
            leg = self.legs.get(key)
            member.channel.bridge_out = None
            if leg is None:
                continue
            leg.bridge_id = None
            if (hangup or member.role != "party") and leg.is_active:
                self.spawn(leg.hangup("bridge_ended" if member.role == "party" else "normal"))
        self.publish(ev.BridgeChanged(None, bridge_id=bridge_id, action="destroyed"))

    def mute_in_bridge(self, leg: Leg, muted: bool) -> None:
        if leg.bridge_id is None:
            return
        bridge = self.media.bridges.get(leg.bridge_id)
        if bridge is not None and leg.id in bridge.members:
            bridge.members[leg.id].muted = muted

    def _bridge_partner(self, leg: Leg) -> Leg | None:
        if leg.bridge_id is None:
            return None
        bridge = self.media.bridges.get(leg.bridge_id)
        if bridge is None:
            return None
        for member in bridge.parties():
            if member.key != leg.id and member.key in self.legs:
                return self.legs[member.key]
        return None

    async def transfer(
        self, leg: Leg, target: str, *, mode: str = "bridge", ring_timeout: float = 30.0
    ) -> str:
        """Blind transfer: ``refer`` asks the peer to call *target*; ``bridge`` dials it and connects.

        Returns ``transferred`` / ``bridged`` on success, else the failed dial result.
        """
        if leg.state is not LegState.ANSWERED:
            raise EngineError(f"call {leg.id} is not answered", 409)
        self.app_command(leg)
        uri = self.target_uri(target)
        if mode == "refer":
            status = await leg.blind_transfer(uri)
            return "transferred" if 200 <= status < 300 else f"refer_failed_{status}"
        new_leg = await self.originate(
            uri, caller=leg.caller, ring_timeout=ring_timeout, app_data={"transfer_of": leg.id}
        )
        self.publish(ev.CallTransfer(leg.id, target=uri, mode="bridge", status=100))
        result = await self.wait_dial_result(new_leg)
        if result != "answered" or not leg.is_active:
            if new_leg.is_active:
                await new_leg.hangup("normal")
            self.publish(
                ev.CallTransfer(
                    leg.id, target=uri, mode="bridge", status=new_leg.sip_code or 480, reason=result
                )
            )
            return result
        self.leave_bridge(leg, keep_others=False)
        if leg.channel is not None:
            leg.channel.stop_players("stopped")
        self.create_bridge([leg, new_leg])
        self.publish(ev.CallTransfer(leg.id, target=uri, mode="bridge", status=200))
        return "bridged"

    # ------------------------------------------------------------ recordings

    def track_recording(self, recorder: Recorder, *, legs: list[Leg]) -> None:
        """Publish start/finish events and attach the recording to the legs' CDRs."""
        entry: dict[str, Any] = {
            "recording_id": recorder.id,
            "path": recorder.meta.ogg_path,
            "mode": recorder.meta.mode,
            "bridge_id": recorder.meta.bridge_id,
            "partial": False,
        }
        for leg in legs:
            leg.recordings.append(entry)
            self.cdr.leg_updated(leg.id, recording=entry)
        first = legs[0].id if legs else None
        self.publish(
            ev.RecordingStarted(
                first,
                recording_id=recorder.id,
                mode=recorder.meta.mode,
                bridge_id=recorder.meta.bridge_id,
            )
        )

        async def finished() -> None:
            try:
                result = await recorder.result
            except Exception as exc:
                logger.error("recording %s could not be encoded: %s", recorder.id, exc)
                entry["error"] = str(exc)
                return
            entry["duration"] = round(result.duration, 3)
            for leg in legs:
                leg.recorders.pop(recorder.id, None)
            self.publish(
                ev.RecordingFinished(
                    first,
                    recording_id=result.recording_id,
                    path=result.path,
                    duration=result.duration,
                    mode=result.mode,
                    bridge_id=result.bridge_id,
                    reason=result.reason,
                )
            )

        def stopped() -> None:
            # Known the moment capture stops, before encoding: the CDR can be written at once
            entry["duration"] = round(recorder.duration, 3)

        recorder.on_stop = stopped
        self.spawn(finished())

    # ------------------------------------------------------------ introspection

    def health(self) -> dict[str, Any]:
        active = [leg for leg in self.legs.values() if leg.is_active]
        return {
            "status": "ok",
            "calls": len(active),
            "answered": sum(1 for leg in active if leg.state is LegState.ANSWERED),
            "bridges": len(self.media.bridges),
            "recordings_active": sum(1 for c in self.media.consumers if isinstance(c, Recorder)),
            "recordings_encoding": self.recordings.pending,
            "registration": self.sip.registration_state,
            "sip": dict(self.sip.stats),
            "media": dict(self.media.stats),
            "cdr_written": self.cdr.written,
            "event_seq": self.bus.last_seq,
        }
