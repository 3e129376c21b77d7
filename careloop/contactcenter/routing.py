"""Websocket routes of the contact center (live call state, screen pop)."""

from django.urls import path

from careloop.contactcenter import consumers

websocket_urlpatterns: list = [
    path("ws/cc/calls/<int:pk>/", consumers.CallConsumer.as_asgi()),
    path("ws/cc/agent/", consumers.AgentConsumer.as_asgi()),
]
