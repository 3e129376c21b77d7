"""Live progress of a campaign over Channels, sent after the transaction commits."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from careloop.campaigns import queries
from careloop.campaigns.models import Campaign


def campaign_group(campaign_id: int) -> str:
    return f"campaigns.campaign.{campaign_id}"


def progress_payload(campaign_id: int) -> dict[str, Any]:
    """What the detail page shows live: state and counts, no names or numbers."""
    campaign = Campaign.objects.get(pk=campaign_id)
    return {
        "id": campaign.pk,
        "state": campaign.state,
        "state_label": str(campaign.get_state_display()),
        **queries.progress(campaign).as_dict(),
    }


def _send(campaign_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "campaign.progress", "progress": progress_payload(campaign_id)}
    async_to_sync(layer.group_send)(campaign_group(campaign_id), message)


def push_progress(campaign_id: int) -> None:
    """After commit: the campaign's counts to every open detail page."""
    transaction.on_commit(lambda: _send(campaign_id))
