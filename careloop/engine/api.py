"""The engine's command API (``/v1``): JSON over HTTP and over one websocket, plus webhooks.

* HTTP: ``POST /v1/calls/{id}/play`` etc. — every route maps to a named command.
* Websocket ``/v1/events``: pushes event envelopes (``?since=SEQ`` replays missed ones,
  ``?types=call.*,cdr`` filters) and accepts the same commands as JSON messages
  ``{"id": 7, "command": "play", "call_id": "...", ...}``, answered with
  ``{"reply_to": 7, "status": 202, "body": {...}}``.
* Webhook: events POSTed in order as ``{"events": [...]}``, signed with HMAC-SHA256.

Every request needs ``Authorization: Bearer <token>`` (websocket: the header or ``?token=``).
docs/engine.md documents each command; a plain ASGI app keeps the engine free of a framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn

from careloop.engine import API_VERSION, ENGINE_VERSION
from careloop.engine import events as ev
from careloop.engine.call import CallEnded, CallStateError, GatherOptions, Leg
from careloop.engine.dialer import CampaignError, CampaignSpec
from careloop.engine.engine import Engine, EngineError
from careloop.engine.flow import FlowDocument, FlowError, load_flow, validate_flow
from careloop.engine.prompts import PromptError
from careloop.engine.tts import TtsError

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
Params = dict[str, Any]
Handler = Callable[[Engine, Params], Awaitable[tuple[int, Any]]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _require(params: Params, key: str, kind: type | tuple[type, ...] = str) -> Any:
    value = params.get(key)
    if (
        value is None
        or not isinstance(value, kind)
        or (isinstance(value, bool) and kind is not bool)
    ):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ApiError(400, "bad_request", f"{key!r} is required ({name})")
    return value


def _number(params: Params, key: str, default: float, low: float, high: float) -> float:
    value = params.get(key, default)
    if isinstance(value, str):
        # Query-string parameters arrive as text
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ApiError(400, "bad_request", f"{key!r} must be a number between {low} and {high}")
    return float(value)


def _flag(params: Params, key: str, default: bool) -> bool:
    """A boolean parameter; query-string text ``true``/``false``/``1``/``0`` accepted."""
    value = params.get(key, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _leg(engine: Engine, params: Params) -> Leg:
    leg = engine.get_leg(_require(params, "call_id"))
    engine.app_command(leg)
    return leg


def _flow(engine: Engine, params: Params, key: str = "flow") -> FlowDocument | None:
    spec = params.get(key)
    if spec is None:
        return None
    if isinstance(spec, dict):
        return load_flow(spec)
    if isinstance(spec, str):
        version = params.get("flow_version")
        return engine.flows.get(spec, int(version) if version is not None else None)
    raise ApiError(400, "bad_request", f"{key!r} is a flow id or a flow document")


def _items(params: Params, key: str = "items") -> list[dict[str, Any]]:
    items = params.get(key)
    if items is None and "text" in params:
        items = [{"text": params["text"]}]
    if items is None and "file" in params:
        items = [{"file": params["file"]}]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ApiError(
            400, "bad_request", f"{key!r}: a list of prompt items (text/file/digits/silence/tone)"
        )
    return items


# ---------------------------------------------------------------- command handlers


async def cmd_health(engine: Engine, _params: Params) -> tuple[int, Any]:
    return 200, {"api": API_VERSION, "engine": ENGINE_VERSION, **engine.health()}


async def cmd_list_calls(engine: Engine, params: Params) -> tuple[int, Any]:
    active_only = params.get("active", "true") not in ("false", "0", False)
    calls = [leg.describe() for leg in engine.legs.values() if leg.is_active or not active_only]
    return 200, {"calls": calls}


async def cmd_get_call(engine: Engine, params: Params) -> tuple[int, Any]:
    return 200, {"call": engine.get_leg(_require(params, "call_id")).describe()}


async def cmd_originate(engine: Engine, params: Params) -> tuple[int, Any]:
    headers = params.get("headers", {})
    if not isinstance(headers, dict) or not all(k.lower().startswith("x-") for k in headers):
        raise ApiError(400, "bad_request", "'headers' may only carry X- headers")
    leg = await engine.originate(
        _require(params, "to"),
        caller=params.get("from"),
        ring_timeout=_number(params, "ring_timeout", 30, 1, 600),
        headers={str(k): str(v) for k, v in headers.items()},
        app_data=dict(params.get("app_data", {})),
        flow=_flow(engine, params),
        variables=dict(params.get("variables", {})),
    )
    return 201, {"call": leg.describe()}


async def cmd_ring(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    leg.ring()
    return 200, {"call": leg.describe()}


async def cmd_answer(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    await leg.answer()
    return 200, {"call": leg.describe()}


async def cmd_reject(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    code = int(_number(params, "code", 486, 400, 699))
    await leg.reject(code)
    return 200, {"call": leg.describe()}


async def cmd_hangup(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    await leg.hangup(str(params.get("cause", "normal")))
    return 200, {"call": leg.describe()}


async def cmd_play(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    prompts = await engine.resolve_prompts(_items(params), voice=params.get("voice"))
    playback_id = uuid.uuid4().hex[:12]
    barge_in = _flag(params, "barge_in", False)
    loop = _flag(params, "loop", False)

    async def play() -> str:
        try:
            reason = await leg.play(prompts, barge_in=barge_in, loop=loop, player_id=playback_id)
        except CallEnded:
            reason = "hangup"
        engine.publish(ev.PlaybackFinished(leg.id, playback_id=playback_id, reason=reason))
        return reason

    if _flag(params, "wait", False):
        return 200, {"playback_id": playback_id, "reason": await play()}
    leg._require_media()
    leg.spawn(play())
    return 202, {"playback_id": playback_id}


async def cmd_stop_playback(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    channel = leg._require_media()
    wanted = params.get("playback_id")
    stopped = []
    for player in list(channel.players):
        if wanted is None or player.id == wanted:
            player.stop("stopped")
            stopped.append(player.id)
    return 200, {"stopped": stopped}


async def cmd_gather(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    options = GatherOptions(
        max_digits=int(_number(params, "max_digits", 1, 1, 64)),
        min_digits=int(_number(params, "min_digits", 1, 0, 64)),
        terminators=str(params.get("terminators", "#")),
        first_digit_timeout=_number(params, "first_digit_timeout", 5, 0.1, 600),
        inter_digit_timeout=_number(params, "inter_digit_timeout", 3, 0.1, 600),
        barge_in=_flag(params, "barge_in", True),
        flush=_flag(params, "flush", False),
    )
    prompts = (
        await engine.resolve_prompts(_items(params), voice=params.get("voice"))
        if "items" in params or "text" in params
        else None
    )
    gather_id = uuid.uuid4().hex[:12]

    async def gather() -> tuple[str, str]:
        try:
            result = await leg.gather(options, prompts)
            digits, reason = result.digits, result.reason
        except CallEnded:
            digits, reason = "", "hangup"
        engine.publish(ev.GatherFinished(leg.id, gather_id=gather_id, digits=digits, reason=reason))
        return digits, reason

    if _flag(params, "wait", True):
        digits, reason = await gather()
        return 200, {"gather_id": gather_id, "digits": digits, "reason": reason}
    leg._require_media()
    leg.spawn(gather())
    return 202, {"gather_id": gather_id}


async def cmd_record(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    max_duration = _number(params, "max_duration", 0, 0, 86400) or None
    recorder = leg.start_recording(mode=str(params.get("mode", "leg")), max_duration=max_duration)
    if max_duration:

        async def stop_when_full() -> None:
            await recorder.full.wait()
            if leg.recorders.pop(recorder.id, None) is not None:
                recorder.stop("max_duration")

        leg.spawn(stop_when_full())
    return 201, {"recording_id": recorder.id, "path": recorder.meta.ogg_path}


async def cmd_stop_recording(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    recording_id = _require(params, "recording_id")
    recorder = leg.recorders.pop(recording_id, None)
    if recorder is None:
        raise ApiError(404, "not_found", f"no active recording {recording_id!r} on this call")
    future = recorder.stop("stopped")
    body = {
        "recording_id": recorder.id,
        "path": recorder.meta.ogg_path,
        "duration": round(recorder.duration, 3),
    }
    if _flag(params, "wait", False):
        result = await future
        body["duration"] = round(result.duration, 3)
        return 200, body
    return 202, body


async def cmd_transfer(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    mode = params.get("mode", "bridge")
    if mode not in ("bridge", "refer"):
        raise ApiError(400, "bad_request", "mode is bridge or refer")
    target = _require(params, "target")
    timeout = _number(params, "ring_timeout", 30, 1, 600)
    if _flag(params, "wait", False):
        return 200, {"result": await engine.transfer(leg, target, mode=mode, ring_timeout=timeout)}
    engine.spawn(engine.transfer(leg, target, mode=mode, ring_timeout=timeout))
    return 202, {"target": target, "mode": mode}


async def cmd_hold(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    await leg.hold(music=_flag(params, "music", True))
    return 200, {"call": leg.describe()}


async def cmd_unhold(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    await leg.unhold()
    return 200, {"call": leg.describe()}


async def cmd_dtmf(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    digits = _require(params, "digits")
    if not re.fullmatch(r"[0-9*#A-Da-d]{1,32}", digits):
        raise ApiError(400, "bad_request", "digits: 1-32 of 0-9 * # A-D")
    method = params.get("method", "rfc4733")
    if method not in ("rfc4733", "info"):
        raise ApiError(400, "bad_request", "method is rfc4733 or info")
    await leg.send_dtmf(digits.upper(), method=method)
    return 200, {"sent": digits}


async def cmd_run_flow(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    flow = _flow(engine, params)
    if flow is None:
        raise ApiError(400, "bad_request", "'flow' is required")
    if leg.flow_task is not None and not leg.flow_task.done():
        raise ApiError(409, "conflict", "a flow is already running on this call")
    leg.flow_task = leg.spawn(engine.run_flow(leg, flow, dict(params.get("variables", {}))))
    return 202, {"flow_id": flow.id, "flow_version": flow.version}


async def cmd_bridge(engine: Engine, params: Params) -> tuple[int, Any]:
    call_ids = _require(params, "call_ids", list)
    legs = [engine.get_leg(str(cid)) for cid in call_ids]
    bridge = engine.create_bridge(
        legs,
        record=_flag(params, "record", False),
        hangup_on_exit=_flag(params, "hangup_on_exit", True),
    )
    body: dict[str, Any] = {
        "bridge_id": bridge.id,
        "members": {k: m.role for k, m in bridge.members.items()},
    }
    recorder = engine.bridge_recorders.get(bridge.id)
    if recorder is not None:
        body.update(recording_id=recorder.id, path=recorder.meta.ogg_path)
    return 201, body


async def cmd_get_bridge(engine: Engine, params: Params) -> tuple[int, Any]:
    bridge = engine.get_bridge(_require(params, "bridge_id"))
    recorder = engine.bridge_recorders.get(bridge.id)
    return 200, {
        "bridge_id": bridge.id,
        "members": {
            k: {"role": m.role, "muted": m.muted, "whisper_to": m.whisper_to}
            for k, m in bridge.members.items()
        },
        "recording_id": recorder.id if recorder else None,
    }


async def cmd_bridge_join(engine: Engine, params: Params) -> tuple[int, Any]:
    bridge = engine.get_bridge(_require(params, "bridge_id"))
    leg = _leg(engine, params)
    engine.join_bridge(
        bridge, leg, role=str(params.get("role", "party")), whisper_to=params.get("whisper_to")
    )
    return 200, {"bridge_id": bridge.id, "members": {k: m.role for k, m in bridge.members.items()}}


async def cmd_bridge_leave(engine: Engine, params: Params) -> tuple[int, Any]:
    leg = _leg(engine, params)
    engine.leave_bridge(leg, keep_others=not _flag(params, "hangup_others", False))
    return 200, {"call": leg.describe()}


async def cmd_bridge_record(engine: Engine, params: Params) -> tuple[int, Any]:
    bridge = engine.get_bridge(_require(params, "bridge_id"))
    recorder = engine.record_bridge(bridge)
    return 201, {"recording_id": recorder.id, "path": recorder.meta.ogg_path}


async def cmd_bridge_destroy(engine: Engine, params: Params) -> tuple[int, Any]:
    bridge_id = _require(params, "bridge_id")
    engine.get_bridge(bridge_id)
    engine.destroy_bridge(bridge_id, hangup=_flag(params, "hangup", False))
    return 200, {"bridge_id": bridge_id, "destroyed": True}


async def cmd_list_flows(engine: Engine, _params: Params) -> tuple[int, Any]:
    return 200, {"flows": engine.flows.summary()}


async def cmd_get_flow(engine: Engine, params: Params) -> tuple[int, Any]:
    version = params.get("version")
    flow = engine.flows.get(_require(params, "flow_id"), int(version) if version else None)
    return 200, {"flow": flow.raw}


async def cmd_put_flow(engine: Engine, params: Params) -> tuple[int, Any]:
    doc = params.get("flow", params)
    doc = {k: v for k, v in doc.items() if k != "flow_id"} if isinstance(doc, dict) else doc
    if isinstance(doc, dict) and params.get("flow_id") and doc.get("id") != params["flow_id"]:
        raise ApiError(400, "bad_request", "the document's id differs from the URL")
    flow = engine.flows.put(doc)
    return 201, {"flow_id": flow.id, "version": flow.version}


async def cmd_validate_flow(_engine: Engine, params: Params) -> tuple[int, Any]:
    errors = validate_flow(params.get("flow", params))
    return 200, {"valid": not errors, "errors": errors}


async def cmd_campaign_start(engine: Engine, params: Params) -> tuple[int, Any]:
    flow = _flow(engine, params)
    spec = CampaignSpec.from_dict(params, flow, engine.config.timezone)
    campaign = engine.dialer.start(spec)
    return 201, campaign.describe()


async def cmd_campaign_get(engine: Engine, params: Params) -> tuple[int, Any]:
    campaign = engine.dialer.get(_require(params, "campaign_id"))
    if campaign is None:
        raise ApiError(404, "not_found", "no such campaign")
    return 200, campaign.describe()


def _campaign_action(action: str) -> Handler:
    async def handler(engine: Engine, params: Params) -> tuple[int, Any]:
        campaign = engine.dialer.get(_require(params, "campaign_id"))
        if campaign is None:
            raise ApiError(404, "not_found", "no such campaign")
        getattr(campaign, action)()
        return 200, {"campaign_id": campaign.spec.id, "state": campaign.state}

    return handler


async def cmd_cdrs(engine: Engine, params: Params) -> tuple[int, Any]:
    await engine.cdr.flush()
    limit = int(_number(params, "limit", 1000, 1, 100000))
    return 200, {"cdrs": engine.cdr.records(since=params.get("since"), limit=limit)}


COMMANDS: dict[str, Handler] = {
    "health": cmd_health,
    "list_calls": cmd_list_calls,
    "get_call": cmd_get_call,
    "originate": cmd_originate,
    "ring": cmd_ring,
    "answer": cmd_answer,
    "reject": cmd_reject,
    "hangup": cmd_hangup,
    "play": cmd_play,
    "stop_playback": cmd_stop_playback,
    "gather": cmd_gather,
    "record": cmd_record,
    "stop_recording": cmd_stop_recording,
    "transfer": cmd_transfer,
    "hold": cmd_hold,
    "unhold": cmd_unhold,
    "dtmf": cmd_dtmf,
    "run_flow": cmd_run_flow,
    "bridge": cmd_bridge,
    "get_bridge": cmd_get_bridge,
    "bridge_join": cmd_bridge_join,
    "bridge_leave": cmd_bridge_leave,
    "bridge_record": cmd_bridge_record,
    "bridge_destroy": cmd_bridge_destroy,
    "list_flows": cmd_list_flows,
    "get_flow": cmd_get_flow,
    "put_flow": cmd_put_flow,
    "validate_flow": cmd_validate_flow,
    "campaign_start": cmd_campaign_start,
    "campaign_get": cmd_campaign_get,
    "campaign_pause": _campaign_action("pause"),
    "campaign_resume": _campaign_action("resume"),
    "campaign_cancel": _campaign_action("cancel"),
    "cdrs": cmd_cdrs,
}

CALL_ACTIONS = {
    "ring",
    "answer",
    "reject",
    "hangup",
    "play",
    "stop_playback",
    "gather",
    "record",
    "stop_recording",
    "transfer",
    "hold",
    "unhold",
    "dtmf",
    "run_flow",
    "bridge_leave",
}

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/v1/health$"), "health"),
    ("GET", re.compile(r"^/v1/calls$"), "list_calls"),
    ("POST", re.compile(r"^/v1/calls$"), "originate"),
    ("GET", re.compile(r"^/v1/calls/(?P<call_id>[0-9a-f]{16})$"), "get_call"),
    ("POST", re.compile(r"^/v1/calls/(?P<call_id>[0-9a-f]{16})/(?P<action>[a-z_]+)$"), "*call"),
    ("POST", re.compile(r"^/v1/bridges$"), "bridge"),
    ("GET", re.compile(r"^/v1/bridges/(?P<bridge_id>[0-9a-f]{16})$"), "get_bridge"),
    ("DELETE", re.compile(r"^/v1/bridges/(?P<bridge_id>[0-9a-f]{16})$"), "bridge_destroy"),
    ("POST", re.compile(r"^/v1/bridges/(?P<bridge_id>[0-9a-f]{16})/join$"), "bridge_join"),
    ("POST", re.compile(r"^/v1/bridges/(?P<bridge_id>[0-9a-f]{16})/record$"), "bridge_record"),
    ("GET", re.compile(r"^/v1/flows$"), "list_flows"),
    ("POST", re.compile(r"^/v1/flows/validate$"), "validate_flow"),
    ("GET", re.compile(r"^/v1/flows/(?P<flow_id>[A-Za-z0-9_.\-]+)$"), "get_flow"),
    ("PUT", re.compile(r"^/v1/flows/(?P<flow_id>[A-Za-z0-9_.\-]+)$"), "put_flow"),
    ("POST", re.compile(r"^/v1/campaigns$"), "campaign_start"),
    ("GET", re.compile(r"^/v1/campaigns/(?P<campaign_id>[A-Za-z0-9_.\-]+)$"), "campaign_get"),
    (
        "POST",
        re.compile(
            r"^/v1/campaigns/(?P<campaign_id>[A-Za-z0-9_.\-]+)/(?P<action>pause|resume|cancel)$"
        ),
        "*campaign",
    ),
    ("GET", re.compile(r"^/v1/cdrs$"), "cdrs"),
    ("GET", re.compile(r"^/v1/recordings/(?P<recording_id>[0-9a-f]{16})$"), "*recording"),
]


async def execute(engine: Engine, command: str, params: Params) -> tuple[int, Any]:
    """Run one command; every failure becomes ``(status, {"error": {...}})``."""
    handler = COMMANDS.get(command)
    if handler is None:
        return 404, {"error": {"code": "unknown_command", "message": f"no command {command!r}"}}
    try:
        return await handler(engine, params)
    except ApiError as exc:
        return exc.status, {"error": {"code": exc.code, "message": exc.message}}
    except EngineError as exc:
        code = {404: "not_found", 409: "conflict", 503: "unavailable"}.get(
            exc.status, "bad_request"
        )
        return exc.status, {"error": {"code": code, "message": str(exc)}}
    except CallStateError as exc:
        return 409, {"error": {"code": "wrong_state", "message": str(exc)}}
    except CallEnded:
        return 409, {"error": {"code": "call_ended", "message": "the call has ended"}}
    except (FlowError, CampaignError) as exc:
        errors = exc.errors if isinstance(exc, FlowError) else [str(exc)]
        return 400, {"error": {"code": "invalid", "message": str(exc), "errors": errors}}
    except (PromptError, TtsError) as exc:
        return 422, {"error": {"code": "prompt", "message": str(exc)}}
    except (ValueError, TypeError) as exc:
        return 400, {"error": {"code": "bad_request", "message": str(exc)}}
    except Exception:
        logger.exception("command %s failed", command)
        return 500, {"error": {"code": "internal", "message": "internal error (see engine log)"}}


def match_route(method: str, path: str) -> tuple[str, Params] | None:
    for route_method, pattern, command in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            params = dict(match.groupdict())
            if command == "*call":
                action = params.pop("action")
                if action not in CALL_ACTIONS:
                    return None
                command = action
            elif command == "*campaign":
                command = f"campaign_{params.pop('action')}"
            return command, params
    return None


class ApiApp:
    """The ASGI application."""

    def __init__(self, engine: Engine, token: str) -> None:
        self.engine = engine
        self.token = token

    def _authorized(self, headers: list[tuple[bytes, bytes]], query: Params) -> bool:
        supplied = ""
        for name, value in headers:
            if name.lower() == b"authorization":
                text = value.decode("latin-1")
                if text.lower().startswith("bearer "):
                    supplied = text[7:].strip()
        if not supplied:
            supplied = str(query.get("token", ""))
        return bool(self.token) and hmac.compare_digest(supplied.encode(), self.token.encode())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _respond(
        self, send: Any, status: int, body: Any, content_type: str = "application/json"
    ) -> None:
        payload = (
            body
            if isinstance(body, bytes)
            else json.dumps(body, ensure_ascii=False).encode("utf-8")
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        if not self._authorized(scope.get("headers", []), {}):
            await self._respond(
                send, 401, {"error": {"code": "unauthorized", "message": "bearer token required"}}
            )
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await self._respond(
                    send, 413, {"error": {"code": "too_large", "message": "body over 1 MiB"}}
                )
                return
            if not message.get("more_body"):
                break
        routed = match_route(scope["method"], scope["path"])
        if routed is None:
            await self._respond(
                send,
                404,
                {
                    "error": {
                        "code": "not_found",
                        "message": f"no route {scope['method']} {scope['path']}",
                    }
                },
            )
            return
        command, params = routed
        if command == "*recording":
            await self._recording(send, params["recording_id"])
            return
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                await self._respond(
                    send, 400, {"error": {"code": "bad_json", "message": "body is not JSON"}}
                )
                return
            if not isinstance(data, dict):
                await self._respond(
                    send,
                    400,
                    {"error": {"code": "bad_json", "message": "body must be a JSON object"}},
                )
                return
            if command == "put_flow":
                data = {"flow": data}
            params = {**query, **data, **params}
        else:
            params = {**query, **params}
        status, result = await execute(self.engine, command, params)
        await self._respond(send, status, result)

    async def _recording(self, send: Any, recording_id: str) -> None:
        root = self.engine.recordings.root
        matches = list(root.rglob(f"{recording_id}.ogg")) if root.exists() else []
        if not matches:
            await self._respond(
                send,
                404,
                {
                    "error": {
                        "code": "not_found",
                        "message": "recording not found (or still encoding)",
                    }
                },
            )
            return
        data = await asyncio.to_thread(Path(matches[0]).read_bytes)
        await self._respond(send, 200, data, "audio/ogg")

    async def _websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        if scope["path"] != "/v1/events" or not self._authorized(scope.get("headers", []), query):
            await send(
                {"type": "websocket.close", "code": 4401 if scope["path"] == "/v1/events" else 4404}
            )
            return
        since = int(query["since"]) if query.get("since", "").isdigit() else None
        types = (
            frozenset(t.strip() for t in query["types"].split(",") if t.strip())
            if query.get("types")
            else None
        )
        await send({"type": "websocket.accept"})
        bus = self.engine.bus
        hello = {
            "type": "hello",
            "api": API_VERSION,
            "seq": bus.last_seq,
            "gap": since is not None and bus.history_gap(since),
        }
        await send({"type": "websocket.send", "text": json.dumps(hello)})
        sub = bus.subscribe(since=since, types=types)
        lock = asyncio.Lock()

        async def push() -> None:
            async for item in sub:
                async with lock:
                    await send(
                        {"type": "websocket.send", "text": json.dumps(item, ensure_ascii=False)}
                    )
            if sub.overflowed:
                async with lock:
                    await send({"type": "websocket.close", "code": 4008})

        async def run_command(message: dict[str, Any]) -> None:
            command = str(message.pop("command", ""))
            reply_to = message.pop("id", None)
            status, body = await execute(self.engine, command, message)
            async with lock:
                await send(
                    {
                        "type": "websocket.send",
                        "text": json.dumps(
                            {"reply_to": reply_to, "status": status, "body": body},
                            ensure_ascii=False,
                        ),
                    }
                )

        pusher = asyncio.ensure_future(push())
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text") or (message.get("bytes") or b"").decode(
                    "utf-8", "replace"
                )
                try:
                    data = json.loads(text)
                    if not isinstance(data, dict):
                        raise ValueError("not an object")
                except ValueError:
                    async with lock:
                        await send(
                            {
                                "type": "websocket.send",
                                "text": json.dumps(
                                    {
                                        "reply_to": None,
                                        "status": 400,
                                        "body": {
                                            "error": {
                                                "code": "bad_json",
                                                "message": "send JSON objects",
                                            }
                                        },
                                    }
                                ),
                            }
                        )
                    continue
                task = asyncio.ensure_future(run_command(data))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            sub.close()
            pusher.cancel()
            for task in running:
                task.cancel()


class _QuietServer(uvicorn.Server):
    # The engine owns SIGINT/SIGTERM (it must hang calls up cleanly); uvicorn must not grab them
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """uvicorn serving :class:`ApiApp` inside the engine's event loop."""

    def __init__(self, engine: Engine, listen: tuple[str, int], token: str) -> None:
        self.app = ApiApp(engine, token)
        config = uvicorn.Config(
            self.app,
            host=listen[0],
            port=listen[1],
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            access_log=False,
        )
        self.server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self.port = listen[1]

    @property
    def url(self) -> str:
        host = self.server.config.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("API server did not start")
            await asyncio.sleep(0.01)
        for server in self.server.servers:
            for sock in server.sockets:
                self.port = int(sock.getsockname()[1])
        logger.info("command API on %s", self.url)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except TimeoutError:
                self._task.cancel()


