"""API permissions: the same role permissions as the UI, looked up per viewset action."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


class ActionPermission(BasePermission):
    """Grants an action when the user has the Django permission the view maps it to.

    Each view declares ``action_perms = {"list": "app.codename", ...}``; an action missing from
    the map is refused, so a new action is closed until someone decides who may use it. Read-only
    users (leaders) never pass a write, whatever permissions the admin gave them.
    Which *records* the user sees is left to the view's queryset (the department gates).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        perm = getattr(view, "action_perms", {}).get(getattr(view, "action", None))
        if perm is None:
            return False
        if request.method not in SAFE_METHODS and getattr(user, "is_read_only", False):
            return False
        return bool(user.has_perm(perm))
