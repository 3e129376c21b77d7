"""The only place that talks to the telephony engine's command API (docs/engine.md)."""

from __future__ import annotations

from typing import Any, cast

import httpx
from django.conf import settings


class EngineError(Exception):
    """The engine refused a command or could not be reached. ``code`` is the engine's error code."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"engine error {code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class EngineClient:
    """Typed methods for the engine commands the contact center uses."""

    def __init__(
        self, base_url: str | None = None, token: str | None = None, timeout: float = 10.0
    ) -> None:
        self.base_url = (base_url or settings.ENGINE_URL).rstrip("/")
        self.token = token if token is not None else settings.ENGINE_TOKEN
        self.timeout = timeout

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = httpx.request(
                method,
                f"{self.base_url}/v1{path}",
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise EngineError("unreachable", type(exc).__name__) from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                code, message = str(error.get("code")), str(error.get("message", ""))
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", f"HTTP {response.status_code}"
            raise EngineError(code, message, response.status_code)
        return response.json() if response.content else {}

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._request("GET", "/health"))

    def originate(
        self,
        to: str,
        *,
        ring_timeout: int = 30,
        app_data: dict[str, Any] | None = None,
        from_uri: str | None = None,
    ) -> dict[str, Any]:
        """Dial ``to`` (SIP URI or number); returns the new call object (state ``dialing``)."""
        body: dict[str, Any] = {"to": to, "ring_timeout": ring_timeout, "app_data": app_data or {}}
        if from_uri:
            body["from"] = from_uri
        return cast(dict[str, Any], self._request("POST", "/calls", body)["call"])

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
        with ``variables`` (automated calls). Returns the new call object (state ``dialing``)."""
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

    def validate_flow(self, flow: dict[str, Any]) -> list[str]:
        """The engine's own check of a flow document (``POST /v1/flows/validate``)."""
        body = cast(dict[str, Any], self._request("POST", "/flows/validate", {"flow": flow}))
        return [str(e) for e in body.get("errors", [])]

    def get_call(self, call_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._request("GET", f"/calls/{call_id}")["call"])

    def answer(self, call_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._request("POST", f"/calls/{call_id}/answer", {})["call"])

    def ring(self, call_id: str) -> None:
        self._request("POST", f"/calls/{call_id}/ring", {})

    def reject(self, call_id: str, *, code: int = 486) -> None:
        self._request("POST", f"/calls/{call_id}/reject", {"code": code})

    def play(self, call_id: str, items: list[dict[str, Any]], *, loop: bool = False) -> str:
        body = {"items": items, "loop": loop}
        return str(self._request("POST", f"/calls/{call_id}/play", body)["playback_id"])

    def stop_playback(self, call_id: str) -> None:
        self._request("POST", f"/calls/{call_id}/stop_playback", {})

    def hangup(self, call_id: str, *, cause: str = "normal") -> None:
        self._request("POST", f"/calls/{call_id}/hangup", {"cause": cause})

    def bridge(
        self, call_ids: list[str], *, record: bool = True, hangup_on_exit: bool = True
    ) -> dict[str, Any]:
        """Connect answered calls; with ``record`` the parties are recorded mixed. Without
        ``hangup_on_exit`` the others stay up when a party leaves (the application decides)."""
        body = {"call_ids": call_ids, "record": record, "hangup_on_exit": hangup_on_exit}
        return cast(dict[str, Any], self._request("POST", "/bridges", body))

    def run_flow(
        self, call_id: str, flow: dict[str, Any], *, variables: dict[str, Any] | None = None
    ) -> None:
        """Run an IVR flow (an inline flow document) on an answered call."""
        body = {"flow": flow, "variables": variables or {}}
        self._request("POST", f"/calls/{call_id}/run_flow", body)


def client() -> EngineClient:
    return EngineClient()