class WebhookNotifier:
    """POSTs events to the application, in order, batched, retried with backoff."""

    def __init__(
        self, bus: ev.EventBus, url: str, secret: str | None, *, max_batch: int = 100
    ) -> None:
        self.bus = bus
        self.url = url
        self.secret = secret
        self.max_batch = max_batch
        self.delivered = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None
        self._sub: ev.Subscription | None = None

    def start(self) -> None:
        self._sub = self.bus.subscribe(maxsize=100000)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def sign(self, body: bytes) -> str:
        assert self.secret is not None
        return "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()

    async def _run(self) -> None:
        assert self._sub is not None
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                first = await self._sub.get()
                if first is None:
                    return
                batch = [first]
                while len(batch) < self.max_batch and not self._sub._queue.empty():
                    item = self._sub._queue.get_nowait()
                    if item is None:
                        break
                    batch.append(item)
                await self._deliver(client, batch)

    async def _deliver(self, client: httpx.AsyncClient, batch: list[dict[str, Any]]) -> None:
        body = json.dumps({"events": batch}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers["X-CareLoop-Signature"] = self.sign(body)
        delay = 0.5
        for attempt in range(6):
            try:
                response = await client.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    self.delivered += len(batch)
                    return
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            logger.warning(
                "webhook delivery of events %s-%s failed (%s), attempt %d",
                batch[0]["seq"],
                batch[-1]["seq"],
                reason,
                attempt + 1,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
        self.failed += len(batch)
        logger.error(
            "webhook gave up on events %s-%s; they remain in /v1/events history and the CDR file",
            batch[0]["seq"],
            batch[-1]["seq"],
        )

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
