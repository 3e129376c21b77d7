from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url

_KEY = "careloop_last_seen"
# Set in the fresh session after an idle logout so the login page can say why (messages are not
# available yet: MessageMiddleware runs after this one).
IDLE_LOGOUT_FLAG = "careloop_idle_logout"
_WRITE_EVERY_SECONDS = 15


class IdleTimeoutMiddleware:
    """Logs a user out after SESSION_IDLE_TIMEOUT_SECONDS without a request (F7.5)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = time.time()
            last_seen = request.session.get(_KEY)
            if (
                last_seen is not None
                and now - float(last_seen) > settings.SESSION_IDLE_TIMEOUT_SECONDS
            ):
                logout(request)
                request.session[IDLE_LOGOUT_FLAG] = True
                if request.headers.get("HX-Request"):
                    # A partial update would otherwise swap the login page into a fragment.
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = resolve_url(settings.LOGIN_URL)
                    return response
            elif last_seen is None or now - float(last_seen) > _WRITE_EVERY_SECONDS:
                # Writing the session on every request would cost a database write per click;
                # a timeout a few seconds late does no harm.
                request.session[_KEY] = now
        return self.get_response(request)
