"""Websocket routes of campaigns (live progress)."""

from typing import Any

from django.urls import path

from careloop.campaigns import consumers

websocket_urlpatterns: list[Any] = [
    path("ws/campaigns/<int:pk>/", consumers.ProgressConsumer.as_asgi()),
]
