"""Websocket routes of every app, gathered in one place for the ASGI router."""

from careloop.campaigns.routing import websocket_urlpatterns as campaigns_ws
from careloop.contactcenter.routing import websocket_urlpatterns as contactcenter_ws

websocket_urlpatterns: list = [*contactcenter_ws, *campaigns_ws]
