"""The engine commands automated calls need beyond the contact center's client.

``careloop.contactcenter.engine_client.EngineClient`` is the one HTTP client of the engine's
command API (docs/engine.md); automated calls also originate *with a flow*, record a leg and
validate flow documents. Those commands are added here on a subclass so the contact center's
module stays as it is; they could move into ``EngineClient`` later without changing callers.
"""

from __future__ import annotations

from typing import Any, cast

from careloop.contactcenter.engine_client import EngineClient, EngineError

__all__ = ["EngineError", "OutreachEngine", "client"]


class OutreachEngine(EngineClient):
    def originate_flow(
        self,
        to: str,
        *,
        flow: dict[str, Any] | str,
        variables: dict[str, Any],
        app_data: dict[str, Any],
        ring_timeout: int = 30,
        from_uri: str | None = None,
    ) -> dict[str, Any]:
        """Dial ``to``; once answered the engine runs ``flow`` (a document or a stored flow id)
        with ``variables``. Returns the new call object (state ``dialing``)."""
        body: dict[str, Any] = {
            "to": to,
            "ring_timeout": ring_timeout,
            "app_data": app_data,
            "flow": flow,
            "variables": variables,
        }
        if from_uri:
            body["from"] = from_uri
        return cast(dict[str, Any], self._request("POST", "/calls", body)["call"])

    def record(self, call_id: str, *, mode: str = "both") -> dict[str, Any]:
        """Record an answered leg (``both``: what the patient hears and says)."""
        return cast(
            dict[str, Any], self._request("POST", f"/calls/{call_id}/record", {"mode": mode})
        )

    def originate_agent(
        self, to: str, *, app_data: dict[str, Any], ring_timeout: int = 30
    ) -> dict[str, Any]:
        return self.originate(to, ring_timeout=ring_timeout, app_data=app_data)

    def validate_flow(self, flow: dict[str, Any]) -> list[str]:
        """The engine's own check of a flow document (``POST /v1/flows/validate``)."""
        body = cast(dict[str, Any], self._request("POST", "/flows/validate", {"flow": flow}))
        return [str(e) for e in body.get("errors", [])]


def client() -> OutreachEngine:
    return OutreachEngine()
