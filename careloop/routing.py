"""Websocket routes of every app, gathered in one place for the ASGI router."""

from careloop.contactcenter.routing import websocket_urlpatterns as contactcenter_ws

websocket_urlpatterns: list = [*contactcenter_ws]
