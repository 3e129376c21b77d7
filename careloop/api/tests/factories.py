"""Helpers of the API tests; rows come from the shared factories of each app."""

from __future__ import annotations

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from careloop.accounts.models import User


def api_client(user: User | None = None) -> APIClient:
    """A client sending ``user``'s API token, as real API clients do (anonymous when None)."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
