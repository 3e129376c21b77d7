"""API tokens that expire (``API_TOKEN_TTL_HOURS``, default 12 hours) and can be revoked."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


def token_ttl() -> dt.timedelta:
    return dt.timedelta(hours=int(getattr(settings, "API_TOKEN_TTL_HOURS", 12)))


def is_expired(token: Token, now: dt.datetime | None = None) -> bool:
    return token.created + token_ttl() <= (now or timezone.now())


def issue_token(user: Any) -> Token:
    """The user's token, replaced by a fresh one when the old one has expired."""
    token, created = Token.objects.get_or_create(user=user)
    if not created and is_expired(token):
        token.delete()
        token = Token.objects.create(user=user)
    return token


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing tokens older than ``API_TOKEN_TTL_HOURS``."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        if is_expired(token):
            raise exceptions.AuthenticationFailed(
                _("The token has expired; ask for a new one at /api/v1/auth/token/.")
            )
        return user, token
