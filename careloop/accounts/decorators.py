"""View decorators: log-in first (anonymous → login page), then the permission (→ 403)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from careloop.accounts.models import User


class AuthedRequest(HttpRequest):
    """The request type of views behind ``login_required``: ``user`` is a real staff member."""

    user: User


View = Callable[..., HttpResponse]


def permission_required(*perms: str) -> Callable[[View], View]:
    """Like Django's, but anonymous users go to the login page and others get 403."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.has_perms(perms):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator
