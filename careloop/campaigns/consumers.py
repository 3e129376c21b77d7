"""Websocket: a campaign's live progress on its detail page."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from careloop.campaigns import events, queries


class ProgressConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """``/ws/campaigns/<id>/``: the counts of a campaign the user may see, then every change."""

    group = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        campaign_id = int(self.scope["url_route"]["kwargs"]["pk"])
        payload = await database_sync_to_async(self._payload)(user, campaign_id)
        if payload is None:
            await self.close(code=4404)
            return
        self.group = events.campaign_group(campaign_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "campaign.progress", "progress": payload})

    @staticmethod
    def _payload(user: Any, campaign_id: int) -> dict[str, Any] | None:
        if not user.has_perm("campaigns.view_campaign"):
            return None
        if not queries.campaigns_visible_to(user).filter(pk=campaign_id).exists():
            return None
        return events.progress_payload(campaign_id)

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def campaign_progress(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "campaign.progress", "progress": message["progress"]})
