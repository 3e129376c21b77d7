"""Live updates to browsers over Channels, sent after the transaction commits."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils.translation import gettext as _

from careloop.contactcenter.choices import RatingStatus
from careloop.contactcenter.models import Call


def call_group(call_id: int) -> str:
    return f"cc.call.{call_id}"


def agent_group(user_id: int) -> str:
    return f"cc.agent.{user_id}"


def call_payload(call: Call) -> dict[str, Any]:
    """What the browser may know about a call: no phone number, no names."""
    return {
        "id": call.pk,
        "state": call.state,
        "state_label": str(call.get_state_display()),
        "direction": call.direction,
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "duration": round(call.duration, 1) if call.duration is not None else None,
        "cause": call.cause,
        "recordings": [r.pk for r in call.recordings.all()],
        "rating_status": call.rating_status,
        "rating": call.rating,
        "rating_label": rating_label(call),
    }


def rating_label(call: Call) -> str:
    """What the panel says about the patient's satisfaction rating (F3.3)."""
    if call.rating is not None:
        return _("Patient's rating: %(rating)s/5") % {"rating": call.rating}
    if call.rating_status == RatingStatus.OFFERED:
        return str(_("The patient is rating the call"))
    if call.rating_status == RatingStatus.UNRATED:
        return str(_("No rating given"))
    return ""


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, message)


def push_call(call: Call) -> None:
    """After commit: the call's new state to its panel and to its agent."""

    def send() -> None:
        call.refresh_from_db()
        message = {"type": "call.update", "call": call_payload(call)}
        _send(call_group(call.pk), message)
        if call.agent_id:
            _send(agent_group(call.agent_id), message)

    transaction.on_commit(send)


def push_screen_pop(user_id: int, url: str, call_id: int) -> None:
    """After commit: open ``url`` on the agent's screen (F4.5)."""
    transaction.on_commit(
        lambda: _send(agent_group(user_id), {"type": "screen.pop", "url": url, "call_id": call_id})
    )
