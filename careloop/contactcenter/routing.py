"""Websocket routes of the contact center (live call state, screen pop)."""

websocket_urlpatterns: list = []
