"""Websockets: one call's live state (the call panel) and an agent's screen pops."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from careloop.contactcenter import events, queries


class CallConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """``/ws/cc/calls/<id>/``: the state of a call the user may see, then every change."""

    group = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        call_id = int(self.scope["url_route"]["kwargs"]["pk"])
        payload = await database_sync_to_async(self._payload)(user, call_id)
        if payload is None:
            await self.close(code=4404)
            return
        self.group = events.call_group(call_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "call.update", "call": payload})

    @staticmethod
    def _payload(user: Any, call_id: int) -> dict[str, Any] | None:
        if not user.has_perm("followup.work_task"):
            return None
        call = queries.calls_visible_to(user).filter(pk=call_id).first()
        return events.call_payload(call) if call is not None else None

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def call_update(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "call.update", "call": message["call"]})


class AgentConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """``/ws/cc/agent/``: the logged-in agent's calls and screen pops."""

    group = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = events.agent_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def call_update(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "call.update", "call": message["call"]})

    async def screen_pop(self, message: dict[str, Any]) -> None:
        await self.send_json(
            {"type": "screen.pop", "url": message["url"], "call_id": message["call_id"]}
        )
