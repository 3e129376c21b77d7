"""Websocket routes of the contact center (live call state, screen pop)."""

from typing import Any

from django.urls import path

from careloop.contactcenter import consumers

websocket_urlpatterns: list[Any] = [
    path("ws/cc/calls/<int:pk>/", consumers.CallConsumer.as_asgi()),
    path("ws/cc/agent/", consumers.AgentConsumer.as_asgi()),
]
