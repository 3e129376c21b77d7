"""Runs a :class:`~careloop.engine.flow.FlowDocument` on one answered leg.

Each node handler returns the id of the next node, or ``None`` to stop. The path taken is
published as ``flow.step`` events and kept in the leg's CDR; the run ends with one
``flow.finished`` event whose ``outcome`` says why.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

import httpx

from careloop.engine import events as ev
from careloop.engine.call import CallEnded, GatherOptions, Leg, LegState
from careloop.engine.flow import FlowDocument, render_text, render_value
from careloop.engine.prompts import Prompt
from careloop.engine.schedule import Calendar, Window

if TYPE_CHECKING:
    from careloop.engine.engine import Engine

logger = logging.getLogger(__name__)

MAX_STEPS = 1000
MAX_PATH = 200


class FlowAbort(Exception):
    """Stop the run with an outcome (a terminal node or a failure)."""

    def __init__(self, outcome: str, error: str = "") -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.error = error


class FlowRunner:
    """Executes one flow on one leg; see the module docstring."""

    def __init__(
        self, engine: Engine, leg: Leg, flow: FlowDocument, variables: dict[str, Any] | None = None
    ) -> None:
        self.engine = engine
        self.leg = leg
        self.flow = flow
        self.vars: dict[str, Any] = {
            "caller": leg.caller,
            "callee": leg.callee,
            "call_id": leg.id,
            "direction": leg.direction,
        }
        self.vars.update(variables or {})
        self.path: list[str] = []
        self.node_id = flow.start
        self.outcome = "completed"

    async def run(self) -> str:
        flow = self.flow
        leg = self.leg
        # Until the run says otherwise, a CDR written mid-flow means the caller hung up
        leg.flow_info = {
            "id": flow.id,
            "version": flow.version,
            "outcome": "caller_hangup",
            "path": self.path,
        }
        # Journaled so a CDR recovered after a crash still says which flow was running
        self.engine.cdr.leg_updated(
            leg.id, flow={"id": flow.id, "version": flow.version, "outcome": "interrupted"}
        )
        error = ""
        try:
            if leg.state in (LegState.OFFERED, LegState.RINGING):
                await leg.answer()
            node_id: str | None = flow.start
            steps = 0
            while node_id is not None:
                steps += 1
                if steps > MAX_STEPS:
                    raise FlowAbort("error", f"more than {MAX_STEPS} steps (a loop without input?)")
                node = flow.nodes[node_id]
                self.node_id = node_id
                if len(self.path) < MAX_PATH:
                    self.path.append(node_id)
                self.engine.publish(
                    ev.FlowStep(
                        leg.id,
                        flow_id=flow.id,
                        flow_version=flow.version,
                        node=node_id,
                        node_type=node["type"],
                    )
                )
                handler = getattr(self, f"_node_{node['type']}")
                node_id = await handler(node)
            if leg.is_active and self.outcome == "completed":
                self._outcome("hangup")
                await leg.hangup("normal")
        except FlowAbort as abort:
            self.outcome = abort.outcome
            error = abort.error
            if abort.outcome == "error" and leg.is_active:
                self._outcome("error")
                logger.warning(
                    "flow %s failed on leg %s at %s: %s", flow.id, leg.id, self.node_id, error
                )
                await leg.hangup("error")
        except CallEnded:
            if self.outcome == "completed":
                self.outcome = (
                    "caller_hangup" if leg.hangup_by == "remote" else (leg.cause or "ended")
                )
        except asyncio.CancelledError:
            self.outcome = "cancelled"
            raise
        except Exception as exc:
            logger.exception("flow %s crashed on leg %s at node %s", flow.id, leg.id, self.node_id)
            self._outcome("error")
            error = f"{type(exc).__name__}: {exc}"
            if leg.is_active:
                await leg.hangup("error")
        finally:
            leg.flow_info["outcome"] = self.outcome
            self.engine.publish(
                ev.FlowFinished(
                    leg.id,
                    flow_id=flow.id,
                    flow_version=flow.version,
                    outcome=self.outcome,
                    node=self.node_id,
                    variables=_public_vars(self.vars),
                    error=error,
                )
            )
        return self.outcome

    # ------------------------------------------------------------ helpers

    def _outcome(self, outcome: str) -> None:
        # Set before hanging up: the CDR is written during the hangup
        self.outcome = outcome
        self.leg.flow_info["outcome"] = outcome

    def _prompt_items(self, spec: Any, depth: int = 0) -> list[dict[str, Any]]:
        if depth > 5:
            raise FlowAbort("error", "named prompts nest too deeply")
        if spec is None:
            return []
        raw = spec if isinstance(spec, list) else [spec]
        items: list[dict[str, Any]] = []
        for item in raw:
            if isinstance(item, str):
                items.append({"text": render_text(item, self.vars)})
            elif "prompt" in item:
                items += self._prompt_items(self.flow.prompts[item["prompt"]], depth + 1)
            else:
                rendered = dict(item)
                for key in ("text", "digits", "file"):
                    if key in rendered:
                        rendered[key] = render_text(str(rendered[key]), self.vars)
                items.append(rendered)
        return [i for i in items if not ("text" in i and not i["text"].strip())]

    async def _prompts(self, spec: Any) -> list[Prompt]:
        items = self._prompt_items(spec)
        if not items:
            return []
        return await self.engine.resolve_prompts(items, voice=self.flow.voice)

    async def _say(self, spec: Any, *, barge_in: bool = False) -> None:
        prompts = await self._prompts(spec)
        if prompts:
            await self.leg.play(prompts, barge_in=barge_in)

    def _retry_prompt(self, node: dict[str, Any], key: str) -> Any:
        if key in node:
            return node[key]
        if key in self.flow.prompts:
            return {"prompt": key}
        return None

    # ------------------------------------------------------------ nodes

    async def _node_say(self, node: dict[str, Any]) -> str | None:
        await self._say(node["say"], barge_in=bool(node.get("barge_in", False)))
        return str(node["next"])

    async def _node_play(self, node: dict[str, Any]) -> str | None:
        spec = node.get("say", {"file": node.get("file")})
        await self._say(spec, barge_in=bool(node.get("barge_in", False)))
        return str(node["next"])

    async def _node_menu(self, node: dict[str, Any]) -> str | None:
        options: dict[str, Any] = node["options"]
        attempts = int(self.flow.setting(node, "max_attempts", 3))
        timeout = float(
            self.flow.setting(node, "timeout", self.flow.settings.get("first_digit_timeout", 5))
        )
        prompts = await self._prompts(node["say"])
        for attempt in range(attempts):
            result = await self.leg.gather(
                GatherOptions(
                    max_digits=1, terminators="", first_digit_timeout=timeout, barge_in=True
                ),
                prompts,
            )
            choice = options.get(result.digits) if result.digits else None
            if choice is not None:
                if node.get("var"):
                    self.vars[node["var"]] = result.digits
                if isinstance(choice, dict):
                    self.vars.update(render_value(choice.get("set", {}), self.vars))
                    return str(choice["next"])
                return str(choice)
            retry = self._retry_prompt(node, "no_input" if not result.digits else "invalid")
            if attempt + 1 < attempts and retry is not None:
                await self._say(retry)
        return node.get("on_failure")

    async def _node_gather(self, node: dict[str, Any]) -> str | None:
        attempts = int(self.flow.setting(node, "max_attempts", 3))
        options = GatherOptions(
            max_digits=int(node.get("max_digits", 32)),
            min_digits=int(node.get("min_digits", 1)),
            terminators=str(node.get("terminators", "#")),
            first_digit_timeout=float(self.flow.setting(node, "first_digit_timeout", 5)),
            inter_digit_timeout=float(self.flow.setting(node, "inter_digit_timeout", 3)),
            barge_in=bool(node.get("barge_in", True)),
        )
        pattern = re.compile(node["pattern"]) if "pattern" in node else None
        prompts = await self._prompts(node["say"])
        for attempt in range(attempts):
            result = await self.leg.gather(options, prompts)
            digits = result.digits
            if len(digits) >= options.min_digits and (pattern is None or pattern.fullmatch(digits)):
                self.vars[node["var"]] = digits
                return str(node["next"])
            retry = self._retry_prompt(node, "no_input" if not digits else "invalid")
            if attempt + 1 < attempts and retry is not None:
                await self._say(retry)
        self.vars[node["var"]] = ""
        return node.get("on_failure")

    async def _node_switch(self, node: dict[str, Any]) -> str | None:
        value = render_value(node["value"], self.vars)
        if isinstance(value, bool):
            key = "true" if value else "false"
        elif value is None:
            key = ""
        else:
            key = str(value)
        return str(node["cases"].get(key, node["default"]))

    async def _node_time(self, node: dict[str, Any]) -> str | None:
        now = self.engine.now()
        calendar = self.flow.calendars.get(node.get("calendar", "")) or Calendar(
            timezone=self.flow.settings.get("timezone", self.engine.config.timezone)
        )
        holiday = calendar.is_holiday(now)
        if "rules" in node:
            if holiday and "holiday" in node:
                return str(node["holiday"])
            for rule in node["rules"]:
                if calendar.is_open(now, [Window.from_dict(rule)]):
                    return str(rule["next"])
            return str(node["default"])
        if holiday:
            return str(node.get("holiday", node["closed"]))
        return str(node["open"] if calendar.is_open(now) else node["closed"])

    async def _node_set(self, node: dict[str, Any]) -> str | None:
        self.vars.update(render_value(node.get("vars", {}), self.vars))
        for name in node.get("increment", []):
            try:
                self.vars[name] = int(self.vars.get(name) or 0) + 1
            except (TypeError, ValueError):
                self.vars[name] = 1
        return str(node["next"])

    async def _node_http(self, node: dict[str, Any]) -> str | None:
        url = render_text(node["url"], self.vars)
        method = node.get("method", "POST")
        body = render_value(node.get("body", {}), self.vars)
        timeout = float(node.get("timeout", 5))
        self.vars.pop("http_error", None)
        try:
            status, data = await self.engine.call_application(
                method,
                url,
                body,
                timeout=timeout,
                call_id=self.leg.id,
                flow_id=self.flow.id,
                node=self.node_id,
            )
        except (httpx.HTTPError, ValueError) as exc:
            self.vars["http_status"] = 0
            self.vars["http_error"] = type(exc).__name__
            logger.warning(
                "flow %s http node %s failed: %s", self.flow.id, self.node_id, type(exc).__name__
            )
            return node.get("on_error")
        self.vars["http_status"] = status
        self.vars[node["var"]] = data
        if not 200 <= status < 300:
            self.vars["http_error"] = f"HTTP {status}"
            return node.get("on_error")
        return str(node["next"])

    async def _node_record(self, node: dict[str, Any]) -> str | None:
        if "say" in node:
            await self._say(node["say"])
        beep = await self.engine.beep() if node.get("beep", True) else None
        recorder, reason = await self.leg.record_message(
            max_duration=float(node.get("max_duration", 60)),
            silence_timeout=float(node.get("silence_timeout", 5)),
            terminators=str(node.get("terminators", "#")),
            beep=beep,
        )
        self.vars[node["var"]] = {
            "recording_id": recorder.id,
            "path": recorder.meta.ogg_path,
            "duration": round(recorder.duration, 3),
            "reason": reason,
        }
        return str(node["next"])

    async def _node_route(self, node: dict[str, Any]) -> str | None:
        target: dict[str, Any] = {
            k: render_value(node[k], self.vars)
            for k in ("queue", "agent", "skills", "priority", "data")
            if k in node
        }
        taken = await self.engine.route(
            self.leg,
            target,
            _public_vars(self.vars),
            music=bool(node.get("hold_music", True)),
            timeout=float(node.get("timeout", 600)),
        )
        if taken:
            self._outcome("routed")
            raise FlowAbort("routed")
        if node.get("on_timeout"):
            return str(node["on_timeout"])
        self._outcome("route_timeout")
        await self.leg.hangup("route_timeout")
        raise FlowAbort("route_timeout")

    async def _node_transfer(self, node: dict[str, Any]) -> str | None:
        target = render_text(node["target"], self.vars)
        if "say" in node:
            await self._say(node["say"])
        # A successful REFER ends the leg inside transfer(): the CDR must already say why
        self.leg.flow_info["outcome"] = "transferred"
        try:
            result = await self.engine.transfer(
                self.leg,
                target,
                mode=node.get("mode", "bridge"),
                ring_timeout=float(node.get("timeout", 30)),
            )
        except CallEnded:
            if self.leg.cause != "transferred":
                self.leg.flow_info["outcome"] = "caller_hangup"
            raise
        self.vars["transfer_result"] = result
        if result in ("transferred", "bridged"):
            self._outcome("transferred")
            raise FlowAbort("transferred")
        self.leg.flow_info["outcome"] = "caller_hangup"
        return node.get("on_failure", node.get("next"))

    async def _node_hangup(self, node: dict[str, Any]) -> str | None:
        if "say" in node:
            await self._say(node["say"])
        self._outcome("hangup")
        await self.leg.hangup(str(node.get("cause", "normal")))
        raise FlowAbort("hangup")


def _public_vars(variables: dict[str, Any]) -> dict[str, Any]:
    """Variables to publish (JSON-safe values only)."""
    out: dict[str, Any] = {}
    for key, value in variables.items():
        if (
            isinstance(value, str | int | float | bool)
            or value is None
            or isinstance(value, dict | list)
        ):
            out[key] = value
        else:
            out[key] = str(value)
    return out


__all__ = ["FlowAbort", "FlowRunner"]
